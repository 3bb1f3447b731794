// The fleet-wide gates: each a pure function of (facts, config, now) that passes, or blocks
// with a reason and, where it can be known, the earliest time it could pass. The window
// gate is in window.h, the Kubernetes gates in kube_gates.h, the per-node gates in
// node_gates.h; evaluate.h puts them together for a lease kind.
#ifndef TENDED_COORDINATOR_GATES_CORE_GATES_H_
#define TENDED_COORDINATOR_GATES_CORE_GATES_H_

#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate.h"
#include "coordinator/gates/gate_facts.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

GateOutcome HaltGate(const GateFacts& facts);
// The state ledger is healthy and no recovery after an empty start blocks.
GateOutcome StateGate(const GateFacts& facts);
GateOutcome ConcurrencyGate(tended::v1::LeaseKind kind, const GateFacts& facts,
                            const CoordinatorConfig& config);
GateOutcome SoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now);
GateOutcome FleetHealthGate(const GateFacts& facts, const CoordinatorConfig& config,
                            absl::Time now);
// Blocks on any alert that fires (or is pending, without firing_only) and is not ignored,
// on a snapshot that failed, is missing, or is older than alerts.max_age at `now`.
GateOutcome AlertsGate(const GateFacts& facts, const CoordinatorConfig& config, absl::Time now);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_CORE_GATES_H_
