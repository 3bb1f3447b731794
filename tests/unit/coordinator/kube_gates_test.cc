#include "coordinator/gates/kube_gates.h"

#include "coordinator/config/config.h"
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
  kube.facts = std::move(read);
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
  facts.kube->facts->cni = cni;
  facts.kube->facts->pods = kube::PodReadiness{8, 10};
  outcomes.clear();
  AppendKubernetesGates(config.leases[tended::v1::LEASE_KIND_REBOOT], facts, config, kNow,
                        outcomes);
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[3].gate, "cni");
  EXPECT_FALSE(outcomes[3].pass);
  EXPECT_THAT(outcomes[3].reason, HasSubstr("2 of 3 ready"));
  EXPECT_EQ(outcomes[4].gate, "pod_ready");
  EXPECT_FALSE(outcomes[4].pass);

  facts.kube->facts->cni->number_ready = 3;
  facts.kube->facts->cni->number_available = 3;
  facts.kube->facts->pods = kube::PodReadiness{9, 10};
  EXPECT_TRUE(CniGate(facts, config.kubernetes).pass);
  EXPECT_TRUE(PodReadyGate(facts, config.kubernetes).pass);
}

TEST(KubeGatesTest, EvaluateGatesAddsThemOnlyWhenEnabled) {
  CoordinatorConfig config = EnabledConfig();
  GateFacts facts = FactsWith({Node("a", kube::ConditionStatus::kFalse)});
  std::vector<GateOutcome> with = EvaluateGates(tended::v1::LEASE_KIND_REBOOT, facts, config, kNow);
  EXPECT_FALSE(AllPass(with));
  config.kubernetes.enabled = false;
  std::vector<GateOutcome> without =
      EvaluateGates(tended::v1::LEASE_KIND_REBOOT, facts, config, kNow);
  EXPECT_EQ(with.size(), without.size() + 3);
  for (const GateOutcome& outcome : without) EXPECT_THAT(outcome.gate, Not(HasSubstr("ready")));
}

TEST(KubernetesConfigTest, ParsesTheSection) {
  auto config = ParseCoordinatorConfig(R"(
kubernetes:
  enabled: true
  kubeconfig: /etc/tended/kubeconfig
  drain:
    timeout: 5m
    grace_period: 30s
    delete_emptydir_data: true
  blocking_pod_selector: ["app=db,tier=primary", "backup=running"]
  cni_daemonset: {namespace: calico-system, name: calico-node}
  min_pod_ready_ratio: 0.95
  node_marks:
    annotations: {example.com/maintenance: "true"}
    kured_compatible: true
  expected_kubelet_version: v1.30.4
)",
                                       "coordinator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const KubernetesConfig& kubernetes = config->kubernetes;
  EXPECT_TRUE(kubernetes.enabled);
  EXPECT_EQ(kubernetes.kubeconfig, "/etc/tended/kubeconfig");
  EXPECT_EQ(kubernetes.drain.timeout, absl::Minutes(5));
  EXPECT_EQ(kubernetes.drain.grace_period, absl::Seconds(30));
  EXPECT_TRUE(kubernetes.drain.delete_emptydir_data);
  ASSERT_EQ(kubernetes.blocking_pod_selectors.size(), 2u);
  EXPECT_EQ(kubernetes.blocking_pod_selectors[0].at("tier"), "primary");
  EXPECT_EQ(kubernetes.cni_daemonset_name, "calico-node");
  EXPECT_DOUBLE_EQ(kubernetes.min_pod_ready_ratio, 0.95);
  EXPECT_EQ(kubernetes.node_marks.annotations.at("example.com/maintenance"), "true");
  EXPECT_TRUE(kubernetes.node_marks.kured_compatible);
  EXPECT_EQ(kubernetes.expected_kubelet_version, "v1.30.4");
}

TEST(KubernetesConfigTest, DisabledByDefaultAndStrict) {
  auto plain = ParseCoordinatorConfig("listen: 127.0.0.1:0\n", "c.yaml");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->kubernetes.enabled);
  EXPECT_FALSE(ParseCoordinatorConfig("kubernetes: {enable: true}\n", "c.yaml").ok());
  auto ratio = ParseCoordinatorConfig("kubernetes: {min_pod_ready_ratio: 2}\n", "c.yaml");
  EXPECT_THAT(ratio.status().message(), HasSubstr("min_pod_ready_ratio"));
  auto selector =
      ParseCoordinatorConfig("kubernetes: {blocking_pod_selector: [\"app\"]}\n", "c.yaml");
  EXPECT_THAT(selector.status().message(), HasSubstr("key=value"));
}

}  // namespace
}  // namespace tended::coordinator
