// Bounded input: every request string and list has a limit, and a flood of refused holder
// calls is summed up instead of flushing the grants out of the event log.
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using ::testing::HasSubstr;
using tended::v1::Lease;

class HostileInputTest : public FleetFixture {};

TEST_F(HostileInputTest, OversizedFieldsAreRefusedAndTheStateDoesNotGrow) {
  BringUp({"node-a"});
  const uint64_t records_before = harness_.ledger().stats().records;
  tended::v1::AcquireLeaseRequest huge =
      LeaseRequest("node-a", tended::v1::LEASE_KIND_REBOOT, std::string(1 << 20, 'x'));
  auto asked = coordinator().AcquireLease(huge);
  EXPECT_TRUE(absl::IsInvalidArgument(asked.status()));
  EXPECT_THAT(std::string(asked.status().message()), HasSubstr("reason: at most"));

  tended::v1::ReportFactsRequest facts = FactsReport("node-a", BootOf("node-a"), true);
  for (int i = 0; i < 100000; ++i) {
    auto* package = facts.mutable_facts()->add_package_versions();
    package->set_name("p");
    package->set_version("1");
  }
  auto reported = coordinator().ReportFacts(facts);
  EXPECT_TRUE(absl::IsInvalidArgument(reported.status()));
  EXPECT_THAT(std::string(reported.status().message()), HasSubstr("package_versions"));

  tended::v1::ReportFactsRequest bad_name = FactsReport("Node_A..", "b", false);
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ReportFacts(bad_name).status()));
  tended::v1::ReportFactsRequest no_instance = FactsReport("node-a", "b", false);
  no_instance.clear_agent_instance_id();
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ReportFacts(no_instance).status()));
  tended::v1::HaltRequest halt;
  halt.set_reason(std::string(5000, 'h'));
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().Halt(halt).status()));

  EXPECT_EQ(harness_.ledger().stats().records, records_before);
}

TEST_F(HostileInputTest, RefusedTokensAreCountedAndSummedUpNotLoggedOneByOne) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_FALSE(lease.id().empty());
  tended::v1::RenewLeaseRequest stale = RenewRequest(lease);
  stale.set_fencing_token(lease.fencing_token() + 1);
  for (int i = 0; i < 1100; ++i) {
    ASSERT_TRUE(absl::IsFailedPrecondition(coordinator().RenewLease(stale).status()));
  }
  for (int i = 0; i < 300; ++i) {
    tended::v1::RenewLeaseRequest unknown = RenewRequest(lease);
    unknown.set_lease_id(absl::StrCat("reboot-ghost-", i));
    ASSERT_FALSE(coordinator().RenewLease(unknown).ok());
  }
  EXPECT_EQ(coordinator().stats().fencing_rejections, 1400u);
  coordinator().Tick();
  // The grant is still in the log, and the refusals fill a few events, not 1,400.
  bool grant_listed = false;
  int refusal_events = 0;
  for (const auto& event : Events()) {
    grant_listed |= event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED &&
                    event.lease_id() == lease.id();
    refusal_events += event.type() == tended::v1::EVENT_TYPE_FENCING_REJECTED ? 1 : 0;
  }
  EXPECT_TRUE(grant_listed);
  EXPECT_GE(refusal_events, 1);
  EXPECT_LE(refusal_events, 21);
  bool summed = false;
  for (const auto& event : Events()) {
    if (event.type() == tended::v1::EVENT_TYPE_FENCING_REJECTED &&
        absl::StrContains(event.message(), "1100 calls")) {
      summed = true;
    }
  }
  EXPECT_TRUE(summed);

}

TEST_F(HostileInputTest, AReturnedLeaseBacksTheNodeOffDoublingEachTime) {
  BringUp({"node-a"});
  tended::v1::HaltRequest halt;
  halt.set_reason("maintenance of the storage");
  absl::Duration last_wait;
  for (int round = 1; round <= 3; ++round) {
    ASSERT_TRUE(Report("node-a", true).ok());
    auto granted = Ask("node-a");
    ASSERT_TRUE(granted->has_lease()) << "round " << round;
    ASSERT_TRUE(coordinator().Halt(halt).ok());
    EXPECT_FALSE(coordinator().BeginDisruption(BeginRequest(granted->lease(), "reboot")).ok());
    clock().Advance(absl::Minutes(11));
    ASSERT_TRUE(Report("node-a", true).ok());
    coordinator().Tick();
    ASSERT_TRUE(Active().empty()) << "round " << round;
    ASSERT_TRUE(coordinator().Resume().ok());
    // The next grant waits for the backoff: 5, 10, 20 minutes.
    absl::Time until;
    const tended::v1::ListNodesResponse nodes = coordinator().ListNodes();
    for (const auto& node : nodes.nodes()) {
      if (node.facts().node_name() == "node-a") until = FromProtoTimestamp(node.backoff_until());
    }
    const absl::Duration wait = until - clock().Now();
    if (round > 1) {
      EXPECT_EQ(wait, last_wait * 2) << "round " << round;
    }
    last_wait = wait;
    EXPECT_FALSE(Ask("node-a")->has_lease());
    EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "waiting_node"), HasSubstr("backoff"));
    clock().Advance(wait + absl::Seconds(1));
    ASSERT_TRUE(Report("node-a", true).ok());
  }
}

}  // namespace
}  // namespace tended::testing
