// The core's protocol: grant, fence, verify, release; restarts; one decision per request.
#include "coordinator/core/coordinator.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using tended::v1::Lease;

class CoordinatorTest : public FleetFixture {};

TEST_F(CoordinatorTest, ARebootIsGrantedFencedVerifiedAndReleased) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", /*reboot_required=*/true).ok());
  auto granted = Ask("node-a");
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_TRUE(granted->has_lease()) << GateReason(tended::v1::LEASE_KIND_REBOOT, "state");
  const Lease lease = granted->lease();
  EXPECT_EQ(lease.node_name(), "node-a");
  EXPECT_EQ(lease.agent_instance_id(), InstanceOf("node-a"));
  EXPECT_EQ(lease.boot_id_at_grant(), BootOf("node-a"));

  // A stale token is refused; the current one begins the disruption.
  tended::v1::BeginDisruptionRequest stale = BeginRequest(lease, "reboot");
  stale.set_fencing_token(lease.fencing_token() + 7);
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().BeginDisruption(stale).status()));
  auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->lease().phase(), tended::v1::LEASE_PHASE_DISRUPTING);

  // Back with a new boot id and no need: verified and released; the soak starts.
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());
  EXPECT_TRUE(Active().empty());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_RELEASED), 1);
  ASSERT_TRUE(Report("node-b", true).ok());
  auto next = Ask("node-b");
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_lease());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "soak"), HasSubstr("BLOCK"));
  clock().Advance(absl::Minutes(11));
  ASSERT_TRUE(Report("node-a").ok());
  ASSERT_TRUE(Report("node-b", true).ok());
  coordinator().Tick();
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].node_name(), "node-b");
  EXPECT_GT(Active()[0].fencing_token(), lease.fencing_token());
}

TEST_F(CoordinatorTest, AnAnswerIsTheDecisionTheGatesMade) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Ask("node-a")->has_lease());
  ASSERT_TRUE(Report("node-b", true).ok());
  auto waiting = Ask("node-b");
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->has_lease());
  EXPECT_EQ(waiting->queue_position(), 1u);
  bool concurrency_blocks = false;
  for (const auto& gate : waiting->gates()) {
    if (gate.gate() == "concurrency") {
      concurrency_blocks = gate.verdict() == tended::v1::GATE_VERDICT_BLOCK;
      EXPECT_THAT(gate.reason(), HasSubstr("node-a"));
    }
  }
  EXPECT_TRUE(concurrency_blocks);
  // Asking again changes nothing and is answered the same way.
  EXPECT_FALSE(Ask("node-b")->has_lease());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_REQUESTED), 2);
}

TEST_F(CoordinatorTest, LeasesAndTokensSurviveARestart) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  ASSERT_TRUE(harness_.Restart().ok());
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), lease.id());
  EXPECT_EQ(active[0].phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  // The holder's calls still work with the same token.
  EXPECT_TRUE(coordinator().RenewLease(RenewRequest(lease)).ok());
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());
  EXPECT_TRUE(Active().empty());
}

TEST_F(CoordinatorTest, AfterARestartANodeCountsAsReportingOnlyOnceItReportedToThisProcess) {
  BringUp({"node-a", "node-b", "node-c"});
  ASSERT_TRUE(harness_.Restart().ok());
  ASSERT_TRUE(Report("node-a", true).ok());
  auto waiting = Ask("node-a");
  ASSERT_TRUE(waiting.ok());
  EXPECT_FALSE(waiting->has_lease()) << "granted before node-b and node-c reported";
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              HasSubstr("not since the coordinator started"));
  ASSERT_TRUE(Report("node-b").ok());
  EXPECT_TRUE(Active().empty());
  ASSERT_TRUE(Report("node-c").ok());
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].node_name(), "node-a");
}

// Fleet health is summarised once and reused between changes: the summary must still see
// a node fall silent as time passes, come back when it reports, and notice a new node.
TEST_F(CoordinatorTest, FleetHealthFollowsTimeAndReportsBetweenDecisions) {
  BringUp({"node-a", "node-b", "node-c"});
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              HasSubstr("GATE_VERDICT_PASS"));
  // node-c goes quiet while the others keep reporting the same facts (heartbeats).
  for (int i = 0; i < 5; ++i) {
    clock().Advance(absl::Seconds(30));
    ASSERT_TRUE(Report("node-a").ok());
    ASSERT_TRUE(Report("node-b").ok());
    (void)GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health");
  }
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              AllOf(HasSubstr("GATE_VERDICT_BLOCK"), HasSubstr("node-c")));
  ASSERT_TRUE(Report("node-b", true).ok());
  EXPECT_FALSE(Ask("node-b")->has_lease()) << "granted while node-c is silent";
  // Back: the same facts as before, which must not be taken for a heartbeat.
  ASSERT_TRUE(Report("node-c").ok());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              HasSubstr("GATE_VERDICT_PASS"));
  coordinator().Tick();
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].node_name(), "node-b");
  // The grant changed a lease and no node: the holder is no longer counted all the same.
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              AllOf(HasSubstr("GATE_VERDICT_PASS"), HasSubstr("1 lease holder not counted")));
  // A node that registers now has not been heard of long enough to be silent, and counts.
  ASSERT_TRUE(Report("node-d").ok());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              HasSubstr("GATE_VERDICT_PASS"));
  clock().Advance(absl::Minutes(3));
  ASSERT_TRUE(Report("node-a").ok());
  ASSERT_TRUE(Report("node-c").ok());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              AllOf(HasSubstr("GATE_VERDICT_BLOCK"), HasSubstr("node-d")));
}

TEST_F(CoordinatorTest, OnlyAHeartbeatIsAnsweredWithoutTheChangePath) {
  // Registration, new facts and a malformed report all need ReportFacts.
  EXPECT_FALSE(coordinator().TryHeartbeat(FactsReport("node-a", BootOf("node-a"), false)));
  EXPECT_TRUE(Active().empty());
  BringUp({"node-a", "node-b"});
  EXPECT_FALSE(coordinator().TryHeartbeat(FactsReport("node-a", BootOf("node-a"), true)));
  tended::v1::ReportFactsRequest nameless = FactsReport("node-a", BootOf("node-a"), false);
  nameless.mutable_facts()->clear_node_name();
  EXPECT_FALSE(coordinator().TryHeartbeat(nameless));
  // The same facts again: answered as ReportFacts would, and the node counts as reporting.
  clock().Advance(absl::Seconds(30));
  auto heartbeat = coordinator().TryHeartbeat(FactsReport("node-a", BootOf("node-a"), false));
  ASSERT_TRUE(heartbeat.has_value());
  auto full = coordinator().ReportFacts(FactsReport("node-b", BootOf("node-b"), false));
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(heartbeat->state_id(), full->state_id());
  EXPECT_FALSE(heartbeat->state_id().empty());
  EXPECT_EQ(heartbeat->report_interval().seconds(), 30);
  EXPECT_EQ(heartbeat->server_time().seconds(), absl::ToUnixSeconds(clock().Now()));
  clock().Advance(absl::Seconds(100));  // 130 s since BringUp's reports: past the deadline...
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_REBOOT, "fleet_health"),
              HasSubstr("GATE_VERDICT_PASS"))  // ...but both reported 100 s ago.
      << "the heartbeat did not count";
}

TEST_F(CoordinatorTest, K8sUpgradeLeasesGoOnlyToTheNodeWhoseTurnItIsInARollout) {
  harness_.mutable_config().leases[tended::v1::LEASE_KIND_K8S_UPGRADE] = coordinator::LeasePolicy();
  ASSERT_TRUE(harness_.Restart().ok());
  BringUp({"node-a"});
  auto asked = Ask("node-a", tended::v1::LEASE_KIND_K8S_UPGRADE);
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_FALSE(asked->has_lease());
  coordinator().Tick();
  EXPECT_TRUE(Active().empty());
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_K8S_UPGRADE, "waiting_node"),
              HasSubstr("no Kubernetes rollout is running"));
}

TEST_F(CoordinatorTest, AHaltAfterTheGrantStopsTheActAndTheLeaseGoesBackAfterBeginWait) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  tended::v1::HaltRequest halt;
  halt.set_reason("storage incident");
  ASSERT_TRUE(coordinator().Halt(halt).ok());

  auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
  ASSERT_TRUE(absl::IsUnavailable(begun.status())) << begun.status();
  EXPECT_THAT(std::string(begun.status().message()), HasSubstr("storage incident"));
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].phase(), tended::v1::LEASE_PHASE_GRANTED);
  EXPECT_TRUE(Active()[0].has_begin_blocked_since());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_DISRUPTION_WAITING), 1);
  // Asking again within begin_wait: still waiting, no second event while the same gates
  // block.
  clock().Advance(absl::Minutes(1));
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Report("node-b").ok());
  EXPECT_TRUE(absl::IsUnavailable(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).status()));
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_DISRUPTION_WAITING), 1);
  // Past begin_wait the lease is given back, and the node backs off.
  clock().Advance(absl::Minutes(10));
  coordinator().Tick();
  EXPECT_TRUE(Active().empty());
  auto renewed = coordinator().RenewLease(RenewRequest(lease));
  EXPECT_TRUE(absl::IsFailedPrecondition(renewed.status()));
  tended::v1::ListNodesResponse nodes = coordinator().ListNodes();
  for (const auto& node : nodes.nodes()) {
    if (node.facts().node_name() == "node-a") {
      EXPECT_TRUE(node.has_backoff_until());
    }
  }
}

TEST_F(CoordinatorTest, ANewAlertAfterTheGrantStopsTheAct) {
  harness_.mutable_config().alerts.prometheus_url = "http://127.0.0.1:9/";
  ASSERT_TRUE(harness_.Restart().ok());
  harness_.SetFiring("");
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  harness_.SetFiring("");
  const Lease lease = Ask("node-a")->lease();
  ASSERT_FALSE(lease.id().empty());
  harness_.SetFiring("NodeDiskFull");
  auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
  EXPECT_TRUE(absl::IsUnavailable(begun.status())) << begun.status();
  EXPECT_THAT(std::string(begun.status().message()), HasSubstr("NodeDiskFull"));
  harness_.SetFiring("");
  EXPECT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  EXPECT_FALSE(Active()[0].has_begin_blocked_since());
}

TEST_F(CoordinatorTest, AClosedWindowAfterTheGrantStopsTheAct) {
  // 2026-01-01 00:00 UTC; the window is 00:00-00:30 daily, a step is 5 minutes.
  coordinator::MaintenanceWindow window;
  window.days = {absl::Weekday::monday,   absl::Weekday::tuesday, absl::Weekday::wednesday,
                 absl::Weekday::thursday, absl::Weekday::friday,  absl::Weekday::saturday,
                 absl::Weekday::sunday};
  window.start = absl::ZeroDuration();
  window.end = absl::Minutes(30);
  window.time_zone_name = "UTC";
  window.time_zone = absl::UTCTimeZone();
  harness_.mutable_config().leases[tended::v1::LEASE_KIND_REBOOT].windows = {window};
  ASSERT_TRUE(harness_.Restart().ok());
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_FALSE(lease.id().empty());
  clock().Advance(absl::Minutes(24));  // 00:26: a 5-minute step no longer fits.
  ASSERT_TRUE(Report("node-a", true).ok());
  auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
  EXPECT_TRUE(absl::IsUnavailable(begun.status())) << begun.status();
  EXPECT_THAT(std::string(begun.status().message()), HasSubstr("window"));
}

TEST_F(CoordinatorTest, TheHolderMayReturnABegunLeaseUnderWhichTheNodeDidNotReboot) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Ask("node-a")->lease();
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  // Still DISRUPTING and rebooted: no return.
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a", true).ok());  // Rebooted but still needs it: verifying.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      coordinator().ReleaseLease(ReleaseRequest(lease, "no longer needed")).status()));
  ASSERT_TRUE(coordinator().ForceReleaseLease([&] {
                tended::v1::ForceReleaseLeaseRequest force;
                force.set_lease_id(lease.id());
                force.set_reason("test");
                return force;
              }()).ok());

  // Begun, and the node kept its boot id: the holder may give it back.
  clock().Advance(absl::Minutes(11));
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease second = Ask("node-a")->lease();
  ASSERT_FALSE(second.id().empty());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(second, "reboot")).ok());
  ASSERT_TRUE(Report("node-a", false).ok());
  auto returned = coordinator().ReleaseLease(ReleaseRequest(second, "no reboot needed any more"));
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->lease().phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_TRUE(Active().empty());
}

}  // namespace
}  // namespace tended::testing
