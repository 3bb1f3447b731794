// The REBOOT lease's Kubernetes steps (leases/drain_flow.h), run by a real Coordinator on a
// real ledger (CoordinatorHarness) with the real HttpKubeClient against the fake API
// server, on a fake clock: the agent's side is played by calling the coordinator as the
// agent would, and the flow's worker by calling RunOnce().
#include "coordinator/leases/drain_flow.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended::coordinator {
namespace {

using tended::state::v1::NodeDisruption;
using tended::testing::BeginRequest;
using tended::testing::CoordinatorHarness;
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
using ::testing::IsEmpty;
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

CoordinatorConfig FlowConfig() {
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
      server_.AddNode(MakeNodeJson(
          FakeNodeSpec(name).TransitionAt(long_ago).BootId(std::string("kb-") + name + "-0")));
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

  std::optional<Lease> LeaseOf(const std::string& node) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(true);
    std::optional<Lease> found;
    const tended::v1::ListLeasesResponse response = coordinator().ListLeases(request);
    for (const Lease& lease : response.leases()) {
      if (lease.node_name() == node) found = lease;
    }
    return found;
  }

  absl::Status Begin(const Lease& lease) {
    return coordinator().BeginDisruption(BeginRequest(lease, "reboot")).status();
  }

  // `node` needs a reboot, asks, and the flow runs until its lease is drained.
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

  std::vector<NodeDisruption> DurableDisruptions() {
    const tended::state::v1::CoordinatorState state = harness_.ledger().DurableState();
    return {state.disruptions().begin(), state.disruptions().end()};
  }

  FakeClock clock_;
  TestSleeper sleeper_{clock_};
  FakeKubeApiServer server_{clock_};
  TempDir dir_;
  CoordinatorHarness harness_;
};

TEST_F(DrainFlowTest, CordonDrainRebootVerifyUncordonInOrder) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  ASSERT_TRUE(Acquire("w1").has_lease());
  std::optional<Lease> lease = LeaseOf("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_TRUE(lease->preparing());
  absl::Status early = Begin(*lease);
  EXPECT_EQ(early.code(), absl::StatusCode::kUnavailable) << early;
  EXPECT_THAT(early.message(), HasSubstr("not drained yet"));
  EXPECT_FALSE(Unschedulable("w1"));

  Run();  // The gates are asked again; cordon and drain.
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
  EXPECT_THAT(DurableDisruptions(), IsEmpty());

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

TEST_F(DrainFlowTest, PdbBlockedDrainTimesOutUncordonsReturnsTheLeaseAndBacksOff) {
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(-1));
  StartCoordinator();
  BringUp();
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
  // A failed drain backs the node off: asking again waits, it does not loop.
  EXPECT_TRUE(NodeNamed("w1").has_backoff_until());
  Report("w1", "agent-boot-1", true);
  tended::v1::AcquireLeaseResponse again = Acquire("w1");
  EXPECT_FALSE(again.has_lease());
  bool backoff = false;
  for (const auto& gate : again.gates()) {
    backoff |= gate.gate() == "backoff" && gate.verdict() == tended::v1::GATE_VERDICT_BLOCK;
  }
  EXPECT_TRUE(backoff);
}

TEST_F(DrainFlowTest, NodeThatNeverComesBackKeepsItsLeaseAndGoesOverdue) {
  StartCoordinator();
  BringUp();
  Report("w2", "agent-w2", true);
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  Acquire("w2");
  clock_.Advance(absl::Minutes(31));
  Report("w2", "agent-w2", true);
  coordinator().Tick();
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  EXPECT_TRUE(after->overdue());
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_FALSE(LeaseOf("w2").has_value());  // The slot is never handed over.
  EXPECT_FALSE(Unschedulable("w2"));
}

TEST_F(DrainFlowTest, OperatorCordonIsNeverUndone) {
  server_.UpdateNode("w1", [](nlohmann::json& json) { json["spec"]["unschedulable"] = true; });
  StartCoordinator();
  BringUp();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  RebootNode("w1", /*ready=*/true);
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  bool said = false;
  for (const auto& event : Events()) {
    said |= event.type() == tended::v1::EVENT_TYPE_KUBERNETES_STEP &&
            absl::StrContains(event.message(), "left cordoned, as it was before");
  }
  EXPECT_TRUE(said);
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_TRUE(UnschedulablePatches(false).empty());
  EXPECT_TRUE(UnschedulablePatches(true).empty());
}

TEST_F(DrainFlowTest, OperatorCordonStaysWhenTheDrainFails) {
  server_.UpdateNode("w1", [](nlohmann::json& json) { json["spec"]["unschedulable"] = true; });
  server_.AddPod(MakePodJson(FakePodSpec("db-0", "w1")));
  server_.SetEvictionRule("default", "db-0", Rule::Block(-1));
  StartCoordinator();
  BringUp();
  GrantAndDrain();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(LeaseOf("w1")->status_message(), HasSubstr("left cordoned, as it was before"));
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_TRUE(UnschedulablePatches(false).empty());
}

TEST_F(DrainFlowTest, TokenRotationMidFlow) {
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
  BringUp();
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

TEST_F(DrainFlowTest, RestartMidDrainResumes) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  server_.SetEvictionRule("default", "web-1", Rule::Block(2, /*retry_after_seconds=*/5));
  StartCoordinator();
  BringUp();
  // The coordinator goes away at the first wait of the drain.
  sleeper_.OnNextSleep([this] { flow().Stop(); });
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  Run();
  ASSERT_TRUE(Unschedulable("w1"));
  ASSERT_TRUE(server_.GetPod("default", "web-1").has_value());
  {
    std::optional<Lease> lease = LeaseOf("w1");
    ASSERT_TRUE(lease.has_value());
    EXPECT_TRUE(lease->preparing());
    std::vector<NodeDisruption> disruptions = DurableDisruptions();
    ASSERT_EQ(disruptions.size(), 1u);
    EXPECT_EQ(disruptions[0].step(), NodeDisruption::STEP_DRAINING);
    EXPECT_TRUE(disruptions[0].cordoned_by_us());
  }

  StartCoordinator();  // A new process on the same state.
  Report("w1", "agent-boot-1", true);
  Report("w2", "agent-w2", false);
  Lease lease = *LeaseOf("w1");
  absl::Status early = Begin(lease);
  EXPECT_EQ(early.code(), absl::StatusCode::kUnavailable) << early;
  EXPECT_THAT(early.message(), HasSubstr("not drained yet (draining)"));
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

TEST_F(DrainFlowTest, HolderGivingTheLeaseBackIsUncordonedBeforeTheRelease) {
  StartCoordinator();
  BringUp();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Unschedulable("w1"));
  Report("w1", "agent-boot-1", false);  // The need went away.
  ASSERT_TRUE(
      coordinator()
          .ReleaseLease(testing::ReleaseRequest(lease, "the reboot-required sentinel went away"))
          .ok());
  EXPECT_NE(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);  // Still cordoned.
  Run();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(LeaseOf("w1")->status_message(), HasSubstr("uncordoned"));
  EXPECT_FALSE(Unschedulable("w1"));
  // The holder's own choice: no backoff.
  EXPECT_FALSE(NodeNamed("w1").has_backoff_until());
}

TEST_F(DrainFlowTest, HolderGivingTheLeaseBackWhileDrainingStopsTheDrainAndUncordons) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  server_.SetEvictionRule("default", "web-1", Rule::Block(2, /*retry_after_seconds=*/5));
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  const Lease lease = Acquire("w1").lease();
  ASSERT_FALSE(lease.id().empty());
  // While the drain waits for the eviction, the agent gives the lease back.
  absl::Status released = absl::UnknownError("not called");
  sleeper_.OnNextSleep([&] {
    Report("w1", "agent-boot-1", false);
    released =
        coordinator().ReleaseLease(testing::ReleaseRequest(lease, "the need went away")).status();
  });
  Run();
  ASSERT_TRUE(released.ok()) << released;
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(after->status_message(), HasSubstr("returned by the holder"));
  EXPECT_THAT(after->status_message(), HasSubstr("uncordoned"));
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_EQ(Begin(lease).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(DurableDisruptions(), IsEmpty());
  EXPECT_FALSE(NodeNamed("w1").has_backoff_until());
}

TEST_F(DrainFlowTest, NodeBootedAgainWhileDrainingIsUncordonedAndAsksAgain) {
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w1")));
  server_.SetEvictionRule("default", "web-1", Rule::Block(2, /*retry_after_seconds=*/5));
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  const Lease lease = Acquire("w1").lease();
  ASSERT_FALSE(lease.id().empty());
  // It went down on its own while being drained and still needs its reboot.
  sleeper_.OnNextSleep([&] { Report("w1", "agent-boot-2", true); });
  Run();
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->id(), lease.id());
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(after->status_message(), HasSubstr("booted again"));
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_EQ(UnschedulablePatches(false).size(), 1u);
  EXPECT_EQ(Begin(lease).code(), absl::StatusCode::kFailedPrecondition);
  // Its agent asks again, on its new boot, and is drained again from the start.
  Report("w1", "agent-boot-2", true);
  clock_.Advance(absl::Hours(1));  // Past the soak of its Ready transition, if any.
  Report("w1", "agent-boot-2", true);
  Report("w2", "agent-w2", false);
  Run();
  tended::v1::AcquireLeaseResponse again = Acquire("w1");
  ASSERT_TRUE(again.has_lease());
  EXPECT_NE(again.lease().id(), lease.id());
  EXPECT_EQ(again.lease().boot_id_at_grant(), "agent-boot-2");
  EXPECT_TRUE(again.lease().preparing());
}

TEST_F(DrainFlowTest, ForceReleaseUncordonsAfterwards) {
  StartCoordinator();
  BringUp();
  Lease lease = GrantAndDrain();
  ASSERT_TRUE(Begin(lease).ok());
  tended::v1::ForceReleaseLeaseRequest force;
  force.set_lease_id(lease.id());
  force.set_reason("node replaced");
  ASSERT_TRUE(coordinator().ForceReleaseLease(force).ok());
  Run();
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_THAT(DurableDisruptions(), IsEmpty());
}

// A grant is not a blank cheque: the gates are asked again before the node is cordoned.
TEST_F(DrainFlowTest, AHaltAfterTheGrantCordonsNothingAndTheLeaseGoesBackAfterBeginWait) {
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  const Lease lease = Acquire("w1").lease();
  ASSERT_FALSE(lease.id().empty());
  tended::v1::HaltRequest halt;
  halt.set_reason("storage incident");
  ASSERT_TRUE(coordinator().Halt(halt).ok());
  Run();
  EXPECT_FALSE(Unschedulable("w1"));
  EXPECT_TRUE(server_.node_patches().empty());
  std::optional<Lease> waiting = LeaseOf("w1");
  EXPECT_EQ(waiting->phase(), tended::v1::LEASE_PHASE_GRANTED);
  EXPECT_TRUE(waiting->preparing());
  EXPECT_TRUE(waiting->has_begin_blocked_since());
  EXPECT_THAT(waiting->begin_blocked_reason(), HasSubstr("storage incident"));
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_DISRUPTION_WAITING), 1);
  // Still waiting within begin_wait; asked again, the same gates block: no new event.
  clock_.Advance(absl::Minutes(10));
  coordinator().Tick();
  Run();
  EXPECT_EQ(LeaseOf("w1")->phase(), tended::v1::LEASE_PHASE_GRANTED);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_DISRUPTION_WAITING), 1);

  clock_.Advance(absl::Minutes(10));
  coordinator().Tick();  // begin_wait is over: the lease is given back through the flow.
  Run();
  std::optional<Lease> after = LeaseOf("w1");
  EXPECT_EQ(after->phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_THAT(after->status_message(), HasSubstr("a gate blocked the disruptive act"));
  // Never touched: not cordoned, uncordoned or even unmarked.
  for (const auto& patch : server_.node_patches()) ADD_FAILURE() << patch.dump();
  EXPECT_THAT(DurableDisruptions(), IsEmpty());
  EXPECT_TRUE(NodeNamed("w1").has_backoff_until());
}

TEST_F(DrainFlowTest, AHaltLiftedWithinBeginWaitLetsTheDrainGoOn) {
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  ASSERT_TRUE(Acquire("w1").has_lease());
  tended::v1::HaltRequest halt;
  halt.set_reason("a look first");
  ASSERT_TRUE(coordinator().Halt(halt).ok());
  Run();
  EXPECT_FALSE(Unschedulable("w1"));
  ASSERT_TRUE(coordinator().Resume().ok());
  Run();
  std::optional<Lease> lease = LeaseOf("w1");
  EXPECT_TRUE(Unschedulable("w1"));
  EXPECT_FALSE(lease->preparing());
  EXPECT_FALSE(lease->has_begin_blocked_since());
  EXPECT_TRUE(Begin(*lease).ok());
}

// A blocking pod is a gate of its node, read with the Kubernetes facts: the lease is not
// granted at all while it runs (no grant, cordon, return and backoff loop).
TEST_F(DrainFlowTest, ABlockingPodBlocksTheGrantItself) {
  config().kubernetes.blocking_pod_selectors = {{{"app", "postgres"}}};
  server_.AddPod(MakePodJson(FakePodSpec("postgres-0", "w1").Label("app", "postgres")));
  server_.AddPod(MakePodJson(FakePodSpec("web-1", "w2").Label("app", "web")));
  StartCoordinator();
  BringUp();
  Report("w1", "agent-boot-1", true);
  tended::v1::AcquireLeaseResponse asked = Acquire("w1");
  EXPECT_FALSE(asked.has_lease());
  bool blocked = false;
  for (const auto& gate : asked.gates()) {
    if (gate.gate() != "blocking_pods") continue;
    blocked = gate.verdict() == tended::v1::GATE_VERDICT_BLOCK;
    EXPECT_THAT(gate.reason(), HasSubstr("default/postgres-0"));
  }
  EXPECT_TRUE(blocked);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Minutes(1));
    Run();
    coordinator().Tick();
  }
  EXPECT_FALSE(LeaseOf("w1").has_value());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_GRANTED), 0);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_RETURNED), 0);
  EXPECT_TRUE(server_.node_patches().empty());
  EXPECT_FALSE(NodeNamed("w1").has_backoff_until());
  // w2 runs no matching pod: it may go while w1 waits.
  Report("w2", "agent-w2", true);
  ASSERT_TRUE(Acquire("w2").has_lease());
  ASSERT_TRUE(coordinator()
                  .ForceReleaseLease([&] {
                    tended::v1::ForceReleaseLeaseRequest force;
                    force.set_lease_id(LeaseOf("w2")->id());
                    force.set_reason("test: make room");
                    return force;
                  }())
                  .ok());
  Run();

  ASSERT_TRUE(server_.RemovePod("default", "postgres-0"));
  Run();  // Reads the facts again.
  coordinator().Tick();
  std::optional<Lease> lease = LeaseOf("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_NE(lease->phase(), tended::v1::LEASE_PHASE_RELEASED);
}

TEST_F(DrainFlowTest, UnreachableApiBlocksEveryGrantAndSaysWhy) {
  ASSERT_TRUE(harness_.Restart().ok());
  coordinator().AttachKubernetes(
      nullptr, absl::FailedPreconditionError("no kubeconfig and no in-cluster environment"),
      "in-cluster", sleeper_, /*start_worker=*/false);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  clock_.Advance(absl::Hours(2));
  Report("w1", "agent-boot-1", true);
  Run();
  coordinator().Tick();
  EXPECT_FALSE(LeaseOf("w1").has_value());
  auto explained = coordinator().ExplainGates(tended::v1::ExplainGatesRequest());
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

TEST_F(DrainFlowTest, WithoutAnyApiConfigurationTheCoordinatorStillServes) {
  config().kubernetes.kubeconfig = dir_.Path("missing-kubeconfig");
  ASSERT_TRUE(harness_.Restart().ok());
  AttachKubernetesFromConfig(coordinator());
  ASSERT_NE(coordinator().drain_flow(), nullptr);
  Report("w1", "agent-boot-1", true);
  Acquire("w1");
  coordinator().Tick();
  EXPECT_FALSE(LeaseOf("w1").has_value());
  EXPECT_FALSE(flow().GateFactsSnapshot().status.ok());
}

TEST_F(DrainFlowTest, KubernetesDisabledChangesNothing) {
  config().kubernetes.enabled = false;
  ASSERT_TRUE(harness_.Restart().ok());
  AttachKubernetesFromConfig(coordinator());
  EXPECT_EQ(coordinator().drain_flow(), nullptr);
  Report("w1", "agent-boot-1", false);
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  Report("w1", "agent-boot-1", true);
  ASSERT_TRUE(Acquire("w1").has_lease());
  std::optional<Lease> lease = LeaseOf("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_FALSE(lease->preparing());
  EXPECT_TRUE(Begin(*lease).ok());
  EXPECT_TRUE(server_.request_log().empty());
}

}  // namespace
}  // namespace tended::coordinator
