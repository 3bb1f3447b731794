// The gates: each a pure function of (facts, config, now) that passes, or blocks with a
// reason and, where it can be known, the earliest time it could pass. A lease is granted
// only when every gate for its kind passes; ExplainGates shows all of them.
#ifndef TENDED_COORDINATOR_GATES_H_
#define TENDED_COORDINATOR_GATES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/alert_source.h"
#include "coordinator/config.h"
#include "coordinator/kube_gate_facts.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

struct GateOutcome {
  std::string gate;  // "halt", "window", "concurrency", "soak", "fleet_health", "alerts"
  bool pass = false;
  std::string reason;
  std::optional<absl::Time> earliest_pass;
};

struct NodeFactsForGates {
  std::string name;
  absl::Time last_report = absl::InfinitePast();
  // When its last disruption ended (lease released after verification).
  absl::Time last_disruption_end = absl::InfinitePast();
  // Holds any lease: counted by the concurrency gate, not by fleet health.
  bool holds_lease = false;
};

struct ActiveLeaseForGates {
  std::string node;
  tended::v1::LeaseKind kind = tended::v1::LEASE_KIND_UNSPECIFIED;
};

struct GateFacts {
  bool halted = false;
  std::string halt_reason;
  std::vector<NodeFactsForGates> nodes;
  std::vector<ActiveLeaseForGates> active_leases;
  // Absent when no alert source is configured.
  std::optional<AlertSnapshot> alerts;
  // Absent when Kubernetes is not enabled (kube_gates.h).
  std::optional<KubeGateFacts> kube;
};

// When a set of maintenance windows next admits a step of `expected_duration`.
struct WindowStatus {
  bool open = false;
  // Set when open: the end of the window now in force.
  std::optional<absl::Time> closes_at;
  // Set when closed: the earliest time a step of the expected length could start.
  std::optional<absl::Time> next_open;
  std::string description;  // "Mon-Fri 02:00-06:00 Europe/London"
};

// Empty `windows` means always open. A window crossing midnight belongs to the weekday it
// opens on. Local times that a DST change skips or repeats are resolved so the window
// never opens earlier or closes later than its civil times say.
WindowStatus EvaluateWindows(const std::vector<MaintenanceWindow>& windows,
                             absl::Duration expected_duration, absl::Time now);

GateOutcome HaltGate(const GateFacts& facts);
GateOutcome WindowGate(const LeasePolicy& policy, absl::Time now);
GateOutcome ConcurrencyGate(tended::v1::LeaseKind kind, const GateFacts& facts,
                            const CoordinatorConfig& config);
GateOutcome SoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now);
GateOutcome FleetHealthGate(const GateFacts& facts, const CoordinatorConfig& config,
                            absl::Time now);
// Blocks on any alert that fires (or is pending, without firing_only) and is not ignored,
// on a snapshot that failed, is missing, or is older than alerts.max_age at `now`.
GateOutcome AlertsGate(const GateFacts& facts, const CoordinatorConfig& config, absl::Time now);

// Every gate for `kind`, in a fixed order: halt, window, concurrency, soak, fleet_health,
// alerts. A disabled or unconfigured kind yields one blocking "policy" outcome.
std::vector<GateOutcome> EvaluateGates(tended::v1::LeaseKind kind, const GateFacts& facts,
                                       const CoordinatorConfig& config, absl::Time now);

bool AllPass(const std::vector<GateOutcome>& outcomes);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_H_
