#include "agent/k8s/step_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "tests/fakes/fake_k8s_node.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::k8s {
namespace {

using tended::v1::K8sStep;
using tended::v1::K8sUpgradeWork;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSource[] =
    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
    "https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /\n";

class StepRunnerTest : public ::testing::Test {
 protected:
  StepRunnerTest() : root_(dir_.path()), installed_(&packages_, /*control_plane=*/true) {
    packages_.installed = {{"kubeadm", "1.31.2-1.1"},
                           {"kubelet", "1.31.2-1.1"},
                           {"kubectl", "1.31.2-1.1"},
                           {"containerd", "1.6.20~ds1-1"}};
    packages_.available_versions = {{"kubeadm", {"1.31.4-1.1", "1.31.2-1.1"}},
                                    {"kubelet", {"1.31.4-1.1", "1.31.2-1.1"}},
                                    {"kubectl", {"1.31.4-1.1", "1.31.2-1.1"}},
                                    {"containerd", {"1.6.24~ds1-1", "1.6.20~ds1-1"}}};
    EXPECT_TRUE(MakeDirectories(dir_.Path("etc/apt/sources.list.d")).ok());
    EXPECT_TRUE(
        WriteFileAtomically(dir_.Path("etc/apt/sources.list.d/kubernetes.list"), kSource).ok());
  }

  K8sStepRunner Runner() {
    return K8sStepRunner({&packages_, &commands_, &installed_, &etcd_}, root_, StepRunnerOptions{});
  }

  static K8sUpgradeWork Work(tended::v1::K8sNodeRole role, const std::string& target,
                             std::initializer_list<tended::v1::K8sStepKind> kinds) {
    K8sUpgradeWork work;
    work.set_rollout_id("k8s-1");
    work.set_role(role);
    work.set_target_version(target);
    for (auto kind : kinds) {
      K8sStep* step = work.add_steps();
      step->set_kind(kind);
      step->set_target_version(target);
    }
    return work;
  }

  testing::TempDir dir_;
  RootPath root_;
  testing::FakePackageManager packages_;
  testing::FakeCommandRunner commands_;
  testing::FakeInstalledK8s installed_;
  testing::FakeEtcdSnapshotter etcd_;
};

TEST_F(StepRunnerTest, APatchOnTheFirstControlPlaneRunsFixedCommandsAndPinnedInstalls) {
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work =
      Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
           {tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT, tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE,
            tended::v1::K8S_STEP_KIND_KUBEADM_PLAN, tended::v1::K8S_STEP_KIND_KUBEADM_APPLY,
            tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES, tended::v1::K8S_STEP_KIND_KUBELET_RESTART});
  ASSERT_TRUE(runner.ValidateWork(work).ok());
  for (const K8sStep& step : work.steps()) {
    auto outcome = runner.Run(step);
    ASSERT_TRUE(outcome.ok()) << step.kind() << ": " << outcome.status();
    if (step.kind() == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT) {
      ASSERT_TRUE(outcome->snapshot.has_value());
      EXPECT_EQ(outcome->snapshot->sha256().size(), 64u);
    }
  }
  const std::string bin = dir_.Path("usr/bin");
  EXPECT_THAT(commands_.calls(),
              ElementsAre(bin + "/kubeadm upgrade plan v1.31.4",
                          bin + "/kubeadm upgrade apply v1.31.4 --yes",
                          bin + "/systemctl daemon-reload", bin + "/systemctl restart kubelet"));
  ASSERT_EQ(packages_.pinned.size(), 2u);
  EXPECT_EQ(packages_.pinned[0][0].package, "kubeadm");
  EXPECT_EQ(packages_.pinned[0][0].version, "1.31.4-1.1");
  EXPECT_EQ(packages_.pinned[1].size(), 2u);
  EXPECT_EQ(packages_.installed["kubelet"], "1.31.4-1.1");
  EXPECT_EQ(packages_.installed["kubectl"], "1.31.4-1.1");
  EXPECT_EQ(etcd_.taken(), 1);
}

TEST_F(StepRunnerTest, RunningAPackageStepAgainChangesNothing) {
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work =
      Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.4", {tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE});
  ASSERT_TRUE(runner.Run(work.steps(0)).ok());
  auto again = runner.Run(work.steps(0));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(again->message, HasSubstr("already at target"));
  EXPECT_EQ(packages_.pinned.size(), 1u);
}

TEST_F(StepRunnerTest, AFailingKubeadmIsAnErrorWithTheEndOfItsOutput) {
  commands_.FailOn("upgrade apply", 1,
                   "[preflight] Running pre-flight checks.\n"
                   "[ERROR CoreDNSUnsupportedPlugins]: start version '1.11.1' not supported\n");
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work = Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
                             {tended::v1::K8S_STEP_KIND_KUBEADM_APPLY});
  auto outcome = runner.Run(work.steps(0));
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(outcome.status().message(), HasSubstr("kubeadm upgrade apply v1.31.4 --yes"));
  EXPECT_THAT(outcome.status().message(), HasSubstr("CoreDNSUnsupportedPlugins"));
}

TEST_F(StepRunnerTest, ATargetTheListsDoNotOfferIsNotInstalled) {
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work =
      Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.9", {tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE});
  auto outcome = runner.Run(work.steps(0));
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(outcome.status().message(), HasSubstr("offer no kubeadm 1.31.9"));
  EXPECT_TRUE(packages_.pinned.empty());
  // The lists were refreshed once before giving up.
  EXPECT_EQ(packages_.updates, 1);
}

TEST_F(StepRunnerTest, ListsOlderThanTheReleaseAreRefreshedOnce) {
  packages_.on_update = [](testing::FakePackageManager& packages) {
    packages.available_versions["kubeadm"].insert(packages.available_versions["kubeadm"].begin(),
                                                  "1.31.5-1.1");
  };
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work =
      Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.5", {tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE});
  auto outcome = runner.Run(work.steps(0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(packages_.updates, 1);
  EXPECT_EQ(packages_.installed["kubeadm"], "1.31.5-1.1");
}

TEST_F(StepRunnerTest, TheAptSourceSwitchRewritesTheLineAndRefreshesTheLists) {
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work = Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.32.0",
                             {tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH});
  ASSERT_TRUE(runner.ValidateWork(work).ok());
  auto outcome = runner.Run(work.steps(0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_THAT(*ReadFileToString(dir_.Path("etc/apt/sources.list.d/kubernetes.list")),
              HasSubstr("signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
                        "https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /"));
  EXPECT_EQ(packages_.updates, 1);
  // Again (a resume after a crash): the file stays, the lists are refreshed again.
  ASSERT_TRUE(runner.Run(work.steps(0)).ok());
  EXPECT_EQ(packages_.updates, 2);
}

TEST_F(StepRunnerTest, TheContainerdFixInstallsTheExactVersion) {
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work = Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
                             {tended::v1::K8S_STEP_KIND_CONTAINERD_FIX});
  work.mutable_steps(0)->set_containerd_version("1.6.24~ds1-1");
  ASSERT_TRUE(runner.ValidateWork(work).ok());
  ASSERT_TRUE(runner.Run(work.steps(0)).ok());
  EXPECT_EQ(packages_.installed["containerd"], "1.6.24~ds1-1");
}

TEST_F(StepRunnerTest, ValidationRefusesWhatMustNotRunHere) {
  K8sStepRunner runner = Runner();
  auto refused = [&](K8sUpgradeWork work) { return runner.ValidateWork(work); };
  // Not a strict version.
  EXPECT_EQ(refused(Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.4; rm -rf /",
                         {tended::v1::K8S_STEP_KIND_KUBEADM_NODE}))
                .code(),
            absl::StatusCode::kInvalidArgument);
  // Two minors at once.
  EXPECT_THAT(refused(Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.33.0",
                           {tended::v1::K8S_STEP_KIND_KUBEADM_NODE}))
                  .message(),
              HasSubstr("more than one minor"));
  // A downgrade.
  EXPECT_THAT(refused(Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.1",
                           {tended::v1::K8S_STEP_KIND_KUBEADM_NODE}))
                  .message(),
              HasSubstr("downgrade"));
  // kubeadm upgrade apply on a node the lease does not make the first control plane.
  EXPECT_THAT(refused(Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.4",
                           {tended::v1::K8S_STEP_KIND_KUBEADM_APPLY}))
                  .message(),
              HasSubstr("first control plane"));
  // A step whose target differs from the lease's.
  K8sUpgradeWork mixed =
      Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.4", {tended::v1::K8S_STEP_KIND_KUBEADM_NODE});
  mixed.mutable_steps(0)->set_target_version("1.32.0");
  EXPECT_EQ(refused(mixed).code(), absl::StatusCode::kInvalidArgument);
  // A containerd version that is not a Debian version.
  K8sUpgradeWork odd = Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
                            {tended::v1::K8S_STEP_KIND_CONTAINERD_FIX});
  odd.mutable_steps(0)->set_containerd_version("1.7 --allow-downgrades");
  EXPECT_EQ(refused(odd).code(), absl::StatusCode::kInvalidArgument);
  // An unknown step kind.
  K8sUpgradeWork unknown = Work(tended::v1::K8S_NODE_ROLE_WORKER, "1.31.4", {});
  unknown.add_steps()->set_kind(static_cast<tended::v1::K8sStepKind>(99));
  unknown.mutable_steps(0)->set_target_version("1.31.4");
  EXPECT_EQ(refused(unknown).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StepRunnerTest, ControlPlaneStepsAreRefusedOnAWorker) {
  testing::FakeInstalledK8s worker(&packages_, /*control_plane=*/false);
  K8sStepRunner runner({&packages_, &commands_, &worker, &etcd_}, root_, StepRunnerOptions{});
  absl::Status refused =
      runner.ValidateWork(Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
                               {tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT}));
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("control plane only"));
}

TEST_F(StepRunnerTest, AFailedSnapshotIsAnError) {
  etcd_.FailNext(absl::DataLossError("the snapshot's sha256 does not match its trailer"));
  K8sStepRunner runner = Runner();
  K8sUpgradeWork work = Work(tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE, "1.31.4",
                             {tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT});
  EXPECT_EQ(runner.Run(work.steps(0)).status().code(), absl::StatusCode::kDataLoss);
}

TEST(IsPlainDebianVersionTest, AcceptsDebianVersionsOnly) {
  EXPECT_TRUE(IsPlainDebianVersion("1.7.24-1"));
  EXPECT_TRUE(IsPlainDebianVersion("1:1.6.20~ds1-1+b1"));
  EXPECT_FALSE(IsPlainDebianVersion(""));
  EXPECT_FALSE(IsPlainDebianVersion("v1.7"));
  EXPECT_FALSE(IsPlainDebianVersion("1.7 x"));
  EXPECT_FALSE(IsPlainDebianVersion(std::string(65, '1')));
}

}  // namespace
}  // namespace tended::agent::k8s
