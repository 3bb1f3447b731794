#include "coordinator/gates/core_gates.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/gates/kube_gates.h"
#include "coordinator/gates/window.h"
#include "re2/re2.h"

namespace tended::coordinator {
namespace {

std::string KindName(tended::v1::LeaseKind kind) { return std::string(LeaseKindConfigName(kind)); }

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
  if (!facts.halted) return PassGate("halt", "not halted");
  if (facts.halt_reason.empty()) {
    return BlockGate("halt", "an operator halted the coordinator (no reason given)");
  }
  return BlockGate("halt", absl::StrCat("an operator halted the coordinator: ", facts.halt_reason));
}

GateOutcome ConcurrencyGate(tended::v1::LeaseKind kind, const GateFacts& facts,
                            const CoordinatorConfig& config) {
  const std::string kind_name = KindName(kind);
  auto policy = config.leases.find(kind);
  if (policy == config.leases.end()) {
    return BlockGate("concurrency", absl::StrCat(kind_name, " leases are not configured"));
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
  if (!problems.empty()) return BlockGate("concurrency", absl::StrJoin(problems, "; "));
  if (same_kind.empty()) return PassGate("concurrency", in_use);
  return PassGate("concurrency", absl::StrCat(in_use, " (held by ", JoinCapped(same_kind), ")"));
}

GateOutcome SoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now) {
  const std::string soak = FormatDurationForPeople(policy.soak);
  if (facts.last_disruption_end == absl::InfinitePast()) {
    return PassGate("soak", "no node has been disrupted yet");
  }
  const absl::Time soak_end = facts.last_disruption_end + policy.soak;
  if (now < soak_end) {
    return BlockGate(
        "soak",
        absl::StrCat("soaking after ", facts.last_disruption_node, "'s disruption ended at ",
                     FormatUtcTime(facts.last_disruption_end), "; the ", soak,
                     " soak period ends at ", FormatUtcTime(soak_end), " (in ",
                     FormatDurationForPeople(soak_end - now), ")"),
        soak_end);
  }
  return PassGate("soak", absl::StrCat("the last disruption (", facts.last_disruption_node,
                                       ") ended ",
                                       FormatDurationForPeople(now - facts.last_disruption_end),
                                       " ago, past the ", soak, " soak period"));
}

GateOutcome FleetHealthGate(const GateFacts& facts, const CoordinatorConfig& config,
                            absl::Time now) {
  const FleetHealthFacts& fleet = facts.fleet;
  if (fleet.known == 0) return PassGate("fleet_health", "no nodes known");
  const absl::Duration deadline = config.fleet.report_deadline;
  const size_t checked = fleet.known - fleet.holders;
  if (checked == 0) return PassGate("fleet_health", "every known node holds a lease; none to check");
  if (fleet.silent.empty()) {
    std::string reason = absl::StrCat(checked == fleet.known ? "all " : "",
                                      Plural(checked, "node", "nodes"), " reported within ",
                                      FormatDurationForPeople(deadline));
    if (fleet.holders > 0) {
      absl::StrAppend(&reason, " (", Plural(fleet.holders, "lease holder", "lease holders"),
                      " not counted)");
    }
    return PassGate("fleet_health", std::move(reason));
  }
  std::vector<SilentNode> silent = fleet.silent;
  std::sort(silent.begin(), silent.end(),
            [](const SilentNode& a, const SilentNode& b) { return a.name < b.name; });
  std::vector<std::string> names;
  for (size_t i = 0; i < silent.size() && i < kMaxNamesInReason; ++i) {
    const SilentNode& node = silent[i];
    if (node.last_report == absl::InfinitePast()) {
      names.push_back(absl::StrCat(node.name, " (not since the coordinator started)"));
    } else {
      names.push_back(absl::StrCat(node.name, " (silent for ",
                                   FormatDurationForPeople(now - node.last_report), ")"));
    }
  }
  std::string listed = absl::StrJoin(names, ", ");
  if (silent.size() > kMaxNamesInReason) {
    absl::StrAppend(&listed, " and ", silent.size() - kMaxNamesInReason, " more");
  }
  return BlockGate("fleet_health",
                   absl::StrCat(Plural(silent.size(), "node has", "nodes have"),
                                " not reported within ", FormatDurationForPeople(deadline), ": ",
                                listed));
}

GateOutcome AlertsGate(const GateFacts& facts, const CoordinatorConfig& config, absl::Time now) {
  const AlertsConfig& alerts = config.alerts;
  if (alerts.prometheus_url.empty()) return PassGate("alerts", "alerts gate not configured");
  if (!facts.alerts.has_value()) {
    return BlockGate("alerts", absl::StrCat("no alerts have been read from ", alerts.prometheus_url,
                                            " yet; blocking until they are"));
  }
  const AlertSnapshot& snapshot = *facts.alerts;
  if (!snapshot.status.ok()) {
    return BlockGate("alerts",
                     absl::StrCat("cannot read alerts from ", alerts.prometheus_url, " (",
                                  snapshot.status.ToString(), "); blocking until it answers"));
  }
  if (now - snapshot.fetched_at > alerts.max_age) {
    return BlockGate(
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
      return BlockGate("alerts",
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
    if (ignored == 0) return PassGate("alerts", "no alerts firing");
    return PassGate("alerts", absl::StrCat("no blocking alerts (", Plural(ignored, "alert", "alerts"),
                                       " ignored)"));
  }
  const std::vector<std::string> names(blocking.begin(), blocking.end());
  return BlockGate("alerts", absl::StrCat(Plural(names.size(), "alert blocks", "alerts block"),
                                      " disruption: ", JoinCapped(names)));
}

GateOutcome StateGate(const GateFacts& facts) {
  if (!facts.state_health.ok()) {
    return BlockGate("state", absl::StrCat("the coordinator's state cannot be written (",
                                           facts.state_health.message(),
                                           "); it must restart from what is on disk"));
  }
  if (facts.recovery_wait.has_value()) return BlockGate("state", *facts.recovery_wait);
  return PassGate("state", "the state is durable and complete");
}

}  // namespace tended::coordinator
