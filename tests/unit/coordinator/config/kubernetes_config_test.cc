// The coordinator's `kubernetes:` section: parsed strictly, disabled by default.
#include "coordinator/config/kubernetes_config.h"

#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;

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
