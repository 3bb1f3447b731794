// A Kubernetes rollout's drained leases through the drain flow, against the fake API server:
// the kubelet steps wait for the cordon and drain, and the node is verified by the version
// its agent reports and the kubeletVersion Kubernetes reports before it is uncordoned.
#include <nlohmann/json.hpp>

#include "common/k8s_steps.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "tests/unit/coordinator/leases/drain_flow_fixture.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;
using ::testing::HasSubstr;

class K8sDrainFlowTest : public DrainFlowTest {
 protected:
  void SetUp() override {
    DrainFlowTest::SetUp();
    LeasePolicy k8s;
    k8s.soak = absl::ZeroDuration();
    k8s.renew_deadline = absl::Minutes(10);
    k8s.return_deadline = absl::Hours(1);
    k8s.begin_wait = absl::Minutes(20);
    k8s.control_plane_order = {"w1"};
    config().leases[tended::v1::LEASE_KIND_K8S_UPGRADE] = k8s;
    for (const char* node : {"w1", "w2"}) SetKubelet(node, "v1.30.2");
    for (const char* node : {"w1", "w2"}) {
      tended::v1::K8sNodeFacts& facts = k8s_[node];
      facts.set_kubeadm_version("1.30.2-1.1");
      facts.set_kubelet_version("1.30.2-1.1");
      facts.set_kubectl_version("1.30.2-1.1");
      facts.set_control_plane(std::string(node) == "w1");
    }
    k8s_["w1"].add_kubeadm_candidates("1.30.5-1.1");
    *k8s_["w1"].mutable_checked_time() = ToProtoTimestamp(clock_.Now());
    StartCoordinator();
    Run();
    ReportBoth();
    clock_.Advance(FlowConfig().fleet.report_deadline + absl::Seconds(1));
    Run();
    ReportBoth();
    coordinator().Tick();
  }

  void SetKubelet(const std::string& node, const std::string& version) {
    server_.UpdateNode(node, [&](nlohmann::json& json) {
      json["status"]["nodeInfo"]["kubeletVersion"] = version;
    });
  }

  void ReportBoth() {
    for (const char* node : {"w1", "w2"}) {
      tended::v1::ReportFactsRequest request =
          testing::FactsReport(node, std::string("agent-") + node, false);
      *request.mutable_facts()->mutable_k8s() = k8s_[node];
      ASSERT_TRUE(coordinator().ReportFacts(request).ok());
    }
  }

  std::optional<Lease> Active(const std::string& node) {
    std::optional<Lease> lease = LeaseOf(node);
    if (lease.has_value() && lease->phase() == tended::v1::LEASE_PHASE_RELEASED) return {};
    return lease;
  }

  absl::Status Do(const Lease& lease, tended::v1::K8sStepKind kind) {
    RETURN_IF_ERROR(
        coordinator().BeginDisruption(testing::BeginRequest(lease, K8sStepName(kind))).status());
    tended::v1::ReportStepRequest request;
    request.set_lease_id(lease.id());
    request.set_fencing_token(lease.fencing_token());
    request.set_agent_instance_id(testing::InstanceOf(lease.node_name()));
    request.mutable_report()->set_step(K8sStepName(kind));
    request.mutable_report()->set_k8s_step(kind);
    request.mutable_report()->set_state(tended::v1::STEP_STATE_SUCCEEDED);
    if (kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT) {
      request.mutable_report()->mutable_snapshot()->set_path("/var/lib/tended/s.db");
      request.mutable_report()->mutable_snapshot()->set_size_bytes(1);
      request.mutable_report()->mutable_snapshot()->set_sha256(std::string(64, 'b'));
    }
    return coordinator().ReportStep(request).status();
  }

  std::map<std::string, tended::v1::K8sNodeFacts> k8s_;
};

TEST_F(K8sDrainFlowTest, KubeletStepsWaitForTheDrainAndTheNodeIsVerifiedInKubernetes) {
  tended::v1::StartK8sRolloutRequest start;
  start.set_target_version("1.30.5");
  start.set_kind(tended::v1::K8S_UPGRADE_KIND_PATCH);
  start.set_reason("test");
  auto started = coordinator().StartK8sRollout(start);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->rollout().state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING)
      << started->rollout().message();

  // Lease 1 on the control plane: no drain, kubeadm apply first.
  std::optional<Lease> lease = Active("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_FALSE(lease->preparing());
  for (const auto& step : lease->k8s_work().steps()) ASSERT_TRUE(Do(*lease, step.kind()).ok());
  EXPECT_FALSE(Unschedulable("w1"));
  k8s_["w1"].set_kubeadm_version("1.30.5-1.1");
  ReportBoth();
  // Verified and released; with no soak configured, lease 2 follows at once.
  ASSERT_TRUE(Active("w1").has_value());
  EXPECT_NE(Active("w1")->id(), lease->id());

  // Lease 2: drained before the kubelet steps may begin.
  coordinator().Tick();
  lease = Active("w1");
  ASSERT_TRUE(lease.has_value());
  EXPECT_TRUE(lease->k8s_work().drain());
  absl::Status early = Do(*lease, tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES);
  EXPECT_TRUE(absl::IsUnavailable(early)) << early;
  EXPECT_THAT(early.message(), HasSubstr("not drained yet"));
  Run();
  EXPECT_TRUE(Unschedulable("w1"));
  lease = Active("w1");
  ASSERT_TRUE(Do(*lease, tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES).ok());
  ASSERT_TRUE(Do(*lease, tended::v1::K8S_STEP_KIND_KUBELET_RESTART).ok());
  k8s_["w1"].set_kubelet_version("1.30.5-1.1");
  k8s_["w1"].set_kubectl_version("1.30.5-1.1");
  ReportBoth();
  // Kubernetes still reports the old kubelet: not verified, still cordoned.
  Run();
  ASSERT_TRUE(Active("w1").has_value());
  EXPECT_THAT(Active("w1")->status_message(), HasSubstr("kubelet v1.30.2, expected v1.30.5"));
  EXPECT_TRUE(Unschedulable("w1"));
  SetKubelet("w1", "v1.30.5");
  Run();
  Run();
  EXPECT_FALSE(Active("w1").has_value());
  EXPECT_FALSE(Unschedulable("w1"));

  // The worker: one drained lease with every step.
  coordinator().Tick();
  lease = Active("w2");
  ASSERT_TRUE(lease.has_value());
  EXPECT_TRUE(lease->k8s_work().drain());
  Run();
  EXPECT_TRUE(Unschedulable("w2"));
  lease = Active("w2");
  for (const auto& step : lease->k8s_work().steps()) ASSERT_TRUE(Do(*lease, step.kind()).ok());
  k8s_["w2"].set_kubeadm_version("1.30.5-1.1");
  k8s_["w2"].set_kubelet_version("1.30.5-1.1");
  k8s_["w2"].set_kubectl_version("1.30.5-1.1");
  ReportBoth();
  SetKubelet("w2", "v1.30.5");
  Run();
  Run();
  EXPECT_FALSE(Active("w2").has_value());
  EXPECT_FALSE(Unschedulable("w2"));
  coordinator().Tick();
  tended::v1::GetK8sRolloutRequest get;
  auto done = coordinator().GetK8sRollout(get);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->rollout().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED)
      << done->rollout().ShortDebugString();
}

}  // namespace
}  // namespace tended::coordinator
