// What every gate returns, and the helpers every gate uses to say it: a gate passes, or
// blocks with a reason a person can act on and, when it can be known, the earliest time it
// could pass (the coordinator wakes then instead of polling).
#ifndef TENDED_COORDINATOR_GATES_GATE_H_
#define TENDED_COORDINATOR_GATES_GATE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

struct GateOutcome {
  // "halt", "window", "concurrency", "soak", "fleet_health", "alerts", "state", ...
  std::string gate;
  bool pass = false;
  std::string reason;
  std::optional<absl::Time> earliest_pass;
};

GateOutcome PassGate(std::string gate, std::string reason);
GateOutcome BlockGate(std::string gate, std::string reason,
                      std::optional<absl::Time> earliest_pass = std::nullopt);

// True when there is at least one outcome and every one passes (nothing checked fails
// closed).
bool AllPass(const std::vector<GateOutcome>& outcomes);
// The earliest time a blocking outcome says it could pass; InfiniteFuture when none says.
absl::Time EarliestPass(const std::vector<GateOutcome>& outcomes);
// The blocking outcomes as "gate: reason; gate: reason".
std::string DescribeBlocking(const std::vector<GateOutcome>& outcomes);

// The wire form (ExplainGates, AcquireLease).
tended::v1::GateResult ToProto(const GateOutcome& outcome);

// Reasons name at most this many things, then say how many more there are.
inline constexpr size_t kMaxNamesInReason = 5;
// Each name (an alert's, a node's, a pod's) is clipped to this many bytes in a reason.
inline constexpr size_t kMaxNameBytesInReason = 200;
// "a, b, c, d, e and 3 more".
std::string JoinCapped(const std::vector<std::string>& names);
// "1 node", "2 nodes".
std::string Plural(size_t n, const char* singular, const char* plural);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_GATE_H_
