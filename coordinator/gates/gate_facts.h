// What the gates read: a snapshot the coordinator assembles under its lock from its state,
// the cached Prometheus answer and the cached Kubernetes facts. Summaries rather than
// per-node copies, so that a decision stays cheap with ten thousand nodes.
#ifndef TENDED_COORDINATOR_GATES_GATE_FACTS_H_
#define TENDED_COORDINATOR_GATES_GATE_FACTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/gates/kube_gate_facts.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

struct SilentNode {
  std::string name;
  // InfinitePast: it has not reported since the coordinator started.
  absl::Time last_report = absl::InfinitePast();
};

struct FleetHealthFacts {
  size_t known = 0;
  // Known nodes that hold a lease: counted by the concurrency gate, not here.
  size_t holders = 0;
  // Nodes that hold no lease and have not reported within the deadline (or not since the
  // coordinator started).
  std::vector<SilentNode> silent;
};

struct ActiveLeaseForGates {
  std::string node;
  tended::v1::LeaseKind kind = tended::v1::LEASE_KIND_UNSPECIFIED;
};

struct GateFacts {
  bool halted = false;
  std::string halt_reason;
  // Not OK once the state ledger failed; set while recovery after an empty start blocks
  // every grant (what it still waits for).
  absl::Status state_health;
  std::optional<std::string> recovery_wait;
  FleetHealthFacts fleet;
  // The node whose disruption ended last, and when (InfinitePast: none yet).
  std::string last_disruption_node;
  absl::Time last_disruption_end = absl::InfinitePast();
  std::vector<ActiveLeaseForGates> active_leases;
  // Absent when no alert source is configured.
  std::optional<AlertSnapshot> alerts;
  // Absent when Kubernetes is not enabled.
  std::optional<KubeGateFacts> kube;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_GATE_FACTS_H_
