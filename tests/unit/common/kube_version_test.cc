// Kubernetes version parsing and kubeadm's upgrade and skew rules.
#include "common/kube_version.h"

#include "common/k8s_steps.h"
#include "gtest/gtest.h"

namespace tended {
namespace {

using tended::v1::K8S_UPGRADE_KIND_MINOR;
using tended::v1::K8S_UPGRADE_KIND_PATCH;

KubeVersion V(int minor, int patch) { return KubeVersion{1, minor, patch}; }

TEST(KubeVersionTest, TargetsAreStrictlyMajorMinorPatch) {
  auto parsed = ParseTargetVersion("1.31.4");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, V(31, 4));
  EXPECT_EQ(parsed->ToTag(), "v1.31.4");
  EXPECT_EQ(*ParseTargetVersion("v1.30.0"), V(30, 0));
  for (const char* bad :
       {"", "1.31", "1.31.4-1.1", "1.31.4 ", " 1.31.4", "1.31.x", "1..4", "1.31.4; rm -rf /",
        "01.31.4.5", "2.0.0", "1.1000.0", "1.31.99999", "v1.31.4+dirty", "1.31.4\n"}) {
    EXPECT_FALSE(ParseTargetVersion(bad).ok()) << bad;
  }
  EXPECT_NE(ParseTargetVersion("1.31").status().message().find("MAJOR.MINOR.PATCH"),
            std::string::npos);
}

TEST(KubeVersionTest, ReportedVersionsAcceptTagsAndPackageRevisions) {
  EXPECT_EQ(*ParseReportedVersion("v1.30.2"), V(30, 2));
  EXPECT_EQ(*ParseReportedVersion("1.30.2-1.1"), V(30, 2));
  EXPECT_EQ(*ParseReportedVersion("v1.30.2+k3s1"), V(30, 2));
  EXPECT_FALSE(ParseReportedVersion("kubelet").ok());
  EXPECT_FALSE(ParseReportedVersion("v1.30").ok());
  EXPECT_TRUE(PackageVersionIs("1.31.4-1.1", V(31, 4)));
  EXPECT_FALSE(PackageVersionIs("1.31.40-1.1", V(31, 4)));
  EXPECT_FALSE(PackageVersionIs("1.31.4", V(31, 4)));
  EXPECT_FALSE(PackageVersionIs("1.31.3-1.1", V(31, 4)));
}

TEST(KubeVersionTest, PatchStaysInItsMinorAndMinorGoesOneUp) {
  EXPECT_TRUE(ValidateUpgrade(V(30, 2), V(30, 5), K8S_UPGRADE_KIND_PATCH).ok());
  EXPECT_TRUE(ValidateUpgrade(V(30, 5), V(30, 5), K8S_UPGRADE_KIND_PATCH).ok());
  EXPECT_TRUE(ValidateUpgrade(V(30, 5), V(31, 0), K8S_UPGRADE_KIND_MINOR).ok());
  EXPECT_TRUE(ValidateUpgrade(V(30, 5), V(31, 4), K8S_UPGRADE_KIND_MINOR).ok());

  absl::Status two_minors = ValidateUpgrade(V(30, 5), V(32, 0), K8S_UPGRADE_KIND_MINOR);
  EXPECT_TRUE(absl::IsFailedPrecondition(two_minors));
  EXPECT_NE(two_minors.message().find("one minor at a time"), std::string::npos) << two_minors;
  EXPECT_FALSE(ValidateUpgrade(V(30, 5), V(31, 0), K8S_UPGRADE_KIND_PATCH).ok());
  EXPECT_FALSE(ValidateUpgrade(V(30, 5), V(30, 6), K8S_UPGRADE_KIND_MINOR).ok());
  EXPECT_FALSE(ValidateUpgrade(V(30, 5), V(30, 4), K8S_UPGRADE_KIND_PATCH).ok());
  EXPECT_FALSE(ValidateUpgrade(V(31, 0), V(30, 9), K8S_UPGRADE_KIND_MINOR).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      ValidateUpgrade(V(30, 5), V(30, 6), tended::v1::K8S_UPGRADE_KIND_UNSPECIFIED)));
}

TEST(KubeVersionTest, KubeletsMayTrailByThreeMinorsAndNeverLead) {
  std::map<std::string, KubeVersion> kubelets = {{"a", V(28, 0)}, {"b", V(31, 0)}};
  EXPECT_TRUE(CheckKubeletSkew(V(31, 4), kubelets).ok());
  kubelets["c"] = V(27, 9);
  kubelets["d"] = V(32, 0);
  absl::Status skew = CheckKubeletSkew(V(31, 4), kubelets);
  EXPECT_TRUE(absl::IsFailedPrecondition(skew));
  EXPECT_NE(skew.message().find("c runs kubelet 1.27.9"), std::string::npos) << skew;
  EXPECT_NE(skew.message().find("d runs kubelet 1.32.0, newer"), std::string::npos) << skew;
  EXPECT_EQ(skew.message().find("a runs"), std::string::npos) << skew;
  EXPECT_EQ(MinorSpread(kubelets), 5);
  EXPECT_EQ(MinorSpread({}), 0);
}

TEST(K8sStepsTest, NamesRoundTrip) {
  for (int k = tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT;
       k <= tended::v1::K8S_STEP_KIND_KUBELET_RESTART; ++k) {
    const auto kind = static_cast<tended::v1::K8sStepKind>(k);
    const std::string name = K8sStepName(kind);
    EXPECT_NE(name, "unknown");
    EXPECT_EQ(K8sStepFromName(name), kind) << name;
  }
  EXPECT_EQ(K8sStepName(tended::v1::K8S_STEP_KIND_KUBEADM_APPLY), "kubeadm_apply");
  EXPECT_FALSE(K8sStepFromName("reboot").has_value());
  EXPECT_TRUE(K8sStepNeedsDrain(tended::v1::K8S_STEP_KIND_KUBELET_RESTART));
  EXPECT_FALSE(K8sStepNeedsDrain(tended::v1::K8S_STEP_KIND_KUBEADM_APPLY));
}

}  // namespace
}  // namespace tended
