#include "coordinator/gates.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/kube_gates.h"
#include "coordinator/window.h"
#include "re2/re2.h"

namespace tended::coordinator {
namespace {

// Reasons list at most this many names, then say how many more there are.
constexpr size_t kMaxNamesInReason = 5;

std::string JoinCapped(const std::vector<std::string>& names) {
  if (names.size() <= kMaxNamesInReason) return absl::StrJoin(names, ", ");
  std::vector<std::string> shown(names.begin(), names.begin() + kMaxNamesInReason);
  return absl::StrCat(absl::StrJoin(shown, ", "), " and ", names.size() - kMaxNamesInReason,
                      " more");
}

std::string KindName(tended::v1::LeaseKind kind) { return std::string(LeaseKindConfigName(kind)); }

std::string Plural(size_t n, const char* singular, const char* plural) {
  return absl::StrCat(n, " ", n == 1 ? singular : plural);
}

GateOutcome Pass(std::string gate, std::string reason) {
  GateOutcome outcome;
  outcome.gate = std::move(gate);
  outcome.pass = true;
  outcome.reason = std::move(reason);
  return outcome;
}

GateOutcome Block(std::string gate, std::string reason) {
  GateOutcome outcome;
  outcome.gate = std::move(gate);
  outcome.pass = false;
  outcome.reason = std::move(reason);
  return outcome;
}

std::string AlertName(const Alert& alert) {
  if (!alert.name.empty()) return alert.name;
  auto it = alert.labels.find("alertname");
  if (it != alert.labels.end() && !it->second.empty()) return it->second;
  return "(unnamed alert)";
}

bool CarriesLabels(const Alert& alert, const std::map<std::string, std::string>& wanted) {
  for (const auto& [key, value] : wanted) {
    auto it = alert.labels.find(key);
    if (it == alert.labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

GateOutcome HaltGate(const GateFacts& facts) {
  if (!facts.halted) return Pass("halt", "not halted");
  if (facts.halt_reason.empty()) {
    return Block("halt", "an operator halted the coordinator (no reason given)");
  }
  return Block("halt", absl::StrCat("an operator halted the coordinator: ", facts.halt_reason));
}

GateOutcome WindowGate(const LeasePolicy& policy, absl::Time now) {
  WindowEvaluation evaluation =
      EvaluateWindowsWithReason(policy.windows, policy.expected_duration, now);
  GateOutcome outcome = evaluation.status.open ? Pass("window", std::move(evaluation.reason))
                                               : Block("window", std::move(evaluation.reason));
  if (!outcome.pass) outcome.earliest_pass = evaluation.status.next_open;
  return outcome;
}

GateOutcome ConcurrencyGate(tended::v1::LeaseKind kind, const GateFacts& facts,
                            const CoordinatorConfig& config) {
  const std::string kind_name = KindName(kind);
  auto policy = config.leases.find(kind);
  if (policy == config.leases.end()) {
    return Block("concurrency", absl::StrCat(kind_name, " leases are not configured"));
  }
  const int limit = policy->second.concurrency;

  std::vector<std::string> same_kind;
  std::vector<std::string> other_kinds;
  for (const ActiveLeaseForGates& lease : facts.active_leases) {
    if (lease.kind == kind) {
      same_kind.push_back(lease.node);
    } else {
      const std::string other = KindName(lease.kind);
      const bool vowel = absl::StrContains("aeiou", other.front());
      other_kinds.push_back(
          absl::StrCat(vowel ? "an " : "a ", other, " lease is active on ", lease.node));
    }
  }
  std::sort(same_kind.begin(), same_kind.end());
  std::sort(other_kinds.begin(), other_kinds.end());

  std::vector<std::string> problems;
  const std::string in_use =
      absl::StrCat(same_kind.size(), " of ", limit, " ", kind_name, " leases in use");
  if (limit <= 0) {
    problems.push_back(absl::StrCat(kind_name, " concurrency is ", limit,
                                    ", so no lease of this kind can be granted"));
  } else if (static_cast<int>(same_kind.size()) >= limit) {
    problems.push_back(absl::StrCat(in_use, " (held by ", JoinCapped(same_kind), ")"));
  }
  if (!config.allow_kind_overlap && !other_kinds.empty()) {
    problems.push_back(absl::StrCat(JoinCapped(other_kinds),
                                    ", and lease kinds may not overlap (allow_kind_overlap is "
                                    "false)"));
  }
  if (!problems.empty()) return Block("concurrency", absl::StrJoin(problems, "; "));
  if (same_kind.empty()) return Pass("concurrency", in_use);
  return Pass("concurrency", absl::StrCat(in_use, " (held by ", JoinCapped(same_kind), ")"));
}

GateOutcome SoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now) {
  const NodeFactsForGates* latest = nullptr;
  for (const NodeFactsForGates& node : facts.nodes) {
    if (node.last_disruption_end == absl::InfinitePast()) continue;
    if (latest == nullptr || node.last_disruption_end > latest->last_disruption_end) {
      latest = &node;
    }
  }
  const std::string soak = FormatDurationForPeople(policy.soak);
  if (latest == nullptr) return Pass("soak", "no node has been disrupted yet");
  const absl::Time soak_end = latest->last_disruption_end + policy.soak;
  if (now < soak_end) {
    GateOutcome outcome =
        Block("soak", absl::StrCat("soaking after ", latest->name, "'s disruption ended at ",
                                   FormatUtcTime(latest->last_disruption_end), "; the ", soak,
                                   " soak period ends at ", FormatUtcTime(soak_end), " (in ",
                                   FormatDurationForPeople(soak_end - now), ")"));
    outcome.earliest_pass = soak_end;
    return outcome;
  }
  return Pass("soak", absl::StrCat("the last disruption (", latest->name, ") ended ",
                                   FormatDurationForPeople(now - latest->last_disruption_end),
                                   " ago, past the ", soak, " soak period"));
}

GateOutcome FleetHealthGate(const GateFacts& facts, const CoordinatorConfig& config,
                            absl::Time now) {
  if (facts.nodes.empty()) return Pass("fleet_health", "no nodes known");
  const absl::Duration deadline = config.fleet.report_deadline;
  const absl::Time cutoff = now - deadline;
  std::vector<const NodeFactsForGates*> silent;
  size_t checked = 0;
  for (const NodeFactsForGates& node : facts.nodes) {
    if (node.holds_lease) continue;
    ++checked;
    if (node.last_report < cutoff) silent.push_back(&node);
  }
  const size_t holders = facts.nodes.size() - checked;
  if (checked == 0) return Pass("fleet_health", "every known node holds a lease; none to check");
  if (silent.empty()) {
    std::string reason =
        absl::StrCat(checked == facts.nodes.size() ? "all " : "", Plural(checked, "node", "nodes"),
                     " reported within ", FormatDurationForPeople(deadline));
    if (holders > 0) {
      absl::StrAppend(&reason, " (", Plural(holders, "lease holder", "lease holders"),
                      " not counted)");
    }
    return Pass("fleet_health", std::move(reason));
  }
  std::sort(
      silent.begin(), silent.end(),
      [](const NodeFactsForGates* a, const NodeFactsForGates* b) { return a->name < b->name; });
  std::vector<std::string> names;
  names.reserve(silent.size());
  for (const NodeFactsForGates* node : silent) {
    if (node->last_report == absl::InfinitePast()) {
      names.push_back(absl::StrCat(node->name, " (never reported)"));
    } else {
      names.push_back(absl::StrCat(node->name, " (silent for ",
                                   FormatDurationForPeople(now - node->last_report), ")"));
    }
  }
  return Block(
      "fleet_health",
      absl::StrCat(Plural(silent.size(), "node has", "nodes have"), " not reported within ",
                   FormatDurationForPeople(deadline), ": ", JoinCapped(names)));
}

GateOutcome AlertsGate(const GateFacts& facts, const CoordinatorConfig& config, absl::Time now) {
  const AlertsConfig& alerts = config.alerts;
  if (alerts.prometheus_url.empty()) return Pass("alerts", "alerts gate not configured");
  if (!facts.alerts.has_value()) {
    return Block("alerts", absl::StrCat("no alerts have been read from ", alerts.prometheus_url,
                                        " yet; blocking until they are"));
  }
  const AlertSnapshot& snapshot = *facts.alerts;
  if (!snapshot.status.ok()) {
    return Block("alerts",
                 absl::StrCat("cannot read alerts from ", alerts.prometheus_url, " (",
                              snapshot.status.ToString(), "); blocking until it answers"));
  }
  if (now - snapshot.fetched_at > alerts.max_age) {
    return Block(
        "alerts",
        absl::StrCat("alerts were last read ", FormatDurationForPeople(now - snapshot.fetched_at),
                     " ago (more than max_age ", FormatDurationForPeople(alerts.max_age), ") from ",
                     alerts.prometheus_url, "; blocking until it answers"));
  }

  std::shared_ptr<const re2::RE2> ignore = alerts.ignore_regex;
  if (ignore == nullptr && !alerts.ignore_regex_text.empty()) {
    absl::StatusOr<std::shared_ptr<const re2::RE2>> compiled =
        CompileIgnoreRegex(alerts.ignore_regex_text);
    if (!compiled.ok()) {
      return Block("alerts",
                   absl::StrCat("alerts.ignore is invalid: ", compiled.status().message()));
    }
    ignore = *std::move(compiled);
  }

  std::set<std::string> blocking;
  size_t ignored = 0;
  for (const Alert& alert : snapshot.alerts) {
    const std::string name = AlertName(alert);
    if (ignore != nullptr && re2::RE2::PartialMatch(name, *ignore)) {
      ++ignored;
      continue;
    }
    if (alerts.firing_only && alert.state != "firing") {
      ++ignored;
      continue;
    }
    if (!CarriesLabels(alert, alerts.match_labels)) {
      ++ignored;
      continue;
    }
    blocking.insert(name);
  }
  if (blocking.empty()) {
    if (ignored == 0) return Pass("alerts", "no alerts firing");
    return Pass("alerts", absl::StrCat("no blocking alerts (", Plural(ignored, "alert", "alerts"),
                                       " ignored)"));
  }
  const std::vector<std::string> names(blocking.begin(), blocking.end());
  return Block("alerts", absl::StrCat(Plural(names.size(), "alert blocks", "alerts block"),
                                      " disruption: ", JoinCapped(names)));
}

std::vector<GateOutcome> EvaluateGates(tended::v1::LeaseKind kind, const GateFacts& facts,
                                       const CoordinatorConfig& config, absl::Time now) {
  auto policy = config.leases.find(kind);
  if (policy == config.leases.end()) {
    return {Block("policy",
                  absl::StrCat(KindName(kind), " leases are not configured, so none are granted"))};
  }
  if (!policy->second.enabled) {
    return {
        Block("policy", absl::StrCat(KindName(kind), " leases are disabled in the configuration"))};
  }
  std::vector<GateOutcome> outcomes = {HaltGate(facts),
                                       WindowGate(policy->second, now),
                                       ConcurrencyGate(kind, facts, config),
                                       SoakGate(policy->second, facts, now),
                                       FleetHealthGate(facts, config, now),
                                       AlertsGate(facts, config, now)};
  AppendKubernetesGates(policy->second, facts, config, now, outcomes);
  return outcomes;
}

bool AllPass(const std::vector<GateOutcome>& outcomes) {
  // No outcomes means nothing was checked: fail closed.
  if (outcomes.empty()) return false;
  return std::all_of(outcomes.begin(), outcomes.end(),
                     [](const GateOutcome& outcome) { return outcome.pass; });
}

}  // namespace tended::coordinator
