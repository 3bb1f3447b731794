// The REBOOT lease's Kubernetes steps, run by a real Coordinator with the real
// HttpKubeClient against the fake API server, on a fake clock: the agent's side is played
// by calling the coordinator as the agent would.
#include "coordinator/leases/drain_flow.h"

#include <memory>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended::coordinator {
namespace {

using tended::state::v1::NodeDisruption;
using tended::testing::FakeClock;
using tended::testing::FakeKubeApiServer;
using tended::testing::FakeNodeSpec;
using tended::testing::FakePodSpec;
using tended::testing::MakeNodeJson;
using tended::testing::MakePodJson;
using tended::testing::TempDir;
using tended::v1::Lease;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using Rule = FakeKubeApiServer::EvictionRule;

// Advances the fake clock; optionally runs a hook on the first sleep.
class TestSleeper final : public kube::Sleeper {
 public:
  explicit TestSleeper(FakeClock& clock) : clock_(clock) {}
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
  FakeClock& clock_;
  std::function<void()> on_sleep_;
};

class DisruptionFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    const absl::Time long_ago = clock_.Now() - absl::Hours(48);
    for (const char* name : {"w1", "w2"}) {
      server_.AddNode(MakeNodeJson(
          FakeNodeSpec(name).TransitionAt(long_ago).BootId(std::string("kb-") + name + "-0")));
    }
    config_.listen_address = "127.0.0.1:0";
    config_.state_file = dir_.Path("state.json");
    LeasePolicy reboot;
    reboot.soak = absl::Hours(1);
    reboot.renew_deadline = absl::Minutes(10);
    reboot.return_deadline = absl::Minutes(30);
    config_.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    config_.kubernetes.enabled = true;
    config_.kubernetes.drain.timeout = absl::Minutes(10);
  }

  void StartCoordinator(std::unique_ptr<kube::KubeClient> client = nullptr) {
    coordinator_.reset();
    store_ = std::make_unique<FileStateStore>(config_.state_file);
    auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
    ASSERT_TRUE(created.ok()) << created.status();
    coordinator_ = *std::move(created);
    if (client == nullptr) client = kube::testing::ClientFor(server_, clock_);
    coordinator_->AttachKubernetes(std::move(client), absl::OkStatus(), "test", sleeper_,
                                   /*start_worker=*/false);
    ASSERT_NE(coordinator_->disruption_flow(), nullptr);
  }

  void Report(const std::string& node, const std::string& boot_id, bool reboot_required) {
    ASSERT_TRUE(
        coordinator_->ReportFacts(testing::FactsReport(node, boot_id, reboot_required)).ok());
  }

  void Acquire(const std::string& node) {
    ASSERT_TRUE(
        coordinator_
            ->AcquireLease(testing::RebootLeaseRequest(node, "reboot-required: linux-image"))
            .ok());
  }

  void Run() { coordinator_->disruption_flow()->RunOnce(); }

  std::optional<Lease> LeaseOf(const std::string& node) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(true);
    std::optional<Lease> found;
    const tended::v1::ListLeasesResponse response = coordinator_->ListLeases(request);
    for (const Lease& lease : response.leases()) {
      if (lease.node_name() == node) found = lease;
    }
    return found;
  }

  absl::Status Begin(const Lease& lease) {
    tended::v1::BeginDisruptionRequest request;
    request.set_lease_id(lease.id());
    request.set_fencing_token(lease.fencing_token());
    request.set_step("reboot");
    return coordinator_->BeginDisruption(request).status();
  }

  // Reports w1 with reboot required and runs the flow until its lease is drained.
  Lease GrantAndDrain(const std::string& node = "w1") {
    Report(node, "agent-boot-1", true);
    Acquire(node);
    for (int i = 0; i < 3; ++i) Run();
    std::optional<Lease> lease = LeaseOf(node);
    EXPECT_TRUE(lease.has_value());
    return lease.value_or(Lease());
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
    auto events = coordinator_->ListEvents(request);
    EXPECT_TRUE(events.ok());
    return {events->events().begin(), events->events().end()};
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

  FakeClock clock_;
  TestSleeper sleeper_{clock_};
  FakeKubeApiServer server_{clock_};
  TempDir dir_;
  CoordinatorConfig config_;
  std::unique_ptr<FileStateStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(DisruptionFlowTest, CordonDrainRebootVerifyUncordonInOrder) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  StartCoordinator();
  Report("w2", "agent-w2", false);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  Run();  // Reads the facts; the gates pass; the grant is recorded for the drain.
  std::optional<Lease> lease = LeaseOf("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_TRUE(lease->preparing());
  absl::Status early = Begin(*lease);
  EXPECT_EQ(early.code(), absl::StatusCode::kUnavailable) << early;
  EXPECT_FALSE(Unschedulable("w1"));

  Run();  // Cordon and drain.
  lease = LeaseOf("w1");
  EXPECT_FALSE(lease->preparing());
  EXPECT_THAT(lease->status_message(), HasSubstr("drained"));
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_FALSE(server_.GetPod("default", "web-1").has_value());
  EXPECT_TRUE(server_.GetNode("w1")
                  ->at("metadata")
                  .at("annotations")
                  .contains("tended.io/disrupted-since"));
  ASSERT_TRUE(Begin(*lease).ok());  // The agent may reboot now.

  RebootNode("w1", /*ready=*/false);
  Run();
  lease = LeaseOf("w1");
  EXPECT_EQ(lease->phase(), tended::v1::LEASE_PHASE_VERIFYING);
  EXPECT_THAT(lease->status_message(), HasSubstr("not Ready"));
  EXPECT_TRUE(Unschedulable("w1"));

  server_.UpdateNode("w1", [](nlohmann::json& json) {
    for (auto& condition : json["status"]["conditions"]) {
      if (condition["type"] == "Ready") condition["status"] = "True";
    }
  });
  Run();
  lease = LeaseOf("w1");
  EXPECT_EQ(lease->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_FALSE(server_.GetNode("w1")
                   ->at("metadata")
                   .at("annotations")
                   .contains("tended.io/disrupted-since"));

  // cordon < eviction < uncordon, each once.
  std::vector<size_t> cordons = UnschedulablePatches(true);
  std::vector<size_t> uncordons = UnschedulablePatches(false);
  ASSERT_EQ(cordons.size(), 1u);
  ASSERT_EQ(uncordons.size(), 1u);
  size_t eviction = RequestPosition("POST /api/v1/namespaces/default/pods/web-1/eviction");
  ASSERT_NE(eviction, std::string::npos);
  EXPECT_LT(cordons[0], eviction);
  EXPECT_LT(eviction, uncordons[0]);

  std::vector<std::string> reasons = KubeEventReasons();
  for (const char* reason :
       {"TendedCordon", "TendedDrain", "TendedDrained", "TendedUncordon", "TendedReleased"}) {
    EXPECT_THAT(reasons, Contains(reason));
  }
  std::vector<tended::v1::Event> events = Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_LEASE_RELEASED);
  int steps = 0;
  for (const auto& event : events) {
    steps += event.type() == tended::v1::EVENT_TYPE_KUBERNETES_STEP ? 1 : 0;
    EXPECT_LE(event.disrupted_nodes(), 1u);
    // Booting takes a while: a node not Ready yet is waited for, not reported as failed.
    EXPECT_NE(event.type(), tended::v1::EVENT_TYPE_LEASE_VERIFICATION_FAILED) << event.message();
  }
  EXPECT_GE(steps, 4);  // Announced, cordoned, drained, uncordoned.
}

TEST_F(DisruptionFlowTest, PdbBlockedDrainTimesOutUncordonsAndReturnsTheLease) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(-1));
  StartCoordinator();
  Lease lease = GrantAndDrain();
  std::optional<Lease> after = LeaseOf("w1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(after->status_message(), HasSubstr("drain failed"));
  EXPECT_THAT(after->status_message(), HasSubstr("db-0"));
  EXPECT_THAT(after->status_message(), HasSubstr("uncordoned"));
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_TRUE(server_.GetPod("default", "db-0").has_value());
  EXPECT_EQ(UnschedulablePatches(true).size(), 1u);
  EXPECT_EQ(UnschedulablePatches(false).size(), 1u);
  // No reboot under it: the fence refuses.
  EXPECT_EQ(Begin(lease).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(KubeEventReasons(), Contains("TendedDrainFailed"));
  bool returned = false;
  for (const auto& event : Events()) {
    returned |= event.type() == tended::v1::EVENT_TYPE_LEASE_RETURNED &&
                event.message().find("drain failed") != std::string::npos;
  }
  EXPECT_TRUE(returned);
  // Bounded by the drain timeout on the fake clock.
  EXPECT_LE(clock_.Now() - FromProtoTimestamp(lease.grant_time()), absl::Minutes(11));
}

TEST_F(DisruptionFlowTest, NodeThatNeverComesBackKeepsItsLeaseAndGoesOverdue) {
  StartCoordinator();
  Report("w2", "agent-w2", true);
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  Acquire("w2");
  clock_.Advance(absl::Minutes(31));
  coordinator_->Tick();
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  EXPECT_TRUE(after->overdue());
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_FALSE(LeaseOf("w2").has_value());  // The slot is never handed over.
  EXPECT_FALSE(Unschedulable("w2"));
}

TEST_F(DisruptionFlowTest, OperatorCordonIsNeverUndone) {
  server_.UpdateNode("w1", [](nlohmann::json& json) { json["spec"]["unschedulable"] = true; });
  StartCoordinator();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  RebootNode("w1", /*ready=*/true);
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_TRUE(UnschedulablePatches(false).empty());
  EXPECT_TRUE(UnschedulablePatches(true).empty());
}

TEST_F(DisruptionFlowTest, TokenRotationMidFlow) {
  const std::string token_file = dir_.Path("token");
  ASSERT_TRUE(WriteFileAtomically(token_file, "token-1\n").ok());
  server_.SetExpectedToken("token-1");
  kube::KubeConnection connection;
  connection.server = server_.url();
  connection.token_file = token_file;
  kube::KubeClientOptions options;
  options.clock = &clock_;
  options.token_reread_interval = absl::Hours(1);
  auto client = kube::HttpKubeClient::FromConnection(connection, options);
  ASSERT_TRUE(client.ok()) << client.status();
  StartCoordinator(*std::move(client));
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  EXPECT_TRUE(Unschedulable("w1"));

  ASSERT_TRUE(WriteFileAtomically(token_file, "token-2\n").ok());
  server_.SetExpectedToken("token-2");
  RebootNode("w1", /*ready=*/true);
  Run();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_EQ(server_.last_token(), "token-2");
  EXPECT_GE(server_.unauthorized_count(), 1);
}

TEST_F(DisruptionFlowTest, RestartMidDrainResumes) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  server_.SetEvictionRule("default", "web-1", Rule::Block(2, /*retry_after_seconds=*/5));
  StartCoordinator();
  // The coordinator goes away at the first wait of the drain.
  sleeper_.OnNextSleep([this] { coordinator_->disruption_flow()->Stop(); });
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  Run();
  Run();
  ASSERT_TRUE(Unschedulable("w1"));
  ASSERT_TRUE(server_.GetPod("default", "web-1").has_value());
  {
    std::optional<Lease> lease = LeaseOf("w1");
    ASSERT_TRUE(lease.has_value());
    EXPECT_TRUE(lease->preparing());
    auto state = store_->Load();
    ASSERT_TRUE(state.ok());
    ASSERT_EQ(state->disruptions_size(), 1);
    EXPECT_EQ(state->disruptions(0).step(), NodeDisruption::STEP_DRAINING);
    EXPECT_TRUE(state->disruptions(0).cordoned_by_us());
  }

  StartCoordinator();  // A new process on the same state.
  Lease lease = *LeaseOf("w1");
  EXPECT_EQ(Begin(lease).code(), absl::StatusCode::kUnavailable);
  Run();
  lease = *LeaseOf("w1");
  EXPECT_FALSE(lease.preparing());
  EXPECT_FALSE(server_.GetPod("default", "web-1").has_value());
  ASSERT_TRUE(Begin(lease).ok());
  RebootNode("w1", /*ready=*/true);
  Run();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_FALSE(Unschedulable("w1"));  // The cordon was ours, across the restart.
  EXPECT_EQ(UnschedulablePatches(true).size(), 1u);
}

TEST_F(DisruptionFlowTest, HolderGivingTheLeaseBackIsUncordonedBeforeTheRelease) {
  StartCoordinator();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Unschedulable("w1"));
  Report("w1", "agent-boot-1", false);  // The need went away.
  tended::v1::ReleaseLeaseRequest release;
  release.set_lease_id(lease.id());
  release.set_fencing_token(lease.fencing_token());
  release.set_reason("the reboot-required sentinel went away");
  ASSERT_TRUE(coordinator_->ReleaseLease(release).ok());
  EXPECT_NE(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);  // Still cordoned.
  Run();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_FALSE(Unschedulable("w1"));
}

TEST_F(DisruptionFlowTest, ForceReleaseUncordonsAfterwards) {
  StartCoordinator();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  tended::v1::ForceReleaseLeaseRequest force;
  force.set_lease_id(lease.id());
  force.set_reason("node replaced");
  ASSERT_TRUE(coordinator_->ForceReleaseLease(force).ok());
  Run();
  EXPECT_FALSE(Unschedulable("w1"));
  auto state = store_->Load();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->disruptions_size(), 0);
}

TEST_F(DisruptionFlowTest, UnreachableApiBlocksEveryGrantAndSaysWhy) {
  store_ = std::make_unique<FileStateStore>(config_.state_file);
  auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
  ASSERT_TRUE(created.ok());
  coordinator_ = *std::move(created);
  coordinator_->AttachKubernetes(
      nullptr, absl::FailedPreconditionError("no kubeconfig and no in-cluster environment"),
      "in-cluster", sleeper_, /*start_worker=*/false);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  Run();
  coordinator_->Tick();
  EXPECT_FALSE(LeaseOf("w1").has_value());
  auto explained = coordinator_->ExplainGates(tended::v1::ExplainGatesRequest());
  ASSERT_TRUE(explained.ok());
  bool found = false;
  for (const auto& gate : explained->explanations(0).gates()) {
    if (gate.gate() != "kubernetes") continue;
    found = true;
    EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
    EXPECT_THAT(gate.reason(), HasSubstr("no kubeconfig"));
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(server_.request_log().empty());
}

TEST_F(DisruptionFlowTest, WithoutAnyApiConfigurationTheCoordinatorStillServes) {
  store_ = std::make_unique<FileStateStore>(config_.state_file);
  config_.kubernetes.kubeconfig = dir_.Path("missing-kubeconfig");
  auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
  ASSERT_TRUE(created.ok());
  coordinator_ = *std::move(created);
  AttachKubernetesFromConfig(*coordinator_);
  ASSERT_NE(coordinator_->disruption_flow(), nullptr);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  coordinator_->Tick();
  EXPECT_FALSE(LeaseOf("w1").has_value());
  EXPECT_FALSE(coordinator_->disruption_flow()->GateFactsSnapshot().status.ok());
}

TEST_F(DisruptionFlowTest, KubernetesDisabledChangesNothing) {
  config_.kubernetes.enabled = false;
  store_ = std::make_unique<FileStateStore>(config_.state_file);
  auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
  ASSERT_TRUE(created.ok());
  coordinator_ = *std::move(created);
  AttachKubernetesFromConfig(*coordinator_);
  EXPECT_EQ(coordinator_->disruption_flow(), nullptr);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  std::optional<Lease> lease = LeaseOf("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_FALSE(lease->preparing());
  EXPECT_TRUE(Begin(*lease).ok());
  EXPECT_TRUE(server_.request_log().empty());
}

}  // namespace
}  // namespace tended::coordinator
