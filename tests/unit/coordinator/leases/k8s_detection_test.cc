// Which Kubernetes upgrades the control planes' version checks make available: the newest
// successful check decides, a patch is the newest candidate of the running minor, a minor
// target is the newest candidate of the next minor or its .0, and failed or unreadable
// checks offer nothing.
#include "coordinator/leases/k8s_detection.h"

#include <string>
#include <utility>
#include <vector>

#include "common/proto_time.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

tended::v1::K8sNodeFacts ControlPlane(const std::string& kubelet, absl::Time checked,
                                      std::vector<std::string> candidates,
                                      const std::string& next_minor = "") {
  tended::v1::K8sNodeFacts facts;
  facts.set_control_plane(true);
  facts.set_kubelet_version(kubelet);
  *facts.mutable_checked_time() = ToProtoTimestamp(checked);
  for (const std::string& candidate : candidates) facts.add_kubeadm_candidates(candidate);
  if (!next_minor.empty()) {
    facts.set_next_minor(next_minor);
    facts.set_next_minor_available(true);
  }
  return facts;
}

const absl::Time kMonday = absl::FromUnixSeconds(1767571200);

TEST(FindK8sUpgradesTest, NewestPatchOfTheRunningMinorAndTheNextMinor) {
  tended::v1::K8sNodeFacts master = ControlPlane(
      "1.31.2-1.1", kMonday, {"1.31.4-1.1", "1.31.5-1.1", "1.31.1-1.1", "1.30.9-1.1"}, "1.32");
  K8sAvailableUpgrades available = FindK8sUpgrades({{"k8s-master", &master}});
  ASSERT_TRUE(available.patch.has_value());
  EXPECT_EQ(available.patch->target.ToString(), "1.31.5");
  EXPECT_EQ(available.patch->running.ToString(), "1.31.2");
  EXPECT_EQ(available.patch->evidence, "kubeadm 1.31.5 is in k8s-master's apt lists");
  ASSERT_TRUE(available.minor.has_value());
  EXPECT_EQ(available.minor->target.ToString(), "1.32.0");
  EXPECT_EQ(available.minor->kind, tended::v1::K8S_UPGRADE_KIND_MINOR);
}

TEST(FindK8sUpgradesTest, AMinorTargetIsTheNewestNextMinorCandidateWhenListed) {
  tended::v1::K8sNodeFacts master =
      ControlPlane("1.31.5-1.1", kMonday, {"1.32.3-1.1", "1.32.1-1.1", "1.31.5-1.1"}, "1.32");
  K8sAvailableUpgrades available = FindK8sUpgrades({{"k8s-master", &master}});
  EXPECT_FALSE(available.patch.has_value());
  ASSERT_TRUE(available.minor.has_value());
  EXPECT_EQ(available.minor->target.ToString(), "1.32.3");
}

TEST(FindK8sUpgradesTest, TheNewestSuccessfulCheckDecides) {
  tended::v1::K8sNodeFacts old_check =
      ControlPlane("1.31.2-1.1", kMonday - absl::Hours(24 * 7), {"1.31.3-1.1"});
  tended::v1::K8sNodeFacts new_check = ControlPlane("1.31.2-1.1", kMonday, {"1.31.6-1.1"});
  tended::v1::K8sNodeFacts failed =
      ControlPlane("1.31.2-1.1", kMonday + absl::Hours(1), {"1.31.9-1.1"});
  failed.set_check_error("the apt lists cannot be read");
  tended::v1::K8sNodeFacts worker =
      ControlPlane("1.31.2-1.1", kMonday + absl::Hours(2), {"1.31.8"});
  worker.set_control_plane(false);
  K8sAvailableUpgrades available = FindK8sUpgrades(
      {{"cp1", &old_check}, {"cp2", &new_check}, {"cp3", &failed}, {"node1", &worker}});
  ASSERT_TRUE(available.patch.has_value());
  EXPECT_EQ(available.patch->target.ToString(), "1.31.6");
}

TEST(FindK8sUpgradesTest, NothingFromGarbageOrAWrongMinor) {
  tended::v1::K8sNodeFacts unreadable = ControlPlane("latest", kMonday, {"1.31.6-1.1"}, "1.32");
  EXPECT_FALSE(FindK8sUpgrades({{"cp", &unreadable}}).patch.has_value());
  EXPECT_FALSE(FindK8sUpgrades({{"cp", &unreadable}}).minor.has_value());
  // Two minors ahead, or a malformed minor, is not the next minor.
  for (const char* next : {"1.33", "1.32.0", "v1.32", "1.32; reboot", ""}) {
    tended::v1::K8sNodeFacts master = ControlPlane("1.31.2-1.1", kMonday, {"garbage"}, next);
    master.set_next_minor_available(true);
    K8sAvailableUpgrades available = FindK8sUpgrades({{"cp", &master}});
    EXPECT_FALSE(available.minor.has_value()) << next;
    EXPECT_FALSE(available.patch.has_value()) << next;
  }
  // The repository absent: no minor.
  tended::v1::K8sNodeFacts absent = ControlPlane("1.31.2-1.1", kMonday, {}, "1.32");
  absent.set_next_minor_available(false);
  EXPECT_FALSE(FindK8sUpgrades({{"cp", &absent}}).minor.has_value());
  EXPECT_FALSE(FindK8sUpgrades({}).patch.has_value());
}

}  // namespace
}  // namespace tended::coordinator
