// Names of the typed Kubernetes upgrade steps, as they appear in leases, journals, events and
// metrics ("etcd_snapshot", "kubeadm_apply", ...).
#ifndef TENDED_COMMON_K8S_STEPS_H_
#define TENDED_COMMON_K8S_STEPS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended {

std::string K8sStepName(tended::v1::K8sStepKind kind);
std::optional<tended::v1::K8sStepKind> K8sStepFromName(absl::string_view name);
// Whether the step disturbs workloads on the node (the lease must have drained it first).
bool K8sStepNeedsDrain(tended::v1::K8sStepKind kind);

}  // namespace tended

#endif  // TENDED_COMMON_K8S_STEPS_H_
