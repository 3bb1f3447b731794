// The gates of one waiting node, after the fleet-wide gates passed: no second agent reports
// under its name ("identity"), it is not backing off after a returned lease ("backoff"),
// and no pod matching a blocking selector runs on it ("blocking_pods"). The granter takes
// the oldest waiting node whose node gates (and, for OS upgrades, the canary gate) pass;
// "waiting_node" sums that up for ExplainGates and AcquireLease. Pure functions.
#ifndef TENDED_COORDINATOR_GATES_NODE_GATES_H_
#define TENDED_COORDINATOR_GATES_NODE_GATES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/gates/gate.h"

namespace tended::coordinator {

struct NodeGateFacts {
  std::string node;
  // Why two agents are taken to report for the node; empty when one does.
  std::string conflict;
  absl::Time backoff_until = absl::InfinitePast();
  uint32_t consecutive_returns = 0;
  // Pods matching a blocking selector on the node ("ns/name"); nullopt when no selector is
  // configured (or Kubernetes is off).
  std::optional<std::vector<std::string>> blocking_pods;
};

// The node's gates that block, in a fixed order; empty when it may go.
std::vector<GateOutcome> BlockingNodeGates(const NodeGateFacts& facts, absl::Time now);

struct WaitingNodeVerdict {
  std::string node;
  // Empty when the node may go.
  std::vector<GateOutcome> blocking;
};

// "waiting_node": passes naming the first node that may go, or blocks with why none of the
// waiting nodes may (the earliest time one could, when known). Passes when nobody waits.
GateOutcome WaitingNodeGate(const std::vector<WaitingNodeVerdict>& verdicts);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_NODE_GATES_H_
