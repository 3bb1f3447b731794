// The REBOOT lease's Kubernetes steps (leases/drain_flow.h) from grant to release, on the
// DrainFlowTest fixture (drain_flow_fixture.h): cordon, drain, reboot, verify, uncordon in
// order; a drain blocked by a PodDisruptionBudget; a node that never comes back; an
// operator's cordon; a token rotated mid-flow; a coordinator restarted mid-drain.
#include "coordinator/leases/drain_flow.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/leases/drain_flow_fixture.h"

namespace tended::coordinator {
namespace {

using tended::state::v1::NodeDisruption;
using tended::testing::FakePodSpec;
using tended::testing::MakePodJson;
using tended::v1::Lease;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Rule = tended::testing::FakeKubeApiServer::EvictionRule;

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

}  // namespace
}  // namespace tended::coordinator
