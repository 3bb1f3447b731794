#include "coordinator/gates/kube_gates.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/config/config.h"
#include "coordinator/gates/evaluate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

kube::NodeInfo Node(const std::string& name, kube::ConditionStatus ready,
                    absl::Time transition = kNow - absl::Hours(48)) {
  kube::NodeInfo node;
  node.name = name;
  node.ready = ready;
  node.ready_last_transition = transition;
  return node;
}

GateFacts FactsWith(std::vector<kube::NodeInfo> nodes) {
  GateFacts facts;
  KubeGateFacts kube;
  kube.status = absl::OkStatus();
  kube.checked_at = kNow;
  kube.source = "in-cluster";
  kube::KubeFacts read;
  read.collected_at = kNow;
  read.nodes = std::move(nodes);
  kube.facts = std::make_shared<const kube::KubeFacts>(std::move(read));
  facts.kube = std::move(kube);
  return facts;
}

CoordinatorConfig EnabledConfig() {
  CoordinatorConfig config;
  config.kubernetes.enabled = true;
  config.leases[tended::v1::LEASE_KIND_REBOOT] = LeasePolicy();
  return config;
}

TEST(KubeGatesTest, ApiGateBlocksWithTheReasonWhenUnreachable) {
  GateFacts facts;
  KubeGateFacts kube;
  kube.status = absl::FailedPreconditionError("KUBERNETES_SERVICE_HOST is not set");
  kube.source = "in-cluster";
  facts.kube = kube;
  GateOutcome outcome = KubernetesApiGate(facts, KubernetesConfig(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("KUBERNETES_SERVICE_HOST"));
  // Every other Kubernetes gate blocks too, pointing at it.
  EXPECT_FALSE(NodeReadyGate(facts).pass);
  EXPECT_FALSE(ReadySoakGate(LeasePolicy(), facts, kNow).pass);
  EXPECT_FALSE(KubernetesApiGate(GateFacts(), KubernetesConfig(), kNow).pass);
}

// A failed read keeps the last good facts for the reasons, but no gate trusts them.
TEST(KubeGatesTest, AFailedReadBlocksEvenWithEarlierFacts) {
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kTrue)});
  facts.kube->status = absl::UnavailableError("connection refused");
  EXPECT_THAT(KubernetesApiGate(facts, KubernetesConfig(), kNow).reason,
              HasSubstr("connection refused"));
  GateOutcome ready = NodeReadyGate(facts);
  EXPECT_FALSE(ready.pass);
  EXPECT_THAT(ready.reason, HasSubstr("see the kubernetes gate"));
  EXPECT_FALSE(ReadySoakGate(LeasePolicy(), facts, kNow).pass);
  EXPECT_FALSE(CniGate(facts, KubernetesConfig()).pass);
  EXPECT_FALSE(PodReadyGate(facts, KubernetesConfig()).pass);
  // Read OK but nothing there yet.
  facts.kube->status = absl::OkStatus();
  facts.kube->facts = nullptr;
  EXPECT_THAT(KubernetesApiGate(facts, KubernetesConfig(), kNow).reason,
              HasSubstr("has not been read yet"));
}

TEST(KubeGatesTest, ApiGateBlocksStaleFacts) {
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kTrue)});
  KubernetesConfig config;
  EXPECT_TRUE(KubernetesApiGate(facts, config, kNow).pass);
  GateOutcome stale = KubernetesApiGate(facts, config, kNow + absl::Minutes(5));
  EXPECT_FALSE(stale.pass);
  EXPECT_THAT(stale.reason, HasSubstr("old"));
}

TEST(KubeGatesTest, EveryNodeReadyExceptLeaseHolders) {
  GateFacts facts =
      FactsWith({Node("a", kube::ConditionStatus::kTrue), Node("b", kube::ConditionStatus::kFalse),
                 Node("c", kube::ConditionStatus::kUnknown)});
  GateOutcome outcome = NodeReadyGate(facts);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("b (Ready=False"));
  EXPECT_THAT(outcome.reason, HasSubstr("c (Ready=Unknown"));
  facts.active_leases.push_back({"b", tended::v1::LEASE_KIND_REBOOT});
  facts.active_leases.push_back({"c", tended::v1::LEASE_KIND_REBOOT});
  EXPECT_TRUE(NodeReadyGate(facts).pass);
}

TEST(KubeGatesTest, ReadySoakFromTheLatestReadyTransition) {
  LeasePolicy policy;
  policy.soak = absl::Hours(24);
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kTrue, kNow - absl::Hours(30)),
                               Node("b", kube::ConditionStatus::kTrue, kNow - absl::Hours(2))});
  GateOutcome outcome = ReadySoakGate(policy, facts, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("b became Ready"));
  ASSERT_TRUE(outcome.earliest_pass.has_value());
  EXPECT_EQ(*outcome.earliest_pass, kNow + absl::Hours(22));
  EXPECT_TRUE(ReadySoakGate(policy, facts, kNow + absl::Hours(22)).pass);
  // A lease holder coming back is the concurrency gate's business.
  facts.active_leases.push_back({"b", tended::v1::LEASE_KIND_REBOOT});
  EXPECT_TRUE(ReadySoakGate(policy, facts, kNow).pass);
}

TEST(KubeGatesTest, CniAndPodReadyWhenConfigured) {
  CoordinatorConfig config = EnabledConfig();
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kTrue)});
  std::vector<GateOutcome> outcomes;
  AppendKubernetesGates(config.leases[tended::v1::LEASE_KIND_REBOOT], facts, config, kNow,
                        outcomes);
  ASSERT_EQ(outcomes.size(), 3u);  // kubernetes, node_ready, ready_soak

  config.kubernetes.cni_daemonset_namespace = "calico-system";
  config.kubernetes.cni_daemonset_name = "calico-node";
  config.kubernetes.min_pod_ready_ratio = 0.9;
  kube::DaemonSetInfo cni;
  cni.namespace_name = "calico-system";
  cni.name = "calico-node";
  cni.desired_number_scheduled = 3;
  cni.number_ready = 2;
  cni.number_available = 2;
  // The facts are shared between decisions and never change: a new read replaces them.
  kube::KubeFacts read = *facts.kube->facts;
  read.cni = cni;
  read.pods = kube::PodReadiness{8, 10};
  facts.kube->facts = std::make_shared<const kube::KubeFacts>(read);
  outcomes.clear();
  AppendKubernetesGates(config.leases[tended::v1::LEASE_KIND_REBOOT], facts, config, kNow,
                        outcomes);
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[3].gate, "cni");
  EXPECT_FALSE(outcomes[3].pass);
  EXPECT_THAT(outcomes[3].reason, HasSubstr("2 of 3 ready"));
  EXPECT_EQ(outcomes[4].gate, "pod_ready");
  EXPECT_FALSE(outcomes[4].pass);

  read.cni->number_ready = 3;
  read.cni->number_available = 3;
  read.pods = kube::PodReadiness{9, 10};
  facts.kube->facts = std::make_shared<const kube::KubeFacts>(read);
  EXPECT_TRUE(CniGate(facts, config.kubernetes).pass);
  EXPECT_TRUE(PodReadyGate(facts, config.kubernetes).pass);
}

TEST(KubeGatesTest, EvaluateFleetGatesAddsThemOnlyWhenEnabled) {
  CoordinatorConfig config = EnabledConfig();
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kFalse)});
  std::vector<GateOutcome> with =
      EvaluateFleetGates(tended::v1::LEASE_KIND_REBOOT, facts, config, kNow);
  EXPECT_FALSE(AllPass(with));
  config.kubernetes.enabled = false;
  std::vector<GateOutcome> without =
      EvaluateFleetGates(tended::v1::LEASE_KIND_REBOOT, facts, config, kNow);
  EXPECT_EQ(with.size(), without.size() + 3);
  for (const GateOutcome& outcome : without) EXPECT_THAT(outcome.gate, Not(HasSubstr("ready")));
}

}  // namespace
}  // namespace tended::coordinator
