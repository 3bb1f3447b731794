#include "coordinator/kube/cluster_facts.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/unit/coordinator/kube/kube_test_util.h"

namespace tended::kube {
namespace {

using tended::testing::FakeClock;
using tended::testing::FakeKubeApiServer;
using tended::testing::FakeNodeSpec;
using tended::testing::FakePodSpec;
using tended::testing::MakeDaemonSetJson;
using tended::testing::MakeNodeJson;
using tended::testing::MakePodJson;
using ::testing::HasSubstr;

TEST(PodReadinessTest, CountsUnfinishedPods) {
  std::vector<PodInfo> pods(5);
  pods[0].phase = "Running";
  pods[0].ready = true;
  pods[1].phase = "Running";  // Not ready.
  pods[2].phase = "Pending";
  pods[3].phase = "Succeeded";  // Finished: not counted.
  pods[4].phase = "Running";
  pods[4].ready = true;
  pods[4].deletion_timestamp = absl::UnixEpoch();  // Going away: not counted.
  PodReadiness readiness = ComputePodReadiness(pods);
  EXPECT_EQ(readiness.counted, 3);
  EXPECT_EQ(readiness.ready, 1);
  EXPECT_DOUBLE_EQ(readiness.Ratio(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(ComputePodReadiness({}).Ratio(), 1.0);
}

TEST(DaemonSetReadyTest, EveryWantedPodReady) {
  DaemonSetInfo ds;
  ds.namespace_name = "calico-system";
  ds.name = "calico-node";
  std::string reason;
  EXPECT_FALSE(DaemonSetReadyEverywhere(ds, &reason));
  EXPECT_THAT(reason, HasSubstr("no pods"));
  ds.desired_number_scheduled = 5;
  ds.number_ready = 4;
  ds.number_available = 4;
  EXPECT_FALSE(DaemonSetReadyEverywhere(ds, &reason));
  EXPECT_THAT(reason, HasSubstr("calico-system/calico-node: 4 of 5 ready"));
  ds.number_ready = 5;
  ds.number_available = 5;
  EXPECT_TRUE(DaemonSetReadyEverywhere(ds, &reason));
}

TEST(CollectKubeFactsTest, NodesCniAndPods) {
  FakeClock clock;
  FakeKubeApiServer server(clock);
  ASSERT_TRUE(server.Start().ok());
  absl::Time t = absl::FromUnixSeconds(1767000000);
  server.AddNode(MakeNodeJson(FakeNodeSpec("k8s-master").TransitionAt(t).Kubelet("v1.30.4")));
  server.AddNode(
      MakeNodeJson(FakeNodeSpec("k8s-node1").Ready("False").TransitionAt(t + absl::Hours(1))));
  server.AddDaemonSet(MakeDaemonSetJson("calico-system", "calico-node", 2, 1));
  server.AddPod(MakePodJson(FakePodSpec("a", "k8s-node1")));
  server.AddPod(MakePodJson(FakePodSpec("b", "k8s-node1").NotReady()));
  auto client = testing::ClientFor(server, clock);
  ASSERT_NE(client, nullptr);

  KubeFactsOptions options;
  options.cni_daemonset_namespace = "calico-system";
  options.cni_daemonset_name = "calico-node";
  options.collect_pod_readiness = true;
  absl::StatusOr<KubeFacts> facts = CollectKubeFacts(*client, options, clock);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->collected_at, clock.Now());
  ASSERT_EQ(facts->nodes.size(), 2u);
  EXPECT_EQ(facts->nodes[0].ready, ConditionStatus::kTrue);
  EXPECT_EQ(facts->nodes[0].ready_last_transition, t);
  EXPECT_EQ(facts->nodes[1].ready, ConditionStatus::kFalse);
  EXPECT_EQ(facts->nodes[1].ready_last_transition, t + absl::Hours(1));
  ASSERT_TRUE(facts->cni.has_value());
  EXPECT_EQ(facts->cni->number_ready, 1);
  ASSERT_TRUE(facts->pods.has_value());
  EXPECT_EQ(facts->pods->counted, 2);
  EXPECT_EQ(facts->pods->ready, 1);

  options.cni_daemonset_name = "cilium";
  EXPECT_EQ(CollectKubeFacts(*client, options, clock).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tended::kube
