#include "common/k8s_steps.h"

#include <array>
#include <utility>

namespace tended {
namespace {

using tended::v1::K8sStepKind;

constexpr std::array<std::pair<K8sStepKind, absl::string_view>, 9> kNames = {{
    {tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT, "etcd_snapshot"},
    {tended::v1::K8S_STEP_KIND_CONTAINERD_FIX, "containerd_fix"},
    {tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH, "apt_source_switch"},
    {tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE, "kubeadm_package"},
    {tended::v1::K8S_STEP_KIND_KUBEADM_PLAN, "kubeadm_plan"},
    {tended::v1::K8S_STEP_KIND_KUBEADM_APPLY, "kubeadm_apply"},
    {tended::v1::K8S_STEP_KIND_KUBEADM_NODE, "kubeadm_node"},
    {tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES, "kubelet_packages"},
    {tended::v1::K8S_STEP_KIND_KUBELET_RESTART, "kubelet_restart"},
}};

}  // namespace

std::string K8sStepName(K8sStepKind kind) {
  for (const auto& [k, name] : kNames) {
    if (k == kind) return std::string(name);
  }
  return "unknown";
}

std::optional<K8sStepKind> K8sStepFromName(absl::string_view name) {
  for (const auto& [k, n] : kNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

bool K8sStepNeedsDrain(K8sStepKind kind) {
  return kind == tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES ||
         kind == tended::v1::K8S_STEP_KIND_KUBELET_RESTART;
}

}  // namespace tended
