// Helpers the drain flow's two files share (drain_flow.cc: the way in, cordon and drain;
// drain_flow_back.cc: the way back, verify, uncordon, undo). Not for other code.
#ifndef TENDED_COORDINATOR_LEASES_DRAIN_FLOW_INTERNAL_H_
#define TENDED_COORDINATOR_LEASES_DRAIN_FLOW_INTERNAL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/config/kubernetes_config.h"
#include "coordinator/kube/drainer.h"
#include "tended/state/v1/state.pb.h"

namespace tended::coordinator::drain_flow_internal {

using tended::state::v1::NodeDisruption;

inline absl::string_view StepName(NodeDisruption::Step step) {
  switch (step) {
    case NodeDisruption::STEP_PENDING:
      return "waiting to cordon";
    case NodeDisruption::STEP_CORDONING:
      return "cordoning";
    case NodeDisruption::STEP_DRAINING:
      return "draining";
    case NodeDisruption::STEP_DRAINED:
      return "drained";
    case NodeDisruption::STEP_UNCORDONED:
      return "uncordoned";
    case NodeDisruption::STEP_UNDOING:
      return "undoing the drain";
    default:
      return "unknown";
  }
}

// Whether undoing must uncordon: our own cordon, or one we may have applied before a
// restart (the node was schedulable when we looked).
inline bool MustUncordon(const NodeDisruption& record) {
  if (record.cordoned_by_us()) return true;
  return record.step() == NodeDisruption::STEP_CORDONING && !record.was_cordoned_before();
}

// A failure that is worth trying again before the preparation deadline.
inline bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsAborted(status) ||
         absl::IsUnauthenticated(status) || absl::IsInternal(status);
}

inline kube::DrainOptions DrainOptionsFor(const KubernetesConfig& config) {
  kube::DrainOptions options;
  options.timeout = config.drain.timeout;
  options.grace_period = config.drain.grace_period;
  options.delete_emptydir_data = config.drain.delete_emptydir_data;
  options.force_unmanaged = config.drain.force_unmanaged;
  options.skip_wait_for_delete_timeout = config.drain.skip_wait_for_delete_timeout;
  options.blocking_pod_selectors = config.blocking_pod_selectors;
  return options;
}

}  // namespace tended::coordinator::drain_flow_internal

#endif  // TENDED_COORDINATOR_LEASES_DRAIN_FLOW_INTERNAL_H_
