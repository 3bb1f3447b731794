// The one promise under the faults of issue 8, section 1 (promise_faults_fixture.h): the
// gates are asked again before the act (fault 3: a halt, a real Prometheus's alert), the
// canary vets what a step installs (fault 4), and a blocking pod is a gate before the grant
// (fault 7, against the fake Kubernetes API server program).
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/wire_agent.h"
#include "tests/integration/promise_faults_fixture.h"

namespace tended::promise_faults {
namespace {

using tended::testing::CallContext;
using tended::testing::ChildProcess;
using tended::testing::CoordinatorProcess;
using tended::testing::FleetHeartbeat;
using tended::testing::ProgramPath;
using tended::testing::WireAgent;
using tended::v1::Lease;
using tended::v1::OperatorService;
using ::testing::HasSubstr;

// Fault 3: gates are re-checked before the act. A halt after the grant stops the reboot.
TEST_F(PromiseFaultsTest, HaltAfterTheGrantStopsTheDisruption) {
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

  tended::v1::HaltRequest halt;
  halt.set_reason("promise_faults_test: an operator stops everything");
  tended::v1::HaltResponse halted;
  ASSERT_TRUE((*coordinator)->ops().Halt(CallContext().get(), halt, &halted).ok());

  grpc::Status began = a.Begin("reboot");
  EXPECT_FALSE(began.ok()) << "BeginDisruption under a halt answered OK: the reboot would start";
  EXPECT_EQ(began.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a gate blocking the act means wait (UNAVAILABLE), keeping the lease: " << Describe(began);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->size(), 1u) << "the lease should be kept while the act waits";
  EXPECT_EQ(active->front().phase(), tended::v1::LEASE_PHASE_GRANTED)
      << "disrupting under a halt: " << Describe(active->front());

  // Once resumed, the act may start.
  tended::v1::ResumeResponse resumed;
  ASSERT_TRUE((*coordinator)
                  ->ops()
                  .Resume(CallContext().get(), tended::v1::ResumeRequest(), &resumed)
                  .ok());
  absl::Status begins = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        grpc::Status status = a.Begin("reboot");
        if (status.ok()) return true;
        return absl::UnavailableError(Describe(status));
      },
      absl::Seconds(60), "BeginDisruption after Resume", nullptr, absl::Seconds(1));
  EXPECT_TRUE(begins.ok()) << begins;
}

// A real Prometheus (Debian's /usr/bin/prometheus) whose rules the test changes.
class Prometheus {
 public:
  explicit Prometheus(const std::string& dir) : dir_(dir) {}

  absl::Status Start() {
    if (!WriteRules("") ||
        !WriteFile(dir_ + "/prometheus.yml",
                   absl::StrCat("global:\n  scrape_interval: 1m\n  evaluation_interval: 1s\n"
                                "rule_files:\n  - ",
                                dir_, "/rules.yml\n"))) {
      return absl::InternalError("cannot write the Prometheus configuration");
    }
    absl::Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::StatusOr<int> port = tended::testing::PickFreeLoopbackPort();
      if (!port.ok()) return port.status();
      port_ = *port;
      absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
          {"/usr/bin/prometheus", absl::StrCat("--config.file=", dir_, "/prometheus.yml"),
           absl::StrCat("--storage.tsdb.path=", dir_, "/data"),
           absl::StrCat("--web.listen-address=127.0.0.1:", port_), "--web.enable-lifecycle"},
          absl::StrCat(dir_, "/prometheus-", attempt, ".log"));
      if (!process.ok()) return process.status();
      process_ = *std::move(process);
      last =
          tended::testing::WaitForHttpReady(port_, "/-/ready", absl::Seconds(90), process_.get());
      if (last.ok()) return last;
      process_->Stop();
      if (!absl::IsFailedPrecondition(last)) break;
    }
    return last;
  }

  // Replaces the rules ("" for none) and reloads them.
  absl::Status SetRules(const std::string& rules) {
    if (!WriteRules(rules)) return absl::InternalError("cannot write the rules");
    absl::StatusOr<tended::testing::HttpProbeResponse> response =
        tended::testing::HttpRequestLoopback(port_, "POST", "/-/reload", absl::Seconds(20));
    if (!response.ok()) return response.status();
    if (response->status != 200) return absl::InternalError(response->body);
    return absl::OkStatus();
  }

  int port() const { return port_; }

 private:
  bool WriteRules(const std::string& rules) {
    return WriteFile(dir_ + "/rules.yml",
                     absl::StrCat("groups:\n  - name: promise-faults\n    interval: 1s\n    rules:",
                                  rules.empty() ? " []\n" : rules));
  }

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Waits until ExplainGates shows the `alerts` gate for reboots with `verdict`.
absl::Status WaitAlertsGate(OperatorService::Stub& ops, tended::v1::GateVerdict verdict) {
  return tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        tended::v1::ExplainGatesRequest request;
        request.set_kind(kReboot);
        tended::v1::ExplainGatesResponse response;
        grpc::Status status = ops.ExplainGates(CallContext().get(), request, &response);
        if (!status.ok()) return absl::UnavailableError(Describe(status));
        for (const auto& explanation : response.explanations()) {
          for (const auto& gate : explanation.gates()) {
            if (gate.gate() == "alerts" && gate.verdict() == verdict) return true;
          }
        }
        return absl::UnavailableError(ExplainText(ops, kReboot));
      },
      absl::Seconds(90), "the alerts gate to change", nullptr, absl::Milliseconds(500));
}

// Fault 3 again: an alert that starts firing after the grant stops the reboot.
TEST_F(PromiseFaultsTest, AlertFiringAfterTheGrantStopsTheDisruption) {
  if (::access("/usr/bin/prometheus", X_OK) != 0) {
    GTEST_SKIP() << "/usr/bin/prometheus is not installed (Debian package prometheus)";
  }
  std::filesystem::create_directories(dir_.Path("prometheus"));
  Prometheus prometheus(dir_.Path("prometheus"));
  ASSERT_TRUE(prometheus.Start().ok());
  WriteConfig(kRebootLease,
              absl::StrCat("alerts:\n  prometheus_url: http://127.0.0.1:", prometheus.port(),
                           "\n  firing_only: true\n  timeout: 5s\n"));
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

  ASSERT_TRUE(prometheus
                  .SetRules(R"yaml(
      - alert: PromiseFaultsFiring
        expr: vector(1)
        for: 0s
        labels:
          severity: critical
)yaml")
                  .ok());
  absl::Status seen = WaitAlertsGate((*coordinator)->ops(), tended::v1::GATE_VERDICT_BLOCK);
  ASSERT_TRUE(seen.ok()) << seen;

  grpc::Status began = a.Begin("reboot");
  EXPECT_FALSE(began.ok()) << "BeginDisruption while an alert fires answered OK";
  EXPECT_EQ(began.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(began);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->size(), 1u) << "the lease should be kept while the act waits";
  EXPECT_EQ(active->front().phase(), tended::v1::LEASE_PHASE_GRANTED)
      << "disrupting while an alert fires: " << Describe(active->front());

  ASSERT_TRUE(prometheus.SetRules("").ok());
  ASSERT_TRUE(WaitAlertsGate((*coordinator)->ops(), tended::v1::GATE_VERDICT_PASS).ok());
  absl::Status begins = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        grpc::Status status = a.Begin("reboot");
        if (status.ok()) return true;
        return absl::UnavailableError(Describe(status));
      },
      absl::Seconds(60), "BeginDisruption once the alert stopped", nullptr, absl::Seconds(1));
  EXPECT_TRUE(begins.ok()) << begins;
}

tended::v1::OsUpgradeFacts Plan(const std::string& version) {
  tended::v1::OsUpgradeFacts os;
  os.set_upgrades_available(1);
  os.set_plan_digest(absl::StrCat("digest-demo-libssl-", version));
  tended::v1::PackageVersion* planned = os.add_planned_upgrades();
  planned->set_name("demo-libssl");
  planned->set_version(version);
  *os.mutable_plan_time() = ToProtoTimestamp(absl::Now());
  return os;
}

tended::v1::PackageChange Change(const std::string& to_version) {
  tended::v1::PackageChange change;
  change.set_name("demo-libssl");
  change.set_from_version("0.9");
  change.set_to_version(to_version);
  return change;
}

// Fault 4: the canary vets what is installed, not only what was planned at the grant.
TEST_F(PromiseFaultsTest, CanaryVetsTheVersionsTheStepInstalls) {
  WriteConfig(kOsUpgradeLeaseWithCanary);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent canary("canary", "agent-canary", "boot-c1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  for (WireAgent* agent : {&canary, &b}) {
    agent->SetChannel((*coordinator)->channel());
    agent->SetOsUpgrade(Plan("1"));
    ASSERT_TRUE(agent->Report().ok());
  }
  FleetHeartbeat heartbeat;
  heartbeat.Add(&canary);
  heartbeat.Add(&b);

  // The canary installs demo-libssl 1 and is verified.
  absl::StatusOr<Lease> canary_lease = WaitForGrant(canary, kOsUpgrade);
  ASSERT_TRUE(canary_lease.ok()) << canary_lease.status();
  grpc::Status began = canary.Begin("dpkg", {Change("1")});
  ASSERT_TRUE(began.ok()) << Describe(began);
  tended::v1::StepReport step;
  step.set_step("dpkg");
  step.set_state(tended::v1::STEP_STATE_SUCCEEDED);
  *step.add_packages() = Change("1");
  *step.mutable_start_time() = ToProtoTimestamp(absl::Now() - absl::Seconds(2));
  *step.mutable_end_time() = ToProtoTimestamp(absl::Now());
  ASSERT_TRUE(canary.ReportStep(step).ok());
  tended::v1::OsUpgradeFacts done;
  *done.mutable_plan_time() = ToProtoTimestamp(absl::Now());
  *done.mutable_last_step() = step;
  done.mutable_last_step()->set_lease_id(canary_lease->id());
  canary.SetOsUpgrade(done);
  ASSERT_TRUE(canary.Report().ok());
  absl::Status verified = WaitNoActiveLease((*coordinator)->ops(), "canary");
  ASSERT_TRUE(verified.ok()) << verified;
  canary.ForgetLease();

  // B planned demo-libssl 1 and is granted; at the act it names version 2.
  absl::StatusOr<Lease> lease_b = WaitForGrant(b, kOsUpgrade);
  ASSERT_TRUE(lease_b.ok()) << lease_b.status();
  grpc::Status unvetted = b.Begin("dpkg", {Change("2")});
  EXPECT_FALSE(unvetted.ok())
      << "node-b may install demo-libssl 2, which the canary never installed: "
      << Describe(unvetted);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-b");
  ASSERT_TRUE(active.ok()) << active.status();
  for (const Lease& lease : *active) {
    EXPECT_NE(lease.phase(), tended::v1::LEASE_PHASE_DISRUPTING)
        << "disrupting with an unvetted version: " << Describe(lease);
  }
  absl::Status returned = WaitNoActiveLease((*coordinator)->ops(), "node-b", absl::Seconds(30));
  EXPECT_TRUE(returned.ok()) << "the lease should be returned: " << returned;
}

// Fault 7: a pod matching a blocking-pod selector is a gate, not a grant-and-return loop.
TEST_F(PromiseFaultsTest, BlockingPodIsAGateBeforeTheGrant) {
  const std::string fake = ProgramPath("TENDED_FAKE_KUBE_APISERVER_BINARY",
                                       TENDED_BINARY_DIR "/tests/fake-kube-apiserver");
  const std::string kubeconfig = dir_.Path("kubeconfig");
  absl::StatusOr<std::unique_ptr<ChildProcess>> kube =
      ChildProcess::Start({fake, "--nodes", "node-a,node-b", "--kubeconfig_out", kubeconfig,
                           "--labeled_pods", "node-a/backup-0/app=backup"},
                          dir_.Path("kube.log"));
  ASSERT_TRUE(kube.ok()) << kube.status();
  absl::Status ready = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        if (ReadText(kubeconfig).empty()) return absl::UnavailableError("no kubeconfig yet");
        return true;
      },
      absl::Seconds(30), "the fake API server's kubeconfig", kube->get());
  ASSERT_TRUE(ready.ok()) << ready;
  WriteConfig(kRebootLease, absl::StrCat("kubernetes:\n  enabled: true\n  kubeconfig: ", kubeconfig,
                                         "\n  drain:\n    timeout: 60s\n"
                                         "  poll_interval: 1s\n  facts_max_age: 10s\n"
                                         "  blocking_pod_selector: \"app=backup\"\n"));
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-node-a");
  WireAgent b("node-b", "agent-b", "boot-node-b");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  absl::SleepFor(absl::Seconds(8));  // A report deadline: the fleet is known.

  // Five check cycles of the agent, each asking once.
  std::vector<std::string> grants;
  std::string last;
  for (int cycle = 0; cycle < 5; ++cycle) {
    tended::v1::AcquireLeaseResponse response;
    grpc::Status status = a.Acquire(kReboot, "wire agent: reboot-required", &response);
    if (status.ok() && response.has_lease() && !response.lease().id().empty()) {
      grants.push_back(Describe(response.lease()));
      // Returned once the drain fails on the blocking pod; the agent asks again.
      absl::Status returned = WaitNoActiveLease((*coordinator)->ops(), "node-a", absl::Seconds(90));
      ASSERT_TRUE(returned.ok()) << returned;
      a.ForgetLease();
    } else {
      last = status.ok() ? GatesText(response.gates()) : Describe(status);
    }
    absl::SleepFor(absl::Seconds(2));
  }
  absl::StatusOr<std::vector<tended::v1::Event>> events = ListAllEvents((*coordinator)->ops());
  ASSERT_TRUE(events.ok()) << events.status();
  int granted_events = 0;
  for (const auto& event : *events) {
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED && event.node_name() == "node-a") {
      ++granted_events;
    }
  }
  EXPECT_TRUE(grants.empty()) << grants.size() << " grants in 5 check cycles although a "
                              << "blocking pod runs on node-a: " << absl::StrJoin(grants, ", ");
  EXPECT_EQ(granted_events, 0);
  EXPECT_THAT(last, HasSubstr("BLOCK")) << "the answer should say what blocks";
}

}  // namespace
}  // namespace tended::promise_faults
