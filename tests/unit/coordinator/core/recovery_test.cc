// Losing the state never loses a lease: a coordinator on an empty state adopts what the
// agents hold, grants nothing until every node has reported, fences above every token, and
// needs --recover-state when the agents show that a state existed before.
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using ::testing::HasSubstr;
using tended::v1::Lease;

class RecoveryTest : public FleetFixture {
 protected:
  // What the agent of `node` reports while it holds `lease` and has talked to `state_id`.
  absl::StatusOr<tended::v1::ReportFactsResponse> ReportHolding(const std::string& node,
                                                                const Lease& lease,
                                                                const std::string& state_id,
                                                                bool reboot_required = true) {
    tended::v1::ReportFactsRequest request = FactsReport(node, BootOf(node), reboot_required);
    if (!lease.id().empty()) *request.mutable_held_lease() = lease;
    request.set_max_fencing_token_seen(lease.fencing_token());
    request.set_coordinator_state_id(state_id);
    return coordinator().ReportFacts(request);
  }

  // node-a is mid-reboot under its lease; returns the lease and the state id.
  std::pair<Lease, std::string> NodeAMidReboot() {
    BringUp({"node-a", "node-b", "node-c"});
    auto response = Report("node-a", true);
    const std::string state_id = response.ok() ? response->state_id() : "";
    Lease lease = Ask("node-a")->lease();
    auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
    if (begun.ok()) lease = begun->lease();
    return {lease, state_id};
  }
};

TEST_F(RecoveryTest, AFirstStartWaitsUntilEveryAgentCouldReport) {
  ASSERT_TRUE(Report("node-a", true).ok());
  EXPECT_FALSE(Ask("node-a")->has_lease());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "state"), HasSubstr("may report until"));
  clock().Advance(absl::Minutes(2) + absl::Seconds(1));
  ASSERT_TRUE(Report("node-a", true).ok());
  EXPECT_TRUE(Ask("node-a")->has_lease());
  EXPECT_LT(Active()[0].fencing_token(), 100u) << "a first start fences from 1";
}

TEST_F(RecoveryTest, AnEmptyStateAdoptsTheLeaseAnAgentHoldsAndGrantsNoOtherNode) {
  auto [lease, state_id] = NodeAMidReboot();
  ASSERT_FALSE(lease.id().empty());
  ASSERT_EQ(lease.phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  // The volume comes back empty (no LOCK either: it cannot tell a first start).
  harness_.LoseState(/*keep_lock=*/false);
  ASSERT_TRUE(harness_.Start().ok());
  ASSERT_TRUE(ReportHolding("node-a", lease, state_id).ok());
  ASSERT_TRUE(Report("node-b", true).ok());
  ASSERT_TRUE(Report("node-c").ok());
  EXPECT_FALSE(Ask("node-b")->has_lease());
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), lease.id());
  EXPECT_TRUE(active[0].adopted());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_ADOPTED), 1);
  // The agents show a state existed: without --recover-state recovery does not end.
  clock().Advance(absl::Hours(1));
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    ASSERT_TRUE(ReportHolding(node, node == std::string("node-a") ? lease : Lease(), state_id,
                              node != std::string("node-c"))
                    .ok());
  }
  coordinator().Tick();
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "state"), HasSubstr("--recover-state"));
  EXPECT_EQ(Active().size(), 1u);
  // The adopted lease is verified as usual and the fleet goes on, after a restart with the
  // flag, fencing above every token seen.
  ASSERT_TRUE(harness_.Restart(/*recover_state=*/true).ok());
  Reboot("node-a");
  ASSERT_TRUE(ReportHolding("node-a", lease, state_id, false).ok());
  EXPECT_TRUE(Active().empty());
  clock().Advance(absl::Hours(1));
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    ASSERT_TRUE(Report(node, node == std::string("node-b")).ok());
  }
  coordinator().Tick();
  // The recovered coordinator halted itself: an operator's halt may have been lost.
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "halt"), HasSubstr("state was lost"));
  EXPECT_FALSE(Ask("node-b")->has_lease());
  ASSERT_TRUE(coordinator().Resume().ok());
  auto granted = Ask("node-b");
  ASSERT_TRUE(granted.ok());
  ASSERT_TRUE(granted->has_lease()) << GateReason(tended::v1::LEASE_KIND_REBOOT, "state");
  EXPECT_GT(granted->lease().fencing_token(), lease.fencing_token());
  EXPECT_NE(granted->lease().id(), lease.id());
}

TEST_F(RecoveryTest, AStateFolderUsedBeforeRefusesToStartEmptyWithoutTheFlag) {
  auto [lease, state_id] = NodeAMidReboot();
  harness_.LoseState(/*keep_lock=*/true);
  absl::Status refused = harness_.Start();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  ASSERT_TRUE(harness_.Start(/*recover_state=*/true).ok());
  ASSERT_TRUE(ReportHolding("node-a", lease, state_id).ok());
  EXPECT_EQ(Active().size(), 1u);
}

TEST_F(RecoveryTest, NothingIsGrantedUntilEveryNodeTheStateKnowsHasReported) {
  auto [lease, state_id] = NodeAMidReboot();
  // A restart on a good state is not a recovery, but a node counts only once it reported.
  ASSERT_TRUE(harness_.Restart().ok());
  ASSERT_TRUE(Report("node-b", true).ok());
  EXPECT_FALSE(Ask("node-b")->has_lease());
  EXPECT_EQ(Active().size(), 1u);
}

TEST_F(RecoveryTest, AClaimThatCannotBeAdoptedBlocksWithTheReason) {
  auto [lease, state_id] = NodeAMidReboot();
  harness_.LoseState(false);
  ASSERT_TRUE(harness_.Start(/*recover_state=*/true).ok());
  Lease foreign = lease;
  foreign.set_node_name("node-c");  // Reported by node-b: not its own.
  ASSERT_TRUE(ReportHolding("node-b", foreign, state_id).ok());
  EXPECT_TRUE(Active().empty());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "state"),
              HasSubstr("cannot be adopted"));
}

TEST_F(RecoveryTest, AStateOlderThanTheAgentsKnowledgeFencesAboveThem) {
  BringUp({"node-a", "node-b"});
  tended::v1::ReportFactsRequest request = FactsReport("node-b", BootOf("node-b"), true);
  request.set_max_fencing_token_seen(5000);
  ASSERT_TRUE(coordinator().ReportFacts(request).ok());
  auto granted = Ask("node-b");
  ASSERT_TRUE(granted->has_lease());
  EXPECT_GT(granted->lease().fencing_token(), 5000u);
}

}  // namespace
}  // namespace tended::testing
