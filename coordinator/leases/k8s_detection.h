// What the agents' Kubernetes version checks mean for the coordinator: the upgrades
// available now (from the control plane with the newest successful check: a newer patch of
// the running minor among its kubeadm candidates, or the next minor's repository), which of
// them are new (announced once each), and which one detection starts by itself when
// leases.k8s_upgrade.auto_start is on. The rule: a patch before a minor (a minor only when no
// patch of the running minor is pending), never while a rollout is active, and each target
// at most once: a target detection started, or an operator rolled out, is never started
// again by detection, whatever became of that rollout.
#ifndef TENDED_COORDINATOR_LEASES_K8S_DETECTION_H_
#define TENDED_COORDINATOR_LEASES_K8S_DETECTION_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/kube_version.h"
#include "coordinator/config/config.h"
#include "coordinator/state/fleet_state.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::coordinator {

// The most detection targets the state keeps (newest last).
inline constexpr int kK8sDetectedTargetsKept = 32;

struct K8sUpgradeTarget {
  tended::v1::K8sUpgradeKind kind = tended::v1::K8S_UPGRADE_KIND_UNSPECIFIED;
  KubeVersion running;
  KubeVersion target;
  // What the check found, for messages: "kubeadm 1.30.5 is in k8s-master's apt lists".
  std::string evidence;
};

struct K8sAvailableUpgrades {
  std::optional<K8sUpgradeTarget> patch;
  std::optional<K8sUpgradeTarget> minor;
};

// From a control plane's facts (node name, facts): the one whose successful check is newest
// decides. A minor's target is the newest next-minor version among the kubeadm candidates,
// else <next minor>.0 (the next minor's patches show only after the apt source switch).
K8sAvailableUpgrades FindK8sUpgrades(
    const std::vector<std::pair<std::string, const tended::v1::K8sNodeFacts*>>& nodes);
// The same over the nodes that reported since the coordinator started.
K8sAvailableUpgrades FindK8sUpgrades(const state::FleetState& state);

struct K8sDetectionPlan {
  // Targets not announced before, patch first.
  std::vector<K8sUpgradeTarget> announce;
  // The rollout to start now (auto_start on, k8s_upgrade enabled, nothing active).
  std::optional<K8sUpgradeTarget> start;
  // Why an available target is not started, for the announcement: "auto_start is off".
  std::string not_started;
  // A newer patch of the running minor is available (so no minor starts).
  bool patch_pending = false;
};

K8sDetectionPlan PlanK8sDetection(const state::FleetState& state, const CoordinatorConfig& config);

// The detection state's entry for (kind, target), or null.
const tended::state::v1::K8sDetectedTarget* FindDetectedTarget(
    const tended::state::v1::K8sDetectionState& detection, tended::v1::K8sUpgradeKind kind,
    const std::string& target_version);

// "patch" or "minor".
std::string K8sUpgradeKindName(tended::v1::K8sUpgradeKind kind);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_K8S_DETECTION_H_
