#include "coordinator/gates/gate.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "common/utf8.h"

namespace tended::coordinator {

GateOutcome PassGate(std::string gate, std::string reason) {
  GateOutcome outcome;
  outcome.gate = std::move(gate);
  outcome.pass = true;
  outcome.reason = std::move(reason);
  return outcome;
}

GateOutcome BlockGate(std::string gate, std::string reason,
                      std::optional<absl::Time> earliest_pass) {
  GateOutcome outcome;
  outcome.gate = std::move(gate);
  outcome.pass = false;
  outcome.reason = std::move(reason);
  outcome.earliest_pass = earliest_pass;
  return outcome;
}

bool AllPass(const std::vector<GateOutcome>& outcomes) {
  if (outcomes.empty()) return false;
  return std::all_of(outcomes.begin(), outcomes.end(),
                     [](const GateOutcome& outcome) { return outcome.pass; });
}

absl::Time EarliestPass(const std::vector<GateOutcome>& outcomes) {
  absl::Time earliest = absl::InfiniteFuture();
  for (const GateOutcome& outcome : outcomes) {
    if (!outcome.pass && outcome.earliest_pass.has_value()) {
      earliest = std::min(earliest, *outcome.earliest_pass);
    }
  }
  return earliest;
}

std::string DescribeBlocking(const std::vector<GateOutcome>& outcomes) {
  std::vector<std::string> parts;
  for (const GateOutcome& outcome : outcomes) {
    if (!outcome.pass) parts.push_back(absl::StrCat(outcome.gate, ": ", outcome.reason));
  }
  return absl::StrJoin(parts, "; ");
}

tended::v1::GateResult ToProto(const GateOutcome& outcome) {
  tended::v1::GateResult result;
  result.set_gate(outcome.gate);
  result.set_verdict(outcome.pass ? tended::v1::GATE_VERDICT_PASS : tended::v1::GATE_VERDICT_BLOCK);
  result.set_reason(outcome.reason);
  if (outcome.earliest_pass.has_value()) {
    *result.mutable_earliest_pass_time() = ToProtoTimestamp(*outcome.earliest_pass);
  }
  return result;
}

std::string JoinCapped(const std::vector<std::string>& names) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < names.size() && i < kMaxNamesInReason; ++i) {
    shown.push_back(ClipUtf8(names[i], kMaxNameBytesInReason));
  }
  if (names.size() <= kMaxNamesInReason) return absl::StrJoin(shown, ", ");
  return absl::StrCat(absl::StrJoin(shown, ", "), " and ", names.size() - kMaxNamesInReason,
                      " more");
}

std::string Plural(size_t n, const char* singular, const char* plural) {
  return absl::StrCat(n, " ", n == 1 ? singular : plural);
}

}  // namespace tended::coordinator
