// The real coordinator server with its Kubernetes worker and the real HttpKubeClient
// against the fake API server, and real agents over loopback gRPC with simulated reboots:
// every node is cordoned and drained before its agent reboots it (checked at the moment of
// each reboot), verified through the API and uncordoned after, one node at a time.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "agent/simulated_rebooter.h"
#include "common/status_macros.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/agent_under_test.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended {
namespace {

using testing::FakeKubeApiServer;
using testing::FakeNodeSpec;
using testing::FakePodSpec;

constexpr absl::Duration kSettle = absl::Seconds(60);

bool WaitFor(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

bool Unschedulable(const FakeKubeApiServer& server, const std::string& node) {
  nlohmann::json spec = server.GetNode(node)->at("spec");
  return spec.contains("unschedulable") && spec["unschedulable"].get<bool>();
}

// Checks the node is cordoned and drained when its agent reboots, then reboots it inside
// its root and plays its kubelet: a new bootID and Ready again.
class CheckingRebooter final : public agent::Rebooter {
 public:
  CheckingRebooter(std::unique_ptr<agent::SimulatedRebooter> inner, FakeKubeApiServer& server,
                   std::string node)
      : inner_(std::move(inner)), server_(server), node_(std::move(node)) {}

  absl::Status Reboot(absl::string_view reason) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++reboots_;
      if (!Unschedulable(server_, node_)) violations_.push_back("rebooted while schedulable");
      if (server_.GetPod("default", "web-" + node_).has_value()) {
        violations_.push_back("rebooted before its pod was evicted");
      }
    }
    RETURN_IF_ERROR(inner_->Reboot(reason));
    const std::string now =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
    // Counted before UpdateNode: its callback runs under the server's lock, which Reboot
    // takes inside mutex_ above (TSan's lock-order check).
    const std::string boot_id = "kb-" + node_ + "-" + std::to_string(reboots());
    server_.UpdateNode(node_, [&](nlohmann::json& json) {
      json["status"]["nodeInfo"]["bootID"] = boot_id;
      for (auto& condition : json["status"]["conditions"]) {
        if (condition["type"] == "Ready") condition["lastTransitionTime"] = now;
      }
    });
    return absl::OkStatus();
  }
  bool simulated() const override { return true; }
  int reboots() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reboots_;
  }
  std::vector<std::string> violations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return violations_;
  }

 private:
  std::unique_ptr<agent::SimulatedRebooter> inner_;
  FakeKubeApiServer& server_;
  const std::string node_;
  mutable std::mutex mutex_;
  int reboots_ = 0;
  std::vector<std::string> violations_;
};

// A node whose agent's reboots go through a CheckingRebooter.
class NodeUnderTest {
 public:
  NodeUnderTest(const std::string& name, int port, FakeKubeApiServer& server)
      : agent_(name, port, [&](std::unique_ptr<agent::SimulatedRebooter> simulated) {
          auto checking = std::make_unique<CheckingRebooter>(std::move(simulated), server, name);
          rebooter_ = checking.get();
          return checking;
        }) {}
  void NeedReboot() { agent_.NeedReboot(); }
  const CheckingRebooter& rebooter() const { return *rebooter_; }

 private:
  CheckingRebooter* rebooter_ = nullptr;  // Owned by agent_.
  testing::AgentUnderTest agent_;
};

TEST(KubeFlowOverGrpc, AgentsRebootOnlyAfterTheDrainAndNodesAreUncordonedAfter) {
  FakeKubeApiServer server;
  ASSERT_TRUE(server.Start().ok());
  const std::vector<std::string> names = {"k8s-master", "k8s-node1", "k8s-node2"};
  for (const std::string& name : names) {
    server.AddNode(tended::testing::MakeNodeJson(
        FakeNodeSpec(name).BootId("kb-" + name + "-0").TransitionAt(absl::Now() - absl::Hours(1))));
    server.AddPod(tended::testing::MakePodJson(FakePodSpec("web-" + name, name)));
  }
  // Evicted pods take a while to terminate: a reboot that did not wait would find them.
  server.SetPodDeletionDelay(absl::Milliseconds(800));
  // An operator cordoned k8s-node2 for reasons of their own.
  server.UpdateNode("k8s-node2",
                    [](nlohmann::json& json) { json["spec"]["unschedulable"] = true; });

  testing::TempDir state;
  coordinator::CoordinatorConfig config =
      testing::LoopbackCoordinatorConfig(state.Path("state"), absl::Milliseconds(300));
  config.kubernetes.enabled = true;
  config.kubernetes.poll_interval = absl::Milliseconds(100);
  config.kubernetes.drain.timeout = absl::Seconds(20);

  testing::ServedCoordinator::Options options;
  options.before_serving = [&server](coordinator::Coordinator& core) {
    core.AttachKubernetes(kube::testing::ClientFor(server, Clock::Real()), absl::OkStatus(), "test",
                          kube::Sleeper::Real(), /*start_worker=*/true);
  };
  auto served = testing::ServedCoordinator::Start(config, options);
  ASSERT_TRUE(served.ok()) << served.status();
  coordinator::Coordinator* core = &(*served)->core();
  const int port = (*served)->port();

  std::vector<std::unique_ptr<NodeUnderTest>> nodes;
  for (const std::string& name : names) {
    nodes.push_back(std::make_unique<NodeUnderTest>(name, port, server));
  }
  ASSERT_TRUE(WaitFor([&] { return core->ListNodes().nodes_size() == 3; }, kSettle));
  for (auto& node : nodes) node->NeedReboot();

  EXPECT_TRUE(WaitFor(
      [&] {
        for (auto& node : nodes) {
          if (node->rebooter().reboots() != 1) return false;
        }
        return core->ListLeases(tended::v1::ListLeasesRequest()).leases().empty();
      },
      kSettle));
  for (auto& node : nodes) {
    EXPECT_EQ(node->rebooter().reboots(), 1);
    EXPECT_THAT(node->rebooter().violations(), ::testing::IsEmpty());
  }
  EXPECT_FALSE(Unschedulable(server, "k8s-master"));
  EXPECT_FALSE(Unschedulable(server, "k8s-node1"));
  EXPECT_TRUE(Unschedulable(server, "k8s-node2"));  // Not ours to undo.

  tended::v1::ListEventsRequest request;
  request.set_limit(1000);
  auto events = core->ListEvents(request);
  ASSERT_TRUE(events.ok());
  int released = 0;
  for (const auto& event : events->events()) {
    EXPECT_LE(event.disrupted_nodes(), 1u) << event.DebugString();
    released += event.type() == tended::v1::EVENT_TYPE_LEASE_RELEASED ? 1 : 0;
  }
  EXPECT_EQ(released, 3);
  nodes.clear();
  served->reset();
}

}  // namespace
}  // namespace tended
