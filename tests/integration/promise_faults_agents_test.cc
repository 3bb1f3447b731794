// The one promise under the faults of issue 8, section 1 (promise_faults_fixture.h): after a
// restart a node counts as reporting only once it reported to the new process (fault 5),
// and one node has one agent: a second instance blocks it and never verifies its reboot
// (fault 6).
#include <memory>
#include <optional>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/wire_agent.h"
#include "tests/integration/promise_faults_fixture.h"

namespace tended::promise_faults {
namespace {

using tended::testing::CoordinatorProcess;
using tended::testing::FleetHeartbeat;
using tended::testing::WireAgent;
using tended::v1::Lease;

// Fault 5: after a restart, a node counts as reporting only once it reported to this process.
TEST_F(PromiseFaultsTest, RestartedCoordinatorWaitsForEveryNodeToReport) {
  WriteConfig(kRebootLease, "", /*report_deadline=*/"30s");
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  WireAgent c("node-c", "agent-c", "boot-c1");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b, &c}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  for (WireAgent* agent : {&a, &b, &c}) agent->SetReporting(false);
  absl::SleepFor(absl::Seconds(2));  // A report in flight lands on the old process.
  (*coordinator)->Stop();
  coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  for (WireAgent* agent : {&a, &b, &c}) agent->SetChannel((*coordinator)->channel());

  // B and C (down, or their agents slow) have not reported to this process.
  a.SetRebootRequired(true);
  a.SetReporting(true);
  ASSERT_TRUE(a.Report().ok());
  std::optional<Lease> early =
      GrantDuring({&a}, "node-a", kReboot, (*coordinator)->ops(), absl::Seconds(8));
  ASSERT_FALSE(early.has_value()) << "granted " << Describe(*early)
                                  << " before node-b and node-c reported to the restarted "
                                     "coordinator";

  b.SetReporting(true);
  c.SetReporting(true);
  absl::StatusOr<Lease> granted = WaitForGrant(a, kReboot);
  EXPECT_TRUE(granted.ok()) << granted.status();
}

// Fault 6: one node, one agent. A second agent instance under the node's name blocks it.
TEST_F(PromiseFaultsTest, SecondAgentInstanceBlocksTheNode) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent x("node-a", "instance-x", "boot-a1");
  WireAgent y("node-a", "instance-y", "boot-a9");
  for (WireAgent* agent : {&x, &y}) {
    agent->SetChannel((*coordinator)->channel());
    agent->SetRebootRequired(true);
  }
  ASSERT_TRUE(x.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&x);
  grpc::Status from_y = y.Report();
  heartbeat.Add(&y);
  absl::StatusOr<tended::v1::Node> node = FindNode((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(!from_y.ok() || node->state() == tended::v1::NODE_STATE_CONFLICT)
      << "a report from a second agent instance was accepted and node-a is shown as "
      << tended::v1::NodeState_Name(node->state());

  std::optional<Lease> granted =
      GrantDuring({&x, &y}, "node-a", kReboot, (*coordinator)->ops(), absl::Seconds(15));
  EXPECT_FALSE(granted.has_value())
      << "granted " << Describe(*granted) << " although two agent instances report as node-a";
  node = FindNode((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->state(), tended::v1::NODE_STATE_CONFLICT)
      << tended::v1::NodeState_Name(node->state());
}

// Fault 6 again: a report from another instance never verifies the holder's reboot.
TEST_F(PromiseFaultsTest, ReportFromAnotherInstanceNeverVerifiesAReboot) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent x("node-a", "instance-x", "boot-a1");
  x.SetChannel((*coordinator)->channel());
  x.SetRebootRequired(true);
  ASSERT_TRUE(x.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&x);
  absl::StatusOr<Lease> held = WaitForGrant(x, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();
  grpc::Status began = x.Begin("reboot");
  ASSERT_TRUE(began.ok()) << Describe(began);
  x.SetReporting(false);  // Rebooting.

  // Another instance claims node-a came back with a new boot, no reboot needed.
  WireAgent y("node-a", "instance-y", "boot-a2");
  y.SetChannel((*coordinator)->channel());
  const absl::Time end = absl::Now() + absl::Seconds(12);
  while (absl::Now() < end) {
    (void)y.Report();
    absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
    ASSERT_TRUE(active.ok()) << active.status();
    ASSERT_EQ(active->size(), 1u) << "lease " << held->id()
                                  << " was released on a report from instance-y: node-a may "
                                     "still be rebooting";
    absl::SleepFor(absl::Seconds(1));
  }

  // The holder's own agent comes back on its new boot: that verifies.
  x.SetBootId("boot-a2");
  x.SetRebootRequired(false);
  x.SetReporting(true);
  absl::Status released = WaitNoActiveLease((*coordinator)->ops(), "node-a");
  EXPECT_TRUE(released.ok()) << released;
}

}  // namespace
}  // namespace tended::promise_faults
