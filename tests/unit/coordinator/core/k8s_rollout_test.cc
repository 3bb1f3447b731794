// Kubernetes rollouts through the coordinator, with the agents' side played by the test:
// the order of nodes and steps, each node step under a K8S_UPGRADE lease behind the gates,
// verification by the reported packages, soaks, and what a failure, a halt, a cancel, a
// restart, a dry run, a skew violation or a two-minor jump do.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/k8s_steps.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_deprecated_api_source.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using tended::v1::K8sRollout;
using tended::v1::Lease;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kFleet = {"k8s-master", "k8s-node1", "k8s-node2", "k8s-node3",
                                         "k8s-node4"};

coordinator::CoordinatorConfig RolloutConfig() {
  coordinator::CoordinatorConfig config = SmallFleetConfig();
  coordinator::LeasePolicy k8s;
  k8s.concurrency = 1;
  k8s.soak = absl::Minutes(10);
  k8s.expected_duration = absl::Minutes(45);
  k8s.renew_deadline = absl::Minutes(10);
  k8s.return_deadline = absl::Hours(1);
  k8s.begin_wait = absl::Minutes(30);
  k8s.control_plane_order = {"k8s-master"};
  k8s.worker_order = {"k8s-node4", "k8s-node3", "k8s-node2", "k8s-node1"};
  config.leases[tended::v1::LEASE_KIND_K8S_UPGRADE] = k8s;
  return config;
}

class K8sRolloutTest : public FleetFixture {
 protected:
  explicit K8sRolloutTest(coordinator::CoordinatorConfig config = RolloutConfig())
      : FleetFixture(std::move(config)) {
    harness_.SetDeprecatedApiSource(apis_);
  }

  void SetUp() override {
    FleetFixture::SetUp();
    for (const std::string& node : kFleet) {
      tended::v1::K8sNodeFacts& facts = k8s_[node];
      facts.set_kubeadm_version("1.30.2-1.1");
      facts.set_kubelet_version("1.30.2-1.1");
      facts.set_kubectl_version("1.30.2-1.1");
      facts.set_containerd_version("1.7.24-1");
      facts.set_control_plane(node == "k8s-master");
    }
    tended::v1::K8sNodeFacts& master = k8s_["k8s-master"];
    master.add_kubeadm_candidates("1.30.5-1.1");
    master.add_kubeadm_candidates("1.30.2-1.1");
    master.set_next_minor_available(true);
    master.set_next_minor("1.31");
    *master.mutable_checked_time() = ToProtoTimestamp(clock().Now());
    for (const std::string& node : kFleet) ASSERT_TRUE(ReportK8s(node).ok());
    clock().Advance(harness_.config().fleet.report_deadline + absl::Seconds(1));
    ReportAll();
  }

  absl::Status ReportK8s(const std::string& node) {
    tended::v1::ReportFactsRequest request = FactsReport(node, BootOf(node), false);
    *request.mutable_facts()->mutable_k8s() = k8s_[node];
    return coordinator().ReportFacts(request).status();
  }

  void ReportAll() {
    for (const std::string& node : kFleet) ASSERT_TRUE(ReportK8s(node).ok()) << node;
    coordinator().Tick();
  }

  absl::StatusOr<K8sRollout> Start(
      const std::string& target,
      tended::v1::K8sUpgradeKind kind = tended::v1::K8S_UPGRADE_KIND_PATCH, bool dry_run = false) {
    tended::v1::StartK8sRolloutRequest request;
    request.set_target_version(target);
    request.set_kind(kind);
    request.set_dry_run(dry_run);
    request.set_reason("test");
    auto response = coordinator().StartK8sRollout(request);
    if (!response.ok()) return response.status();
    return response->rollout();
  }

  K8sRollout Get(const std::string& id = "") {
    tended::v1::GetK8sRolloutRequest request;
    request.set_rollout_id(id);
    auto response = coordinator().GetK8sRollout(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->rollout() : K8sRollout();
  }

  std::optional<Lease> LeaseOf(const std::string& node) {
    for (const Lease& lease : Active()) {
      if (lease.node_name() == node) return lease;
    }
    return std::nullopt;
  }

  absl::Status Step(const Lease& lease, tended::v1::K8sStepKind kind,
                    tended::v1::StepState state = tended::v1::STEP_STATE_SUCCEEDED,
                    const std::string& message = "") {
    tended::v1::ReportStepRequest request;
    request.set_lease_id(lease.id());
    request.set_fencing_token(lease.fencing_token());
    request.set_agent_instance_id(InstanceOf(lease.node_name()));
    request.mutable_report()->set_step(K8sStepName(kind));
    request.mutable_report()->set_k8s_step(kind);
    request.mutable_report()->set_state(state);
    request.mutable_report()->set_message(message);
    if (kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT) {
      auto* snapshot = request.mutable_report()->mutable_snapshot();
      snapshot->set_path("/var/lib/tended/etcd-snapshots/etcd-snapshot-1.db");
      snapshot->set_size_bytes(20512);
      snapshot->set_sha256(std::string(64, 'a'));
    }
    return coordinator().ReportStep(request).status();
  }

  // The node's agent runs every step of its lease, then reports the packages installed.
  void RunLease(const std::string& node, const std::string& version_deb) {
    std::optional<Lease> lease = LeaseOf(node);
    ASSERT_TRUE(lease.has_value())
        << node << " holds no lease; rollout: " << Get().ShortDebugString();
    ASSERT_EQ(lease->kind(), tended::v1::LEASE_KIND_K8S_UPGRADE);
    ran_.push_back(node);
    for (const auto& step : lease->k8s_work().steps()) {
      steps_.push_back(absl::StrCat(node, ":", K8sStepName(step.kind())));
      auto begun = coordinator().BeginDisruption(BeginRequest(*lease, K8sStepName(step.kind())));
      ASSERT_TRUE(begun.ok()) << node << " " << K8sStepName(step.kind()) << ": " << begun.status();
      ASSERT_TRUE(Step(*lease, step.kind()).ok());
      if (step.kind() == tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE) {
        k8s_[node].set_kubeadm_version(version_deb);
      }
      if (step.kind() == tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES) {
        k8s_[node].set_kubelet_version(version_deb);
        k8s_[node].set_kubectl_version(version_deb);
      }
    }
    ASSERT_TRUE(ReportK8s(node).ok());
    ASSERT_FALSE(LeaseOf(node).has_value()) << "not verified: " << Get().ShortDebugString();
  }

  // Runs the rollout to its end: each lease as it is granted, the soak between them.
  void Drive(const std::string& version_deb, int max_leases = 12) {
    for (int i = 0; i < max_leases; ++i) {
      K8sRollout rollout = Get();
      if (rollout.state() != tended::v1::K8S_ROLLOUT_STATE_RUNNING) return;
      std::optional<std::string> holder;
      for (const Lease& lease : Active()) holder = lease.node_name();
      if (!holder.has_value()) {
        clock().Advance(absl::Minutes(11));  // The soak between node steps.
        ReportAll();
        continue;
      }
      RunLease(*holder, version_deb);
    }
  }

  const tended::v1::PreflightCheck* FindCheck(const K8sRollout& rollout, const std::string& name) {
    for (const auto& check : rollout.preflight()) {
      if (check.name() == name) return &check;
    }
    return nullptr;
  }

  std::vector<std::string> Announcements() {
    std::vector<std::string> messages;
    for (const auto& event : Events()) {
      if (event.type() == tended::v1::EVENT_TYPE_K8S_UPGRADE_AVAILABLE) {
        messages.push_back(event.message());
      }
    }
    return messages;
  }

  std::vector<K8sRollout> Rollouts() {
    auto listed = coordinator().ListK8sRollouts({});
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (!listed.ok()) return {};
    return {listed->rollouts().begin(), listed->rollouts().end()};
  }

  std::shared_ptr<FakeDeprecatedApiSource> apis_ =
      std::make_shared<FakeDeprecatedApiSource>(harness_.clock());
  std::map<std::string, tended::v1::K8sNodeFacts> k8s_;
  std::vector<std::string> ran_;
  std::vector<std::string> steps_;
};

TEST_F(K8sRolloutTest, APatchRolloutGoesNodeByNodeInOrderAndEndsVerified) {
  auto started = Start("1.30.5");
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << started->message();
  EXPECT_EQ(started->running_version(), "1.30.2");
  ASSERT_EQ(started->nodes_size(), 5);
  EXPECT_EQ(started->nodes(0).node_name(), "k8s-master");
  EXPECT_EQ(started->nodes(1).node_name(), "k8s-node4");
  EXPECT_EQ(started->nodes(4).node_name(), "k8s-node1");
  // The control plane's first lease: snapshot, kubeadm, plan, apply; no drain.
  std::optional<Lease> first = LeaseOf("k8s-master");
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->k8s_work().drain());
  std::vector<std::string> names;
  for (const auto& step : first->k8s_work().steps()) names.push_back(K8sStepName(step.kind()));
  EXPECT_THAT(names,
              ElementsAre("etcd_snapshot", "kubeadm_package", "kubeadm_plan", "kubeadm_apply"));
  // A second rollout cannot start beside it.
  EXPECT_TRUE(absl::IsFailedPrecondition(Start("1.30.5").status()));

  Drive("1.30.5-1.1");
  K8sRollout done = Get(started->id());
  EXPECT_EQ(done.state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << done.ShortDebugString();
  EXPECT_THAT(ran_, ElementsAre("k8s-master", "k8s-master", "k8s-node4", "k8s-node3", "k8s-node2",
                                "k8s-node1"));
  EXPECT_EQ(steps_.front(), "k8s-master:etcd_snapshot");
  EXPECT_EQ(steps_[4], "k8s-master:kubelet_packages");
  EXPECT_EQ(steps_[6], "k8s-node4:kubeadm_package");
  EXPECT_EQ(steps_[7], "k8s-node4:kubeadm_node");
  EXPECT_EQ(done.snapshot().node_name(), "k8s-master");
  EXPECT_EQ(done.snapshot().size_bytes(), 20512u);
  for (const auto& node : done.nodes()) {
    EXPECT_EQ(node.progress(), tended::v1::K8S_NODE_PROGRESS_DONE) << node.ShortDebugString();
  }
  ASSERT_GT(done.postflight_size(), 0);
  // Running it again changes nothing.
  auto again = Start("1.30.5");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
  EXPECT_THAT(again->message(), HasSubstr("nothing to do"));
  EXPECT_TRUE(Active().empty());
}

TEST_F(K8sRolloutTest, AMinorRolloutSwitchesTheAptSourceOnEveryNode) {
  auto started = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << started->message();
  Drive("1.31.0-1.1");
  EXPECT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << Get().ShortDebugString();
  int switches = 0;
  for (const std::string& step : steps_) switches += absl::EndsWith(step, ":apt_source_switch");
  EXPECT_EQ(switches, 5);
}

TEST_F(K8sRolloutTest, TwoMinorsAtOnceADowngradeAndSkewAreRefused) {
  absl::Status jump = Start("1.32.0", tended::v1::K8S_UPGRADE_KIND_MINOR).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(jump)) << jump;
  EXPECT_THAT(std::string(jump.message()), HasSubstr("one minor at a time"));
  EXPECT_FALSE(Start("1.30.1").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(Start("1.30.5; reboot").status()));
  // A kubelet four minors behind the target: preflight fails and nothing is asked for.
  k8s_["k8s-node2"].set_kubelet_version("1.27.9-1.1");
  ReportAll();
  auto skewed = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(skewed.ok()) << skewed.status();
  EXPECT_EQ(skewed->state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  EXPECT_THAT(skewed->message(), HasSubstr("k8s-node2 runs kubelet 1.27.9"));
  EXPECT_TRUE(Active().empty());
}

TEST_F(K8sRolloutTest, ADryRunWalksEveryDecisionAndChangesNothing) {
  auto dry = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << dry->message();
  ASSERT_EQ(dry->plan_size(), 6);
  EXPECT_THAT(dry->plan(0), HasSubstr("k8s-master: k8s_upgrade lease 1 (no drain): etcd_snapshot"));
  EXPECT_THAT(dry->plan(2), HasSubstr("k8s-node4"));
  EXPECT_GT(dry->preflight_size(), 3);
  EXPECT_TRUE(Active().empty());
  clock().Advance(absl::Minutes(1));
  ReportAll();
  EXPECT_TRUE(Active().empty());
  // The target missing from the repository fails the dry run's preflight.
  auto missing = Start("1.30.9", tended::v1::K8S_UPGRADE_KIND_PATCH, /*dry_run=*/true);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  EXPECT_THAT(missing->message(), HasSubstr("target_available"));
}

TEST_F(K8sRolloutTest, AFailedStepStopsTheRolloutAndKeepsTheLeaseForAnOperator) {
  ASSERT_TRUE(Start("1.30.5").ok());
  std::optional<Lease> lease = LeaseOf("k8s-master");
  ASSERT_TRUE(lease.has_value());
  for (auto kind :
       {tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT, tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE,
        tended::v1::K8S_STEP_KIND_KUBEADM_PLAN}) {
    ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, K8sStepName(kind))).ok());
    ASSERT_TRUE(Step(*lease, kind).ok());
  }
  // Steps out of order are refused.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      coordinator().BeginDisruption(BeginRequest(*lease, "kubelet_restart")).status()));
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "kubeadm_apply")).ok());
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_KUBEADM_APPLY, tended::v1::STEP_STATE_FAILED,
                   "static pod kube-apiserver not healthy")
                  .ok());
  K8sRollout failed = Get();
  EXPECT_EQ(failed.state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("kubeadm_apply failed"));
  EXPECT_EQ(failed.nodes(0).progress(), tended::v1::K8S_NODE_PROGRESS_FAILED);
  EXPECT_EQ(failed.nodes(1).progress(), tended::v1::K8S_NODE_PROGRESS_PENDING);
  // The lease stays held; nothing else is granted; no further step begins.
  clock().Advance(absl::Hours(1));
  ReportAll();
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].node_name(), "k8s-master");
  EXPECT_FALSE(coordinator().BeginDisruption(BeginRequest(*lease, "kubeadm_apply")).ok());
}

TEST_F(K8sRolloutTest, AHaltStopsTheNextStepAndAResumeLetsItGo) {
  ASSERT_TRUE(Start("1.30.5").ok());
  std::optional<Lease> lease = LeaseOf("k8s-master");
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "etcd_snapshot")).ok());
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT).ok());
  tended::v1::HaltRequest halt;
  halt.set_reason("incident");
  ASSERT_TRUE(coordinator().Halt(halt).ok());
  auto blocked = coordinator().BeginDisruption(BeginRequest(*lease, "kubeadm_package"));
  EXPECT_TRUE(absl::IsUnavailable(blocked.status())) << blocked.status();
  EXPECT_THAT(std::string(blocked.status().message()), HasSubstr("halt"));
  // Held past begin_wait with a step done: kept, not given back half-way.
  clock().Advance(absl::Minutes(31));
  ReportAll();
  ASSERT_TRUE(LeaseOf("k8s-master").has_value());
  ASSERT_TRUE(coordinator().Resume().ok());
  EXPECT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "kubeadm_package")).ok());
}

TEST_F(K8sRolloutTest, ACancelStopsAtTheNextSafePointAndSaysWhereEachNodeIs) {
  auto started = Start("1.30.5");
  ASSERT_TRUE(started.ok());
  RunLease("k8s-master", "1.30.5-1.1");
  clock().Advance(absl::Minutes(11));
  ReportAll();
  ASSERT_TRUE(LeaseOf("k8s-master").has_value());  // Its kubelet lease, drained.
  std::optional<Lease> lease = LeaseOf("k8s-master");
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "kubelet_packages")).ok());
  tended::v1::CancelK8sRolloutRequest cancel;
  cancel.set_rollout_id(started->id());
  cancel.set_reason("change freeze");
  auto cancelling = coordinator().CancelK8sRollout(cancel);
  ASSERT_TRUE(cancelling.ok()) << cancelling.status();
  EXPECT_EQ(cancelling->rollout().state(), tended::v1::K8S_ROLLOUT_STATE_CANCELLING);
  // The node in flight finishes its lease (the safe point); nothing after it starts.
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES).ok());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "kubelet_restart")).ok());
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_KUBELET_RESTART).ok());
  k8s_["k8s-master"].set_kubelet_version("1.30.5-1.1");
  k8s_["k8s-master"].set_kubectl_version("1.30.5-1.1");
  ReportAll();
  K8sRollout cancelled = Get(started->id());
  EXPECT_EQ(cancelled.state(), tended::v1::K8S_ROLLOUT_STATE_CANCELLED)
      << cancelled.ShortDebugString();
  EXPECT_THAT(cancelled.message(), HasSubstr("at 1.30.5: k8s-master"));
  EXPECT_THAT(cancelled.message(), HasSubstr("not upgraded: k8s-node4"));
  clock().Advance(absl::Hours(1));
  ReportAll();
  EXPECT_TRUE(Active().empty());
}

TEST_F(K8sRolloutTest, ACoordinatorRestartMidRolloutResumesWhereItStopped) {
  auto started = Start("1.30.5");
  ASSERT_TRUE(started.ok());
  std::optional<Lease> lease = LeaseOf("k8s-master");
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "etcd_snapshot")).ok());
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT).ok());
  ASSERT_TRUE(harness_.Restart().ok());
  ReportAll();
  K8sRollout resumed = Get(started->id());
  EXPECT_EQ(resumed.state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING);
  EXPECT_EQ(resumed.snapshot().size_bytes(), 20512u);
  lease = LeaseOf("k8s-master");
  ASSERT_TRUE(lease.has_value());
  EXPECT_THAT(lease->k8s_steps_done(), ElementsAre(tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT));
  // The agent re-sends the report it may have lost: nothing changes; then it goes on.
  EXPECT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT).ok());
  EXPECT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, "kubeadm_package")).ok());
  ASSERT_TRUE(Step(*lease, tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE).ok());
  for (auto kind :
       {tended::v1::K8S_STEP_KIND_KUBEADM_PLAN, tended::v1::K8S_STEP_KIND_KUBEADM_APPLY}) {
    ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(*lease, K8sStepName(kind))).ok());
    ASSERT_TRUE(Step(*lease, kind).ok());
  }
  k8s_["k8s-master"].set_kubeadm_version("1.30.5-1.1");
  ReportAll();
  EXPECT_FALSE(LeaseOf("k8s-master").has_value());
  Drive("1.30.5-1.1");
  EXPECT_EQ(Get(started->id()).state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
}

TEST_F(K8sRolloutTest, NoK8sLeaseGoesToANodeWhoseTurnItIsNot) {
  auto asked = Ask("k8s-node2", tended::v1::LEASE_KIND_K8S_UPGRADE);
  ASSERT_TRUE(asked.ok()) << asked.status();
  EXPECT_FALSE(asked->has_lease());
  ASSERT_TRUE(Start("1.30.5").ok());
  ReportAll();
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].node_name(), "k8s-master");
}

TEST_F(K8sRolloutTest, AMinorPreflightRefusesDeprecatedApisTheTargetRemoves) {
  // Requested and removed by 1.31 or earlier: refused. Removed later, or not requested:
  // fine. "1.9" is below "1.31" as numbers, though not as text.
  apis_->Add("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", "1.29");
  apis_->Add("", "v1beta1", "podsecuritypolicies", "1.9");
  apis_->Add("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations", "1.32");
  apis_->Add("autoscaling", "v2beta2", "horizontalpodautoscalers", "1.26", /*value=*/0);
  apis_->Add("batch", "v1beta1", "cronjobs", "1.25", 1, "status");
  auto refused = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  const tended::v1::PreflightCheck* check = FindCheck(*refused, "deprecated_apis");
  ASSERT_NE(check, nullptr) << refused->ShortDebugString();
  EXPECT_FALSE(check->pass());
  EXPECT_THAT(check->reason(),
              HasSubstr("flowcontrol.apiserver.k8s.io/v1beta2/flowschemas (removed in 1.29)"));
  EXPECT_THAT(check->reason(), HasSubstr("v1beta1/podsecuritypolicies (removed in 1.9)"));
  EXPECT_THAT(check->reason(), HasSubstr("batch/v1beta1/cronjobs/status (removed in 1.25)"));
  EXPECT_THAT(check->reason(), HasSubstr("3 APIs still in use"));
  EXPECT_THAT(check->reason(), Not(HasSubstr("prioritylevelconfigurations")));
  EXPECT_THAT(check->reason(), Not(HasSubstr("horizontalpodautoscalers")));
  EXPECT_THAT(refused->message(), HasSubstr("deprecated_apis"));
  EXPECT_TRUE(Active().empty());
  // A dry run reads them too and fails the same way.
  auto dry = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  EXPECT_THAT(dry->message(), HasSubstr("flowschemas"));
  EXPECT_EQ(apis_->fetches(), 2);
  // A patch removes no API: not asked, no check.
  auto patch = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH, /*dry_run=*/true);
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(FindCheck(*patch, "deprecated_apis"), nullptr);
  EXPECT_EQ(apis_->fetches(), 2);
  // The clients moved: the same rollout starts.
  apis_->Clear();
  apis_->Add("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations", "1.32");
  auto started = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << started->message();
  check = FindCheck(*started, "deprecated_apis");
  ASSERT_NE(check, nullptr);
  EXPECT_TRUE(check->pass());
  EXPECT_THAT(check->reason(), HasSubstr("no API that 1.31 removes was requested"));
}

TEST_F(K8sRolloutTest, AMinorPreflightFailsClosedWhenPrometheusCannotBeRead) {
  apis_->Fail(absl::UnavailableError(
      "GET http://prometheus:9090/api/v1/query?query=apiserver_requested_deprecated_apis: "
      "Connection refused"));
  auto refused = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  const tended::v1::PreflightCheck* check = FindCheck(*refused, "deprecated_apis");
  ASSERT_NE(check, nullptr);
  EXPECT_FALSE(check->pass());
  EXPECT_THAT(check->reason(), HasSubstr("cannot read apiserver_requested_deprecated_apis"));
  EXPECT_THAT(check->reason(), HasSubstr("Connection refused"));
  EXPECT_TRUE(Active().empty());
}

TEST_F(K8sRolloutTest, WithoutPrometheusTheCheckSaysItWasSkipped) {
  harness_.SetDeprecatedApiSource(nullptr);
  ASSERT_TRUE(harness_.Restart().ok());
  ReportAll();
  auto dry = Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR, /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << dry->message();
  const tended::v1::PreflightCheck* check = FindCheck(*dry, "deprecated_apis");
  ASSERT_NE(check, nullptr) << dry->ShortDebugString();
  EXPECT_TRUE(check->pass());
  EXPECT_THAT(check->reason(), HasSubstr("skipped: no Prometheus is configured"));
}

TEST_F(K8sRolloutTest, TheDeprecatedApisAreReadWithoutTheCoordinatorsLock) {
  tended::v1::ReportFactsRequest heartbeat = FactsReport("k8s-node1", BootOf("k8s-node1"), false);
  *heartbeat.mutable_facts()->mutable_k8s() = k8s_["k8s-node1"];
  // Outside any call the report is a heartbeat that reads the state without waiting.
  ASSERT_TRUE(coordinator().TryHeartbeat(heartbeat).has_value());
  std::vector<bool> answered;
  apis_->OnFetch([&] { answered.push_back(coordinator().TryHeartbeat(heartbeat).has_value()); });
  ASSERT_TRUE(Start("1.31.0", tended::v1::K8S_UPGRADE_KIND_MINOR, /*dry_run=*/true).ok());
  EXPECT_THAT(answered, ElementsAre(true));
}

TEST_F(K8sRolloutTest, DetectionAnnouncesEachNewTargetOnceAndStartsNothingByDefault) {
  // SetUp's check found 1.30.5 in the apt lists and the v1.31 repository.
  std::vector<std::string> announced = Announcements();
  ASSERT_EQ(announced.size(), 2u) << ::testing::PrintToString(announced);
  EXPECT_THAT(announced[0], HasSubstr("Kubernetes 1.30.5 is available (patch; the cluster runs "
                                      "1.30.2; kubeadm 1.30.5 is in k8s-master's apt lists)"));
  EXPECT_THAT(announced[0], HasSubstr("leases.k8s_upgrade.auto_start is off"));
  EXPECT_THAT(announced[0], HasSubstr("tendedctl k8s-rollout start --kind patch 1.30.5 REASON"));
  EXPECT_THAT(announced[1], HasSubstr("Kubernetes 1.31.0 is available (minor"));
  EXPECT_THAT(announced[1], HasSubstr("the pending patch goes first"));
  EXPECT_TRUE(Rollouts().empty());
  // More checks with the same result, and a restart: nothing new.
  for (int i = 0; i < 3; ++i) {
    clock().Advance(absl::Minutes(1));
    ReportAll();
  }
  ASSERT_TRUE(harness_.Restart().ok());
  ReportAll();
  EXPECT_EQ(Announcements().size(), 2u);
  // A newer patch is a new target.
  k8s_["k8s-master"].mutable_kubeadm_candidates()->Add("1.30.6-1.1");
  *k8s_["k8s-master"].mutable_checked_time() = ToProtoTimestamp(clock().Now());
  ReportAll();
  announced = Announcements();
  ASSERT_EQ(announced.size(), 3u);
  EXPECT_THAT(announced[2], HasSubstr("Kubernetes 1.30.6 is available (patch"));
  // A failed check announces nothing.
  k8s_["k8s-master"].mutable_kubeadm_candidates()->Add("1.30.7-1.1");
  k8s_["k8s-master"].set_check_error("apt lists unreadable");
  ReportAll();
  EXPECT_EQ(Announcements().size(), 3u);
  EXPECT_TRUE(Rollouts().empty());
}

coordinator::CoordinatorConfig AutoStartConfig() {
  coordinator::CoordinatorConfig config = RolloutConfig();
  config.leases[tended::v1::LEASE_KIND_K8S_UPGRADE].auto_start = true;
  return config;
}

class K8sAutoStartTest : public K8sRolloutTest {
 protected:
  K8sAutoStartTest() : K8sRolloutTest(AutoStartConfig()) {}
};

TEST_F(K8sAutoStartTest, DetectionStartsThePatchThenTheMinorEachOnce) {
  std::vector<K8sRollout> rollouts = Rollouts();
  ASSERT_EQ(rollouts.size(), 1u);
  EXPECT_EQ(rollouts[0].target_version(), "1.30.5");
  EXPECT_EQ(rollouts[0].kind(), tended::v1::K8S_UPGRADE_KIND_PATCH);
  EXPECT_EQ(rollouts[0].started_by(), "detection");
  EXPECT_EQ(rollouts[0].state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << rollouts[0].message();
  std::vector<std::string> announced = Announcements();
  ASSERT_EQ(announced.size(), 2u);
  EXPECT_THAT(announced[0], HasSubstr(absl::StrCat("rollout ", rollouts[0].id(),
                                                   " started by detection: RUNNING")));
  EXPECT_THAT(announced[1], HasSubstr("the pending patch goes first"));
  EXPECT_EQ(apis_->fetches(), 0);  // A patch reads no deprecated APIs.

  // (Without the repository while the patch runs, so the minor cannot follow at once.)
  k8s_["k8s-master"].set_next_minor_available(false);
  Drive("1.30.5-1.1");
  ASSERT_EQ(Get(rollouts[0].id()).state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
  EXPECT_EQ(Rollouts().size(), 1u);
  // The control plane's next check: 1.30.5 runs, the v1.31 repository is there.
  k8s_["k8s-master"].set_next_minor_available(true);
  k8s_["k8s-master"].clear_kubeadm_candidates();
  k8s_["k8s-master"].add_kubeadm_candidates("1.30.5-1.1");
  *k8s_["k8s-master"].mutable_checked_time() = ToProtoTimestamp(clock().Now());
  clock().Advance(absl::Minutes(11));
  ReportAll();
  rollouts = Rollouts();
  ASSERT_EQ(rollouts.size(), 2u);
  EXPECT_EQ(rollouts[1].target_version(), "1.31.0");
  EXPECT_EQ(rollouts[1].kind(), tended::v1::K8S_UPGRADE_KIND_MINOR);
  EXPECT_EQ(rollouts[1].started_by(), "detection");
  EXPECT_EQ(rollouts[1].running_version(), "1.30.5");
  EXPECT_EQ(apis_->fetches(), 1);
  ASSERT_NE(FindCheck(rollouts[1], "deprecated_apis"), nullptr);
  // Its start is announced too (the target itself was announced with the patch).
  announced = Announcements();
  ASSERT_EQ(announced.size(), 3u);
  EXPECT_THAT(announced[2], HasSubstr("Kubernetes 1.31.0 is available (minor"));
  EXPECT_THAT(announced[2], HasSubstr("started by detection"));
}

TEST_F(K8sAutoStartTest, ACancelledOrRefusedTargetIsNeverStartedAgain) {
  std::vector<K8sRollout> rollouts = Rollouts();
  ASSERT_EQ(rollouts.size(), 1u);
  tended::v1::CancelK8sRolloutRequest cancel;
  cancel.set_rollout_id(rollouts[0].id());
  cancel.set_reason("not this week");
  ASSERT_TRUE(coordinator().CancelK8sRollout(cancel).ok());
  ReportAll();
  ASSERT_EQ(Get(rollouts[0].id()).state(), tended::v1::K8S_ROLLOUT_STATE_CANCELLED);
  for (int i = 0; i < 3; ++i) {
    clock().Advance(absl::Minutes(5));
    ReportAll();
  }
  ASSERT_TRUE(harness_.Restart().ok());
  ReportAll();
  // Neither the patch again nor the minor while the patch is pending.
  EXPECT_EQ(Rollouts().size(), 1u);
  EXPECT_TRUE(Active().empty());

  // Once an operator has rolled the patch out, the minor is next; its preflight refuses a
  // removed API, and the refused target is not tried again either.
  apis_->Add("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", "1.29");
  k8s_["k8s-master"].set_next_minor_available(false);
  auto patch = Start("1.30.5");
  ASSERT_TRUE(patch.ok());
  Drive("1.30.5-1.1");
  ASSERT_EQ(Get(patch->id()).state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
  k8s_["k8s-master"].set_next_minor_available(true);
  k8s_["k8s-master"].clear_kubeadm_candidates();
  *k8s_["k8s-master"].mutable_checked_time() = ToProtoTimestamp(clock().Now());
  clock().Advance(absl::Minutes(11));
  ReportAll();
  rollouts = Rollouts();
  ASSERT_EQ(rollouts.size(), 3u);
  EXPECT_EQ(rollouts[2].target_version(), "1.31.0");
  EXPECT_EQ(rollouts[2].state(), tended::v1::K8S_ROLLOUT_STATE_FAILED);
  EXPECT_THAT(rollouts[2].message(), HasSubstr("flowschemas (removed in 1.29)"));
  apis_->Clear();
  for (int i = 0; i < 3; ++i) {
    clock().Advance(absl::Minutes(5));
    ReportAll();
  }
  ASSERT_TRUE(harness_.Restart().ok());
  ReportAll();
  EXPECT_EQ(Rollouts().size(), 3u);
  EXPECT_EQ(apis_->fetches(), 1);
}

}  // namespace
}  // namespace tended::testing
