// One node, one agent: a second agent instance under a node's name is refused and blocks the
// node; it never verifies a reboot; an agent that went silent can be replaced.
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using ::testing::HasSubstr;
using tended::v1::Lease;

class IdentityTest : public FleetFixture {
 protected:
  tended::v1::Node NodeNamed(const std::string& name) {
    const tended::v1::ListNodesResponse nodes = coordinator().ListNodes();
    for (const auto& node : nodes.nodes()) {
      if (node.facts().node_name() == name) return node;
    }
    return {};
  }
};

TEST_F(IdentityTest, ASecondAgentUnderOneNameIsRefusedAndBlocksTheNode) {
  BringUp({"node-a", "node-b"});
  auto clone = Report("node-a", /*reboot_required=*/true, "cloned-vm");
  ASSERT_TRUE(absl::IsFailedPrecondition(clone.status())) << clone.status();
  EXPECT_THAT(std::string(clone.status().message()), HasSubstr("second one under the same name"));
  EXPECT_EQ(NodeNamed("node-a").state(), tended::v1::NODE_STATE_CONFLICT);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_AGENT_CONFLICT), 1);

  // The registered agent asks: the node's own gate blocks it, the others are not blocked.
  ASSERT_TRUE(Report("node-a", true).ok());
  auto asked = Ask("node-a");
  ASSERT_TRUE(asked.ok());
  EXPECT_FALSE(asked->has_lease());
  bool identity_blocks = false;
  for (const auto& gate : asked->gates()) {
    if (gate.gate() == "identity") identity_blocks = gate.verdict() == tended::v1::GATE_VERDICT_BLOCK;
  }
  EXPECT_TRUE(identity_blocks);
  ASSERT_TRUE(Report("node-b", true).ok());
  EXPECT_TRUE(Ask("node-b")->has_lease());
  // The clone's own calls are refused too.
  auto clone_asks = coordinator().AcquireLease(
      LeaseRequest("node-a", tended::v1::LEASE_KIND_REBOOT, "clone", "cloned-vm"));
  EXPECT_TRUE(absl::IsFailedPrecondition(clone_asks.status()));
}

TEST_F(IdentityTest, TheConflictEndsOnceTheSecondAgentIsSilent) {
  BringUp({"node-a"});
  ASSERT_FALSE(Report("node-a", false, "cloned-vm").ok());
  for (int i = 0; i < 6; ++i) {
    clock().Advance(absl::Seconds(30));
    ASSERT_TRUE(Report("node-a").ok());
    coordinator().Tick();
  }
  EXPECT_NE(NodeNamed("node-a").state(), tended::v1::NODE_STATE_CONFLICT);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_AGENT_CONFLICT), 2);  // Began, ended.
}

TEST_F(IdentityTest, AReportFromAnotherInstanceNeverVerifiesAReboot) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  // The node is down; a spoofer reports a new boot id without the need.
  clock().Advance(absl::Minutes(5));
  tended::v1::ReportFactsRequest spoof = FactsReport("node-a", "boot-spoofed", false, "spoofer");
  EXPECT_FALSE(coordinator().ReportFacts(spoof).ok());
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  // Its holder calls are refused as well.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      coordinator().RenewLease(RenewRequest(lease, "spoofer")).status()));
  // The real agent comes back and verifies.
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());
  EXPECT_TRUE(Active().empty());
}

TEST_F(IdentityTest, AnAgentThatWentSilentIsReplacedByANewOne) {
  BringUp({"node-a"});
  clock().Advance(absl::Minutes(3));  // Its agent stops reporting (the node was reinstalled).
  auto reinstalled = Report("node-a", false, "reinstalled-agent");
  ASSERT_TRUE(reinstalled.ok()) << reinstalled.status();
  EXPECT_EQ(NodeNamed("node-a").agent_instance_id(), "reinstalled-agent");
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_AGENT_REPLACED), 1);
  // Now the old one is the intruder.
  EXPECT_FALSE(Report("node-a").ok());
}

TEST_F(IdentityTest, AnAgentHoldingALeaseIsNeverReplaced) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  clock().Advance(absl::Minutes(10));  // Down for a long time.
  EXPECT_FALSE(Report("node-a", false, "someone-else").ok());
  EXPECT_EQ(NodeNamed("node-a").agent_instance_id(), InstanceOf("node-a"));
}

}  // namespace
}  // namespace tended::testing
