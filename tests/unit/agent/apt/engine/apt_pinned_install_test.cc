// InstallPinned on real packages: a Kubernetes-like repository that the policy does not allow,
// held kubeadm/kubelet/kubectl in a throwaway dpkg root, and the NodeOS security repository
// the policy allows (for dependencies).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "agent/apt/package_manager.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using testing::Deb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::ReadFile;
using testing::RepoSpec;
using testing::Sh;

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern {
  "o=NodeOS,n=${distro_codename}-security";
};
Unattended-Upgrade::Package-Blacklist { "blk"; };
)";

const char kSecurity[] = "o=NodeOS,a=stable-security,n=bookworm-security,l=NodeOS-Security,c=main";
const char kKubernetes[] = "o=Kubernetes,a=kubernetes,n=kubernetes,l=Kubernetes,c=main";

std::vector<Deb> BaseDebs() {
  return {Deb{"kubeadm", "1.0"},   Deb{"kubelet", "1.0"},
          Deb{"kubectl", "1.2"},   Deb{"kubernetes-cni", "1.0"},
          Deb{"cri-tools", "1.0"}, Deb{"failer", "1.0"},
          Deb{"blk", "1.0"},       Deb{"usesblk", "1.0", "blk"},
          Deb{"libfoo", "1.0"}};
}

std::vector<RepoSpec> LabRepos() {
  RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
  security.debs = {Deb{"cri-tools", "1.1"}, Deb{"libfoo", "1.1"}, Deb{"blk", "1.1"}};
  RepoSpec kubernetes{"kubernetes", "Kubernetes", "Kubernetes", "kubernetes", {}};
  kubernetes.debs = {Deb{"kubeadm", "1.1", "cri-tools (>= 1.1)"},
                     Deb{"kubeadm", "1.2", "kubelet (>= 1.2)"},
                     Deb{"kubeadm", "1.3", "kubernetes-cni (>= 1.1)"},
                     Deb{"kubelet", "1.1"},
                     Deb{"kubelet", "1.2"},
                     Deb{"kubectl", "1.1"},
                     Deb{"kubectl", "1.2"},
                     Deb{"kubernetes-cni", "1.1"},
                     Deb{"failer", "1.1", "", "[ \"$1\" = configure ] && exit 1\ntrue"},
                     Deb{"usesblk", "1.1", "blk (>= 1.1)"}};
  return {security, kubernetes};
}

std::vector<ApplyProgress::Stage> Stages(const std::vector<ApplyProgress>& events) {
  std::vector<ApplyProgress::Stage> out;
  for (const ApplyProgress& e : events) out.push_back(e.stage);
  return out;
}

class PinnedInstallTest : public testing::LabTest<PinnedInstallTest> {
 public:
  static std::vector<RepoSpec> Repos() { return LabRepos(); }

 protected:
  void SetUp() override {
    MakeLab(kPolicy, BaseDebs());
    Sh(absl::StrCat("printf 'kubeadm hold\\nkubelet hold\\nkubectl hold\\nfailer hold\\n' | ",
                    lab_->Dpkg(), " --set-selections"));
  }

  absl::StatusOr<ApplyResult> Pin(PackageManager& manager,
                                  const std::vector<PinnedVersion>& packages) {
    events_.clear();
    return manager.InstallPinned(packages, [&](const ApplyProgress& p) { events_.push_back(p); });
  }

  std::string Selection(const std::string& package) {
    return Sh(absl::StrCat(lab_->Dpkg(), " --get-selections ", package));
  }
  std::string Status() const { return ReadFile(lab_->Path("var/lib/dpkg/status")); }
  std::string DpkgLog() const { return ReadFile(lab_->Path("var/log/dpkg.log")); }

  std::vector<ApplyProgress> events_;
};

TEST_F(PinnedInstallTest, InstallsTheExactVersionOfAHeldPackageAndHoldsItAgain) {
  AptOptions options;
  options.policy.holds = {"libfoo"};
  std::unique_ptr<PackageManager> manager = Manager(options);
  ASSERT_NE(manager, nullptr);

  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubeadm", "1.1"}});
  ASSERT_TRUE(result.ok()) << result.status();
  // Exactly 1.1 (not 1.2 or 1.3), from the disallowed origin, with its dependency from the
  // allowed one; libfoo's allowed upgrade is not part of it.
  EXPECT_THAT(result->installed, ElementsAre(PackageUpgrade{"cri-tools", "1.0", "1.1", kSecurity},
                                             PackageUpgrade{"kubeadm", "1.0", "1.1", kKubernetes}));
  EXPECT_THAT(result->skipped, IsEmpty());
  EXPECT_EQ(lab_->State("kubeadm"), "hi 1.1");
  EXPECT_EQ(lab_->State("cri-tools"), "ii 1.1");
  EXPECT_EQ(lab_->State("libfoo"), "hi 1.0");  // The YAML hold is set as in Apply.
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.0");
  EXPECT_THAT(Selection("kubeadm"), AllOf(HasSubstr("kubeadm"), HasSubstr("hold")));
  EXPECT_THAT(result->reheld, Contains("kubeadm"));
  EXPECT_THAT(*manager->Holds(), ElementsAre("failer", "kubeadm", "kubectl", "kubelet", "libfoo"));
  EXPECT_THAT(Stages(events_), Contains(ApplyProgress::Stage::kDownloading));
  EXPECT_THAT(Stages(events_), Contains(ApplyProgress::Stage::kInstalling));
  EXPECT_THAT(Stages(events_), Contains(ApplyProgress::Stage::kHolding));
  EXPECT_FALSE(result->reboot.required);

  // The next plan keeps kubeadm back as held instead of moving it on to a newer version.
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->kept, Contains(KeptPackage{"kubeadm", "held (dpkg hold)"}));
  for (const PackageUpgrade& u : plan->upgrades) EXPECT_NE(u.package, "kubeadm");
}

TEST_F(PinnedInstallTest, AVersionThatIsNotInTheListsIsNotFoundAndChangesNothing) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  const std::string status = Status();
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubeadm", "9.9"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
  EXPECT_THAT(result.status().message(),
              AllOf(HasSubstr("kubeadm 9.9"), HasSubstr("1.3, 1.2, 1.1, 1.0")));
  result = Pin(*manager, {{"kubeadm", "1.1"}, {"no-such-package", "1.0"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("no-such-package"));
  result = Pin(*manager, {{"kubeadm", "1.1"}, {"kubeadm", "1.2"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_EQ(Status(), status);
  EXPECT_EQ(lab_->State("kubeadm"), "hi 1.0");
  EXPECT_EQ(lab_->State("cri-tools"), "ii 1.0");
}

TEST_F(PinnedInstallTest, RefusesADowngrade) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  const std::string status = Status();
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubectl", "1.1"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_THAT(result.status().message(),
              AllOf(HasSubstr("kubectl 1.2 is installed"), HasSubstr("downgrade")));
  EXPECT_EQ(Status(), status);
  EXPECT_EQ(lab_->State("kubectl"), "hi 1.2");
}

TEST_F(PinnedInstallTest, AlreadyAtTheVersionIsANoOp) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  const std::string status = Status();
  const std::string log = DpkgLog();
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubectl", "1.2"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->installed, IsEmpty());
  EXPECT_THAT(result->reheld, IsEmpty());
  EXPECT_THAT(Stages(events_), Not(Contains(ApplyProgress::Stage::kDownloading)));
  EXPECT_THAT(Stages(events_), Not(Contains(ApplyProgress::Stage::kInstalling)));
  EXPECT_EQ(DpkgLog(), log);  // dpkg never ran.
  EXPECT_EQ(Status(), status);
  EXPECT_EQ(lab_->State("kubectl"), "hi 1.2");
}

TEST_F(PinnedInstallTest, RefusesADependencyOnAnotherHeldPackage) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  const std::string status = Status();
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubeadm", "1.2"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_EQ(result.status().message(),
            "kubeadm 1.2 cannot be installed: needs kubelet >= 1.2, which is held");
  EXPECT_EQ(Status(), status);
  EXPECT_EQ(lab_->State("kubeadm"), "hi 1.0");
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.0");
}

TEST_F(PinnedInstallTest, NamingBothInstallsBothAndHoldsBoth) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"kubeadm", "1.2"}, {"kubelet", "1.2"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->installed, ElementsAre(PackageUpgrade{"kubeadm", "1.0", "1.2", kKubernetes},
                                             PackageUpgrade{"kubelet", "1.0", "1.2", kKubernetes}));
  EXPECT_EQ(lab_->State("kubeadm"), "hi 1.2");
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.2");
  EXPECT_THAT(result->reheld, ElementsAre("kubeadm", "kubelet"));
}

TEST_F(PinnedInstallTest, RefusesABlacklistedOrDisallowedDependency) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  const std::string status = Status();
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"usesblk", "1.1"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_EQ(result.status().message(),
            "usesblk 1.1 cannot be installed: needs blk >= 1.1, which is blacklisted");
  // Only the named packages may come from a disallowed origin.
  result = Pin(*manager, {{"kubeadm", "1.3"}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_EQ(result.status().message(),
            "kubeadm 1.3 cannot be installed: needs kubernetes-cni >= 1.1, which is only "
            "available from a disallowed origin");
  EXPECT_EQ(Status(), status);

  result = Pin(*manager, {{"kubeadm", "1.3"}, {"kubernetes-cni", "1.1"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(lab_->State("kubeadm"), "hi 1.3");
  EXPECT_EQ(lab_->State("kubernetes-cni"), "ii 1.1");
}

TEST_F(PinnedInstallTest, AFailingPostinstReturnsTheErrorAndTheHoldsStay) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<ApplyResult> result = Pin(*manager, {{"failer", "1.1"}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal) << result.status();
  EXPECT_THAT(result.status().message(),
              AllOf(HasSubstr("installing the pinned versions failed"), HasSubstr("failer")));
  EXPECT_EQ(lab_->State("failer"), "hF 1.1");  // Unpacked, configuration failed, held.
  EXPECT_THAT(Selection("failer"), HasSubstr("hold"));
  EXPECT_THAT(*manager->Holds(), ElementsAre("failer", "kubeadm", "kubectl", "kubelet"));
}

}  // namespace
}  // namespace tended::agent::apt
