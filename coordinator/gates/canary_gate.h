// The canary-first OS upgrade rollout's gate for OS_UPGRADE leases, as pure functions of
// what the coordinator knows. While the configured canary has upgrades available or is
// upgrading, only it may be granted. Another node may go once every upgrade it plans
// (package at that version) was installed by the canary in an upgrade the coordinator
// verified, and canary_soak has passed since. A failed or unhealthy canary (or any node's
// failed OS upgrade) stops the rollout, persisted, until an operator's ResumeRollout. The
// lease kind's lifecycle (leases/os_upgrade_lifecycle.h) vets the exact set a node names
// when its dpkg step begins with UnvettedPackages().
#ifndef TENDED_COORDINATOR_GATES_CANARY_GATE_H_
#define TENDED_COORDINATOR_GATES_CANARY_GATE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/gates/gate.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

struct RolloutNode {
  absl::Time last_report = absl::InfinitePast();
  tended::v1::OsUpgradeFacts os;
  // Holds an OS_UPGRADE lease (any phase).
  bool upgrading = false;
};

struct OsRolloutFacts {
  // Empty: no canary configured.
  std::string canary;
  absl::Duration canary_soak;
  absl::Duration report_deadline;
  tended::state::v1::OsRolloutState state;
  // At least the canary and every node the gate is asked about; a node missing here is
  // treated as unknown.
  std::map<std::string, RolloutNode> nodes;
};

// Whether `node` may be granted an OS_UPGRADE lease as far as the rollout is concerned.
GateOutcome CanaryGateForNode(const OsRolloutFacts& facts, const std::string& node,
                              absl::Time now);

// The gate for the kind: passes when one of the waiting nodes (oldest first) may go, and
// names it in `first_eligible`; blocks with the first waiting node's reason otherwise.
GateOutcome CanaryGate(const OsRolloutFacts& facts, const std::vector<std::string>& waiting,
                       absl::Time now, std::string* first_eligible);


// The named packages the canary has not installed in a verified upgrade (as "name version"),
// plus the latest vetting time among those it has. Empty when no canary is configured.
struct VettingResult {
  std::vector<std::string> unvetted;
  absl::Time latest_vetted = absl::InfinitePast();
};
VettingResult CheckVetted(const tended::state::v1::OsRolloutState& rollout,
                          const std::vector<tended::v1::PackageVersion>& packages);

// Records `packages` as vetted at `now` in `state` (replacing older entries for the same
// package and version), keeping at most `limit` entries, newest last.
void AddVettedPackages(const std::vector<tended::v1::PackageChange>& packages, absl::Time now,
                       size_t limit, tended::state::v1::OsRolloutState* state);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_CANARY_GATE_H_
