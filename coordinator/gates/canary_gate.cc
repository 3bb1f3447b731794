#include "coordinator/gates/canary_gate.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;

constexpr char kGate[] = "canary";
// Packages named in a reason before "and N more".
constexpr size_t kNamesInReason = 5;

GateOutcome Outcome(bool pass, std::string reason,
                    std::optional<absl::Time> earliest = std::nullopt) {
  return pass ? PassGate(kGate, std::move(reason)) : BlockGate(kGate, std::move(reason), earliest);
}

std::string StopReason(const tended::v1::RolloutStop& stop) {
  return absl::StrCat("the OS rollout stopped at ", FormatUtcTime(FromProtoTimestamp(stop.since())),
                      ": ", stop.reason(),
                      "; once fixed, an operator resumes it (OperatorService.ResumeRollout, "
                      "tendedctl resume-rollout)");
}

std::string Capped(const std::vector<std::string>& items) {
  if (items.size() <= kNamesInReason) return absl::StrJoin(items, ", ");
  return absl::StrCat(
      absl::StrJoin(std::vector<std::string>(items.begin(), items.begin() + kNamesInReason), ", "),
      " and ", items.size() - kNamesInReason, " more");
}


}  // namespace

GateOutcome CanaryGateForNode(const OsRolloutFacts& facts, const std::string& node,
                              absl::Time now) {
  if (facts.canary.empty()) return Outcome(true, "no canary configured for os_upgrade");
  if (facts.state.stop().stopped()) return Outcome(false, StopReason(facts.state.stop()));
  const std::string& canary = facts.canary;
  if (node == canary) return Outcome(true, absl::StrCat(node, " is the canary: it goes first"));

  auto found = facts.nodes.find(canary);
  if (found == facts.nodes.end()) {
    return Outcome(false, absl::StrCat("the canary ", canary,
                                       " has not reported yet; the other nodes upgrade after it"));
  }
  const RolloutNode& canary_node = found->second;
  if (canary_node.last_report == absl::InfinitePast()) {
    return Outcome(false, absl::StrCat("the canary ", canary,
                                       " has not reported since the coordinator started; the "
                                       "other nodes wait for it"));
  }
  if (now - canary_node.last_report > facts.report_deadline) {
    return Outcome(false, absl::StrCat("the canary ", canary, " has not reported for ",
                                       FormatDurationForPeople(now - canary_node.last_report),
                                       "; the other nodes wait for it"));
  }
  if (canary_node.upgrading) {
    return Outcome(false, absl::StrCat("the canary ", canary,
                                       " is upgrading; the others wait until it succeeded, was "
                                       "verified and soaked ",
                                       FormatDurationForPeople(facts.canary_soak)));
  }
  if (canary_node.os.upgrades_available() > 0) {
    return Outcome(false, absl::StrCat("the canary ", canary, " has ",
                                       canary_node.os.upgrades_available(),
                                       " upgrades available and goes first"));
  }

  auto self = facts.nodes.find(node);
  if (self == facts.nodes.end()) return Outcome(false, absl::StrCat(node, " is not known"));
  const tended::v1::OsUpgradeFacts& plan = self->second.os;
  if (plan.planned_truncated()) {
    return Outcome(false, absl::StrCat(node, " plans ", plan.upgrades_available(),
                                       " upgrades, more than it can list; the canary cannot vouch "
                                       "for a list it cannot see"));
  }
  const std::vector<tended::v1::PackageVersion> planned(plan.planned_upgrades().begin(),
                                                        plan.planned_upgrades().end());
  VettingResult vetting = CheckVetted(facts.state, planned);
  const std::vector<std::string>& unvetted = vetting.unvetted;
  const absl::Time latest = vetting.latest_vetted;
  if (!unvetted.empty()) {
    return Outcome(false, absl::StrCat(node, " plans ", unvetted.size(),
                                       " upgrades the canary ", canary,
                                       " has not installed and verified: ", Capped(unvetted)));
  }
  if (latest == absl::InfinitePast()) {
    return Outcome(true, absl::StrCat("the canary ", canary, " is up to date; ", node,
                                      " plans nothing it has not vetted"));
  }
  const absl::Time soak_end = latest + facts.canary_soak;
  if (now < soak_end) {
    return Outcome(false,
                   absl::StrCat("the canary ", canary, " installed ", node, "'s ",
                                plan.planned_upgrades_size(), " planned upgrades at ",
                                FormatUtcTime(latest), "; its ",
                                FormatDurationForPeople(facts.canary_soak), " soak ends at ",
                                FormatUtcTime(soak_end), " (in ",
                                FormatDurationForPeople(soak_end - now), ")"),
                   soak_end);
  }
  return Outcome(true, absl::StrCat("the canary ", canary, " installed and verified ", node, "'s ",
                                    plan.planned_upgrades_size(), " planned upgrades and soaked ",
                                    FormatDurationForPeople(facts.canary_soak)));
}

GateOutcome CanaryGate(const OsRolloutFacts& facts, const std::vector<std::string>& waiting,
                       absl::Time now, std::string* first_eligible) {
  if (waiting.empty()) {
    if (facts.state.stop().stopped()) return Outcome(false, StopReason(facts.state.stop()));
    if (facts.canary.empty()) return Outcome(true, "no canary configured for os_upgrade");
    return Outcome(true, absl::StrCat("no node waits; the canary ", facts.canary, " goes first"));
  }
  std::optional<GateOutcome> first_block;
  std::optional<absl::Time> earliest;
  for (const std::string& node : waiting) {
    GateOutcome outcome = CanaryGateForNode(facts, node, now);
    if (outcome.pass) {
      if (first_eligible != nullptr) *first_eligible = node;
      if (facts.canary.empty()) return outcome;
      outcome.reason = absl::StrCat(node, " may go: ", outcome.reason);
      return outcome;
    }
    if (outcome.earliest_pass.has_value()) {
      earliest = earliest.has_value() ? std::min(*earliest, *outcome.earliest_pass)
                                      : *outcome.earliest_pass;
    }
    if (!first_block.has_value()) first_block = std::move(outcome);
  }
  GateOutcome blocked = *std::move(first_block);
  if (!facts.state.stop().stopped() && waiting.size() > 1) {
    blocked.reason = absl::StrCat("none of the ", waiting.size(),
                                  " waiting nodes may go yet; first: ", blocked.reason);
  }
  blocked.earliest_pass = earliest;
  return blocked;
}

VettingResult CheckVetted(const tended::state::v1::OsRolloutState& rollout,
                          const std::vector<tended::v1::PackageVersion>& packages) {
  absl::flat_hash_map<std::string, absl::Time> vetted_at;
  vetted_at.reserve(static_cast<size_t>(rollout.vetted_packages_size()));
  for (const auto& entry : rollout.vetted_packages()) {
    absl::Time& at = vetted_at[absl::StrCat(entry.name(), "=", entry.version())];
    at = std::max(at, FromProtoTimestamp(entry.vetted_time()));
  }
  VettingResult result;
  for (const tended::v1::PackageVersion& wanted : packages) {
    auto found = vetted_at.find(absl::StrCat(wanted.name(), "=", wanted.version()));
    if (found == vetted_at.end()) {
      result.unvetted.push_back(absl::StrCat(wanted.name(), " ", wanted.version()));
    } else {
      result.latest_vetted = std::max(result.latest_vetted, found->second);
    }
  }
  return result;
}

void AddVettedPackages(const std::vector<tended::v1::PackageChange>& packages, absl::Time now,
                       size_t limit, tended::state::v1::OsRolloutState* state) {
  auto* vetted = state->mutable_vetted_packages();
  for (const tended::v1::PackageChange& change : packages) {
    for (int i = vetted->size() - 1; i >= 0; --i) {
      if (vetted->Get(i).name() == change.name() &&
          vetted->Get(i).version() == change.to_version()) {
        vetted->DeleteSubrange(i, 1);
      }
    }
    auto* entry = vetted->Add();
    entry->set_name(change.name());
    entry->set_version(change.to_version());
    *entry->mutable_vetted_time() = ToProtoTimestamp(now);
  }
  if (static_cast<size_t>(vetted->size()) > limit) {
    vetted->DeleteSubrange(0, vetted->size() - static_cast<int>(limit));
  }
}

}  // namespace tended::coordinator
