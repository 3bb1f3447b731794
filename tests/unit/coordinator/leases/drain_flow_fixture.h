// The fixture of the drain flow's tests (drain_flow_test.cc, drain_flow_interruptions_test.cc):
// a real Coordinator on a real ledger (CoordinatorHarness) with the real HttpKubeClient
// against the fake API server, on a fake clock, with two nodes w1 and w2. The agent's side
// is played by calling the coordinator as the agent would, and the flow's worker by calling
// Run(); the fake server's request log tells what was done to the nodes, and in what order.
#ifndef TENDED_TESTS_UNIT_COORDINATOR_LEASES_DRAIN_FLOW_FIXTURE_H_
#define TENDED_TESTS_UNIT_COORDINATOR_LEASES_DRAIN_FLOW_FIXTURE_H_

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/leases/drain_flow.h"
#include "gtest/gtest.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended::coordinator {

// Advances the fake clock; optionally runs a hook on the first sleep.
class TestSleeper final : public kube::Sleeper {
 public:
  explicit TestSleeper(tended::testing::FakeClock& clock) : clock_(clock) {}
  void Sleep(absl::Duration duration) override {
    clock_.Advance(duration);
    if (on_sleep_) {
      auto hook = std::move(on_sleep_);
      on_sleep_ = nullptr;
      hook();
    }
  }
  void OnNextSleep(std::function<void()> hook) { on_sleep_ = std::move(hook); }

 private:
  tended::testing::FakeClock& clock_;
  std::function<void()> on_sleep_;
};

inline CoordinatorConfig FlowConfig() {
  CoordinatorConfig config;
  // Long enough that the drains' waits on the fake clock never make a node silent.
  config.fleet.report_deadline = absl::Hours(1);
  config.fleet.report_interval = absl::Seconds(30);
  LeasePolicy reboot;
  reboot.soak = absl::Hours(1);
  reboot.renew_deadline = absl::Minutes(10);
  reboot.return_deadline = absl::Minutes(30);
  reboot.begin_wait = absl::Minutes(20);
  config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
  config.kubernetes.enabled = true;
  config.kubernetes.drain.timeout = absl::Minutes(10);
  // The facts are read at every RunOnce; the fake clock jumps between them.
  config.kubernetes.facts_max_age = absl::Hours(2);
  return config;
}

class DrainFlowTest : public ::testing::Test {
 protected:
  DrainFlowTest() : harness_(FlowConfig(), &clock_) {}

  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    const absl::Time long_ago = clock_.Now() - absl::Hours(48);
    for (const char* name : {"w1", "w2"}) {
      server_.AddNode(tended::testing::MakeNodeJson(
          tended::testing::FakeNodeSpec(name).TransitionAt(long_ago).BootId(std::string("kb-") +
                                                                            name + "-0")));
    }
  }

  CoordinatorConfig& config() { return harness_.mutable_config(); }
  Coordinator& coordinator() { return harness_.coordinator(); }
  DrainFlow& flow() { return *harness_.coordinator().drain_flow(); }

  // Starts (or restarts on the same state) with the Kubernetes steps attached.
  void StartCoordinator(std::unique_ptr<kube::KubeClient> client = nullptr) {
    ASSERT_TRUE(harness_.Restart().ok());
    if (client == nullptr) client = kube::testing::ClientFor(server_, clock_);
    coordinator().AttachKubernetes(std::move(client), absl::OkStatus(), "test", sleeper_,
                                   /*start_worker=*/false);
    ASSERT_NE(coordinator().drain_flow(), nullptr);
  }

  // A first start: the node list is read, every node reports, the recovery period passes.
  void BringUp() {
    Run();
    Report("w1", "agent-boot-1", false);
    Report("w2", "agent-w2", false);
    clock_.Advance(FlowConfig().fleet.report_deadline + absl::Seconds(1));
    Run();
    Report("w1", "agent-boot-1", false);
    Report("w2", "agent-w2", false);
    coordinator().Tick();
  }

  void Report(const std::string& node, const std::string& boot_id, bool reboot_required) {
    auto reported = coordinator().ReportFacts(testing::FactsReport(node, boot_id, reboot_required));
    ASSERT_TRUE(reported.ok()) << reported.status();
  }

  tended::v1::AcquireLeaseResponse Acquire(const std::string& node) {
    auto response = coordinator().AcquireLease(
        testing::RebootLeaseRequest(node, "reboot-required: linux-image"));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : tended::v1::AcquireLeaseResponse();
  }

  void Run() { flow().RunOnce(); }

  std::optional<tended::v1::Lease> LeaseOf(const std::string& node) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(true);
    std::optional<tended::v1::Lease> found;
    const tended::v1::ListLeasesResponse response = coordinator().ListLeases(request);
    for (const tended::v1::Lease& lease : response.leases()) {
      if (lease.node_name() == node) found = lease;
    }
    return found;
  }

  absl::Status Begin(const tended::v1::Lease& lease) {
    return coordinator().BeginDisruption(tended::testing::BeginRequest(lease, "reboot")).status();
  }

  // `node` needs a reboot, asks, and the flow runs until its lease is drained.
  tended::v1::Lease GrantAndDrain(const std::string& node = "w1") {
    Report(node, "agent-boot-1", true);
    Acquire(node);
    for (int i = 0; i < 3; ++i) Run();
    std::optional<tended::v1::Lease> lease = LeaseOf(node);
    EXPECT_TRUE(lease.has_value());
    return lease.value_or(tended::v1::Lease());
  }

  // The kubelet and the agent come back from the reboot.
  void RebootNode(const std::string& node, bool ready) {
    server_.UpdateNode(node, [&](nlohmann::json& json) {
      json["status"]["nodeInfo"]["bootID"] = "kb-" + node + "-1";
      for (auto& condition : json["status"]["conditions"]) {
        if (condition["type"] == "Ready") {  // Not the first condition.
          condition["status"] = ready ? "True" : "False";
          condition["lastTransitionTime"] =
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", clock_.Now(), absl::UTCTimeZone());
        }
      }
    });
    Report(node, "agent-boot-2", false);
  }

  bool Unschedulable(const std::string& node) {
    nlohmann::json spec = server_.GetNode(node)->at("spec");
    return spec.contains("unschedulable") && spec["unschedulable"].get<bool>();
  }

  std::vector<tended::v1::Event> Events() {
    tended::v1::ListEventsRequest request;
    request.set_limit(1000);
    auto events = coordinator().ListEvents(request);
    EXPECT_TRUE(events.ok());
    return {events->events().begin(), events->events().end()};
  }

  int CountEvents(tended::v1::EventType type) {
    int count = 0;
    for (const auto& event : Events()) count += event.type() == type ? 1 : 0;
    return count;
  }

  tended::v1::Node NodeNamed(const std::string& name) {
    const tended::v1::ListNodesResponse nodes = coordinator().ListNodes();
    for (const auto& node : nodes.nodes()) {
      if (node.facts().node_name() == name) return node;
    }
    return {};
  }

  std::vector<std::string> KubeEventReasons() {
    std::vector<std::string> reasons;
    for (const nlohmann::json& event : server_.events()) reasons.push_back(event["reason"]);
    return reasons;
  }

  // The request-log positions of the PATCHes setting spec.unschedulable to `value`.
  std::vector<size_t> UnschedulablePatches(bool value) {
    std::vector<size_t> positions;
    std::vector<std::string> log = server_.request_log();
    std::vector<nlohmann::json> patches = server_.node_patches();
    size_t patch = 0;
    for (size_t i = 0; i < log.size() && patch < patches.size(); ++i) {
      if (log[i].rfind("PATCH /api/v1/nodes/", 0) != 0) continue;
      const nlohmann::json& body = patches[patch++];
      if (body.contains("spec") && body["spec"]["unschedulable"] == value) positions.push_back(i);
    }
    return positions;
  }

  size_t RequestPosition(const std::string& request) {
    std::vector<std::string> log = server_.request_log();
    for (size_t i = 0; i < log.size(); ++i) {
      if (log[i] == request) return i;
    }
    return std::string::npos;
  }

  std::vector<tended::state::v1::NodeDisruption> DurableDisruptions() {
    const tended::state::v1::CoordinatorState state = harness_.ledger().DurableState();
    return {state.disruptions().begin(), state.disruptions().end()};
  }

  tended::testing::FakeClock clock_;
  TestSleeper sleeper_{clock_};
  tended::testing::FakeKubeApiServer server_{clock_};
  tended::testing::TempDir dir_;
  tended::testing::CoordinatorHarness harness_;
};

}  // namespace tended::coordinator

#endif  // TENDED_TESTS_UNIT_COORDINATOR_LEASES_DRAIN_FLOW_FIXTURE_H_
