// The REBOOT lease's Kubernetes steps (leases/drain_flow.h) when the flow is cut short or
// never starts, on the DrainFlowTest fixture (drain_flow_fixture.h): the holder gives the
// lease back, the node boots again on its own, a force-release, a halt after the grant, a
// blocking pod, an API server that cannot be reached or is not configured, Kubernetes off.
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/leases/drain_flow_fixture.h"

namespace tended::coordinator {
namespace {

using tended::testing::FakePodSpec;
using tended::testing::MakePodJson;
using tended::v1::Lease;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Rule = tended::testing::FakeKubeApiServer::EvictionRule;

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
