#include "coordinator/gates/node_gates.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {

std::vector<GateOutcome> BlockingNodeGates(const NodeGateFacts& facts, absl::Time now) {
  std::vector<GateOutcome> blocking;
  if (!facts.conflict.empty()) {
    blocking.push_back(BlockGate(
        "identity", absl::StrCat("two agents report as ", facts.node, ": ", facts.conflict,
                                 "; nothing is granted to it until one of them goes away")));
  }
  if (now < facts.backoff_until) {
    blocking.push_back(BlockGate(
        "backoff",
        absl::StrCat(facts.node, " gave back ", Plural(facts.consecutive_returns, "lease", "leases"),
                     " in a row without a disruption; it waits until ",
                     FormatUtcTime(facts.backoff_until), " (in ",
                     FormatDurationForPeople(facts.backoff_until - now), ")"),
        facts.backoff_until));
  }
  if (facts.blocking_pods.has_value() && !facts.blocking_pods->empty()) {
    blocking.push_back(BlockGate(
        "blocking_pods",
        absl::StrCat(Plural(facts.blocking_pods->size(), "pod matching", "pods matching"),
                     " a blocking-pod selector ", facts.blocking_pods->size() == 1 ? "runs" : "run",
                     " on ", facts.node, ": ", JoinCapped(*facts.blocking_pods))));
  }
  return blocking;
}

GateOutcome WaitingNodeGate(const std::vector<WaitingNodeVerdict>& verdicts) {
  if (verdicts.empty()) return PassGate("waiting_node", "no node waits");
  std::vector<std::string> reasons;
  std::optional<absl::Time> earliest;
  for (const WaitingNodeVerdict& verdict : verdicts) {
    if (verdict.blocking.empty()) {
      return PassGate("waiting_node",
                      absl::StrCat(verdict.node, " may go (the oldest request that may)"));
    }
    std::vector<std::string> why;
    for (const GateOutcome& outcome : verdict.blocking) {
      why.push_back(absl::StrCat(outcome.gate, ": ", outcome.reason));
      if (outcome.earliest_pass.has_value()) {
        earliest = earliest.has_value() ? std::min(*earliest, *outcome.earliest_pass)
                                        : *outcome.earliest_pass;
      }
    }
    if (reasons.size() < kMaxNamesInReason) {
      reasons.push_back(absl::StrCat(verdict.node, " (", absl::StrJoin(why, "; "), ")"));
    }
  }
  std::string text =
      verdicts.size() == 1
          ? absl::StrCat("the waiting node may not go yet: ", reasons.front())
          : absl::StrCat("none of the ", verdicts.size(), " waiting nodes may go yet: ",
                         absl::StrJoin(reasons, ", "));
  if (verdicts.size() > kMaxNamesInReason) {
    absl::StrAppend(&text, " and ", verdicts.size() - kMaxNamesInReason, " more");
  }
  return BlockGate("waiting_node", std::move(text), earliest);
}

}  // namespace tended::coordinator
