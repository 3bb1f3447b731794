#include "coordinator/leases/k8s_detection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

using tended::v1::K8sNodeFacts;

// "1.31" (exactly as the agent reports next_minor, which preflight compares) as a version
// with patch 0; nullopt for anything else.
std::optional<KubeVersion> ParseMinor(const std::string& text) {
  if (std::count(text.begin(), text.end(), '.') != 1 || text.empty() || text[0] == 'v') {
    return std::nullopt;
  }
  absl::StatusOr<KubeVersion> version = ParseTargetVersion(absl::StrCat(text, ".0"));
  if (!version.ok()) return std::nullopt;
  return *version;
}

bool RolledOutBefore(const state::FleetState& state, const std::string& target) {
  return std::any_of(state.k8s_rollouts().begin(), state.k8s_rollouts().end(),
                     [&](const tended::v1::K8sRollout& rollout) {
                       return !rollout.dry_run() && rollout.target_version() == target;
                     });
}

}  // namespace

std::string K8sUpgradeKindName(tended::v1::K8sUpgradeKind kind) {
  switch (kind) {
    case tended::v1::K8S_UPGRADE_KIND_PATCH:
      return "patch";
    case tended::v1::K8S_UPGRADE_KIND_MINOR:
      return "minor";
    default:
      return "unspecified";
  }
}

K8sAvailableUpgrades FindK8sUpgrades(
    const std::vector<std::pair<std::string, const K8sNodeFacts*>>& nodes) {
  const K8sNodeFacts* checked = nullptr;
  std::string name;
  absl::Time last = absl::InfinitePast();
  for (const auto& [node, facts] : nodes) {
    if (facts == nullptr || !facts->control_plane() || !facts->has_checked_time() ||
        !facts->check_error().empty()) {
      continue;
    }
    const absl::Time time = FromProtoTimestamp(facts->checked_time());
    if (time > last) {
      last = time;
      checked = facts;
      name = node;
    }
  }
  K8sAvailableUpgrades available;
  if (checked == nullptr) return available;
  absl::StatusOr<KubeVersion> running = ParseReportedVersion(checked->kubelet_version());
  if (!running.ok()) return available;
  std::optional<KubeVersion> newest_patch;
  std::optional<KubeVersion> newest_next;
  for (const std::string& candidate : checked->kubeadm_candidates()) {
    absl::StatusOr<KubeVersion> version = ParseReportedVersion(candidate);
    if (!version.ok()) continue;
    if (version->SameMinor(*running) && *version > *running &&
        (!newest_patch.has_value() || *version > *newest_patch)) {
      newest_patch = *version;
    }
    if (version->major == running->major && version->minor == running->minor + 1 &&
        (!newest_next.has_value() || *version > *newest_next)) {
      newest_next = *version;
    }
  }
  if (newest_patch.has_value()) {
    available.patch = K8sUpgradeTarget{
        tended::v1::K8S_UPGRADE_KIND_PATCH, *running, *newest_patch,
        absl::StrCat("kubeadm ", newest_patch->ToString(), " is in ", name, "'s apt lists")};
  }
  if (checked->next_minor_available()) {
    std::optional<KubeVersion> minor = ParseMinor(checked->next_minor());
    if (minor.has_value() && minor->major == running->major && minor->minor == running->minor + 1) {
      const KubeVersion target = newest_next.has_value() ? *newest_next : *minor;
      available.minor = K8sUpgradeTarget{
          tended::v1::K8S_UPGRADE_KIND_MINOR, *running, target,
          absl::StrCat("the v", minor->major, ".", minor->minor, " repository answered ", name,
                       "'s check at ", FormatUtcTime(last))};
    }
  }
  return available;
}

K8sAvailableUpgrades FindK8sUpgrades(const state::FleetState& state) {
  std::vector<std::pair<std::string, const K8sNodeFacts*>> nodes;
  for (const auto& [name, entry] : state.nodes()) {
    if (!entry->reported_since_start() || !entry->facts.has_k8s()) continue;
    nodes.emplace_back(name, &entry->facts.k8s());
  }
  return FindK8sUpgrades(nodes);
}

const tended::state::v1::K8sDetectedTarget* FindDetectedTarget(
    const tended::state::v1::K8sDetectionState& detection, tended::v1::K8sUpgradeKind kind,
    const std::string& target_version) {
  for (const auto& entry : detection.targets()) {
    if (entry.kind() == kind && entry.target_version() == target_version) return &entry;
  }
  return nullptr;
}

K8sDetectionPlan PlanK8sDetection(const state::FleetState& state, const CoordinatorConfig& config) {
  K8sDetectionPlan plan;
  const K8sAvailableUpgrades available = FindK8sUpgrades(state);
  plan.patch_pending = available.patch.has_value();
  for (const auto* target : {&available.patch, &available.minor}) {
    if (target->has_value() && FindDetectedTarget(state.k8s_detection(), (*target)->kind,
                                                  (*target)->target.ToString()) == nullptr) {
      plan.announce.push_back(**target);
    }
  }
  // A patch first: a minor only when no patch of the running minor is pending.
  const std::optional<K8sUpgradeTarget>& candidate =
      available.patch.has_value() ? available.patch : available.minor;
  if (!candidate.has_value()) return plan;
  auto policy = config.leases.find(tended::v1::LEASE_KIND_K8S_UPGRADE);
  const std::string target = candidate->target.ToString();
  const tended::state::v1::K8sDetectedTarget* seen =
      FindDetectedTarget(state.k8s_detection(), candidate->kind, target);
  if (policy == config.leases.end() || !policy->second.auto_start) {
    plan.not_started = "leases.k8s_upgrade.auto_start is off";
  } else if (!policy->second.enabled) {
    plan.not_started = "leases.k8s_upgrade is disabled";
  } else if (state.recovery().active()) {
    plan.not_started = "the coordinator is recovering its state";
  } else if (std::any_of(state.nodes().begin(), state.nodes().end(),
                         [](const auto& node) { return !node.second->reported_since_start(); })) {
    // Start would refuse for want of facts, and a refused target is never tried again.
    plan.not_started = "not every node has reported since the coordinator started";
  } else if (const tended::v1::K8sRollout* active = state.ActiveK8sRollout(); active != nullptr) {
    plan.not_started = absl::StrCat("rollout ", active->id(), " is running");
  } else if (seen != nullptr && (!seen->rollout_id().empty() || !seen->start_error().empty())) {
    plan.not_started =
        absl::StrCat("detection started ", target, " before (",
                     seen->rollout_id().empty() ? seen->start_error() : seen->rollout_id(),
                     "); it does not start a target twice");
  } else if (RolledOutBefore(state, target)) {
    plan.not_started = absl::StrCat("a rollout to ", target, " ran before");
  } else {
    plan.start = candidate;
  }
  return plan;
}

}  // namespace tended::coordinator
