// The gates for one lease kind, put together in one place: the fleet-wide set evaluated
// once per decision (the granter, AcquireLease's answer and ExplainGates all use it), and
// the set re-checked right before each disruptive act under a lease already granted.
#ifndef TENDED_COORDINATOR_GATES_EVALUATE_H_
#define TENDED_COORDINATOR_GATES_EVALUATE_H_

#include <vector>

#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate.h"
#include "coordinator/gates/gate_facts.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

// In a fixed order: state, halt, window, concurrency, soak, fleet_health, alerts, then the
// Kubernetes gates when enabled. A kind that is not configured or is disabled yields one
// blocking "policy" outcome.
std::vector<GateOutcome> EvaluateFleetGates(tended::v1::LeaseKind kind, const GateFacts& facts,
                                            const CoordinatorConfig& config, absl::Time now);

// Before a disruptive act under a granted lease: state, halt, window (the act's expected
// length must still fit), alerts, fleet_health. Concurrency and soak were settled by the
// grant, which already counts this lease.
std::vector<GateOutcome> RecheckBeforeAct(tended::v1::LeaseKind kind, const GateFacts& facts,
                                          const CoordinatorConfig& config, absl::Time now);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_EVALUATE_H_
