// The one promise under the faults of issue 8, section 1 (promise_faults_fixture.h): what the
// coordinator refuses. A lease no flow carries out (fault 8), oversized requests and floods
// of stale fencing tokens (fault 11), none of which may grow the state or push the grant out
// of the event log.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Fault 8: only leases some flow carries out are granted; a K8S_UPGRADE lease is not.
TEST_F(PromiseFaultsTest, KubernetesUpgradeLeaseIsRefused) {
  WriteConfig(absl::StrCat(kRebootLease, kK8sUpgradeLease));
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  std::optional<Lease> granted = GrantDuring({&a}, "node-a", tended::v1::LEASE_KIND_K8S_UPGRADE,
                                             (*coordinator)->ops(), absl::Seconds(10));
  EXPECT_FALSE(granted.has_value())
      << "granted " << Describe(*granted) << ", which no flow carries out and which blocks reboots";

  // A Kubernetes-upgrade request never keeps a reboot from being granted.
  b.SetRebootRequired(true);
  absl::StatusOr<Lease> reboot = WaitForGrant(b, kReboot, absl::Seconds(90));
  EXPECT_TRUE(reboot.ok()) << reboot.status();
}

// Fault 11: bounded input. Oversized requests are refused and leave the state as it was.
TEST_F(PromiseFaultsTest, OversizedRequestsAreRefusedAndTheStateDoesNotGrow) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  std::vector<std::unique_ptr<WireAgent>> fleet;
  FleetHeartbeat heartbeat;
  for (int i = 1; i <= 5; ++i) {
    fleet.push_back(std::make_unique<WireAgent>(absl::StrCat("node-", i), absl::StrCat("agent-", i),
                                                absl::StrCat("boot-", i)));
    fleet.back()->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(fleet.back()->Report().ok());
    heartbeat.Add(fleet.back().get());
  }
  absl::SleepFor(absl::Seconds(3));
  const uint64_t before = FolderBytes(StateDir());
  const std::string megabyte(1 << 20, 'x');

  for (int i = 1; i <= 5; ++i) {
    WireAgent big(absl::StrCat("big-", i), absl::StrCat("agent-big-", i),
                  absl::StrCat("boot-big-", i));
    big.SetChannel((*coordinator)->channel());
    big.SetRebootRequired(true, {megabyte});
    grpc::Status status = big.Report();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "ReportFacts with a 1 MB reboot reason: " << Describe(status);
  }
  for (const auto& agent : fleet) {
    grpc::Status status = agent->Acquire(kReboot, megabyte);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "AcquireLease with a 1 MB reason: " << Describe(status);
  }
  WireAgent many("many-packages", "agent-many", "boot-many");
  many.SetChannel((*coordinator)->channel());
  tended::v1::ReportFactsRequest request = many.FactsRequest();
  for (int i = 0; i < 100000; ++i) {
    tended::v1::PackageVersion* package = request.mutable_facts()->add_package_versions();
    package->set_name(absl::StrCat("pkg-", i));
    package->set_version("1.0-1");
  }
  grpc::Status status = many.SendFacts(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "ReportFacts with 100,000 packages: " << Describe(status);

  absl::SleepFor(absl::Seconds(3));
  const uint64_t after = FolderBytes(StateDir());
  EXPECT_LT(after, before + (256 << 10))
      << "refused requests grew the state from " << before << " to " << after << " bytes";
  EXPECT_EQ(RunCtl(NextLog("ctl-audit"), (*coordinator)->port(), {"audit"}), 0)
      << ReadText(dir_.Path(absl::StrCat("ctl-audit-", logs_, ".log"))).substr(0, 2000);
}

// Fault 11 again: a flood of stale fencing tokens does not push the grant out of the log.
TEST_F(PromiseFaultsTest, StaleTokenFloodKeepsTheGrantInTheEventLog) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  a.SetChannel((*coordinator)->channel());
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&a);
  absl::StatusOr<Lease> held = WaitForGrant(a, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();

  int accepted = 0;
  for (int i = 0; i < 1100; ++i) {
    grpc::Status status = a.Begin("reboot", {}, held->fencing_token() + 1);
    if (status.ok()) ++accepted;
  }
  EXPECT_EQ(accepted, 0) << "BeginDisruption accepted a token that is not the lease's";
  absl::SleepFor(absl::Seconds(3));

  absl::StatusOr<std::vector<tended::v1::Event>> events = ListAllEvents((*coordinator)->ops());
  ASSERT_TRUE(events.ok()) << events.status();
  bool grant_listed = false;
  for (const auto& event : *events) {
    grant_listed |=
        event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED && event.lease_id() == held->id();
  }
  EXPECT_TRUE(grant_listed) << "the grant of " << held->id() << " is no longer in the event log ("
                            << events->size() << " events, first "
                            << (events->empty() ? 0 : events->front().sequence()) << ")";
  EXPECT_EQ(RunCtl(NextLog("ctl-audit"), (*coordinator)->port(), {"audit"}), 0)
      << ReadText(dir_.Path(absl::StrCat("ctl-audit-", logs_, ".log"))).substr(0, 2000);
}

}  // namespace
}  // namespace tended::promise_faults
