#include "coordinator/os_rollout.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/coordinator.h"
#include "coordinator/window.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;

constexpr char kGate[] = "canary";
// Vetted package versions kept in the state file.
constexpr size_t kVettedLimit = 5000;
// Packages named in a reason before "and N more".
constexpr size_t kNamesInReason = 5;

GateOutcome Outcome(bool pass, std::string reason,
                    std::optional<absl::Time> earliest = std::nullopt) {
  GateOutcome outcome;
  outcome.gate = kGate;
  outcome.pass = pass;
  outcome.reason = std::move(reason);
  if (!pass) outcome.earliest_pass = earliest;
  return outcome;
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

bool IsFinal(tended::v1::StepState state) {
  return state == tended::v1::STEP_STATE_SUCCEEDED || state == tended::v1::STEP_STATE_FAILED ||
         state == tended::v1::STEP_STATE_INTERRUPTED;
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
  std::vector<std::string> unvetted;
  absl::Time latest = absl::InfinitePast();
  for (const tended::v1::PackageVersion& wanted : plan.planned_upgrades()) {
    std::optional<absl::Time> vetted;
    for (const auto& entry : facts.state.vetted_packages()) {
      if (entry.name() == wanted.name() && entry.version() == wanted.version()) {
        vetted = FromProtoTimestamp(entry.vetted_time());
      }
    }
    if (!vetted.has_value()) {
      unvetted.push_back(absl::StrCat(wanted.name(), " ", wanted.version()));
    } else {
      latest = std::max(latest, *vetted);
    }
  }
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

// The Coordinator's OS_UPGRADE members.

OsRolloutFacts Coordinator::CollectOsRolloutFacts() const {
  OsRolloutFacts facts;
  auto policy = config_.leases.find(tended::v1::LEASE_KIND_OS_UPGRADE);
  if (policy != config_.leases.end()) {
    facts.canary = policy->second.canary;
    facts.canary_soak = policy->second.canary_soak;
  }
  facts.report_deadline = config_.fleet.report_deadline;
  facts.state = leases_->state().os_rollout();
  for (const auto& known : leases_->state().nodes()) {
    RolloutNode& node = facts.nodes[known.node_name()];
    auto report = last_report_.find(known.node_name());
    node.last_report = report != last_report_.end() ? report->second : started_at_;
    node.os = known.last_facts().os_upgrade();
    const Lease* held = leases_->FindActiveLeaseForNode(known.node_name());
    node.upgrading = held != nullptr && held->kind() == tended::v1::LEASE_KIND_OS_UPGRADE;
  }
  return facts;
}

bool Coordinator::AwaitsOsVerification(const std::string& node) {
  if (config_.alerts.prometheus_url.empty()) return false;
  absl::MutexLock lock(&mutex_);
  const Lease* held = leases_->FindActiveLeaseForNode(node);
  return held != nullptr && held->kind() == tended::v1::LEASE_KIND_OS_UPGRADE &&
         held->phase() == tended::v1::LEASE_PHASE_VERIFYING;
}

void Coordinator::StopOsRollout(const std::string& node, const std::string& reason) {
  if (leases_->state().os_rollout().stop().stopped()) return;  // The first cause stays.
  absl::Status stopped = leases_->Mutate([&](tended::state::v1::CoordinatorState& state,
                                             const LeaseManager::EventAppender& append) {
    tended::v1::RolloutStop* stop = state.mutable_os_rollout()->mutable_stop();
    stop->set_stopped(true);
    stop->set_reason(reason);
    stop->set_node_name(node);
    *stop->mutable_since() = ToProtoTimestamp(clock_.Now());
    append(tended::v1::EVENT_TYPE_ROLLOUT_STOPPED, nullptr, node,
           absl::StrCat("os_upgrade rollout stopped: ", reason));
    return absl::OkStatus();
  });
  if (!stopped.ok()) {
    Logger("coordinator")->error("stopping the OS rollout: {}", stopped.ToString());
    return;
  }
  Logger("coordinator")->warn("OS rollout stopped: {}", reason);
}

absl::StatusOr<tended::v1::ReportStepResponse> Coordinator::ReportStep(
    const tended::v1::ReportStepRequest& request) {
  if (request.lease_id().empty()) return absl::InvalidArgumentError("lease_id: required");
  if (request.fencing_token() == 0) {
    return absl::InvalidArgumentError("fencing_token: required (never 0)");
  }
  const tended::v1::StepReport& report = request.report();
  if (report.step().empty()) return absl::InvalidArgumentError("report.step: required");
  if (report.state() == tended::v1::STEP_STATE_UNSPECIFIED ||
      !tended::v1::StepState_IsValid(report.state())) {
    return absl::InvalidArgumentError(
        "report.state: must be STEP_STATE_RUNNING, _SUCCEEDED, _FAILED or _INTERRUPTED");
  }
  if (!report.lease_id().empty() && report.lease_id() != request.lease_id()) {
    return absl::InvalidArgumentError("report.lease_id: differs from lease_id");
  }
  if (report.percent() > 100) return absl::InvalidArgumentError("report.percent: at most 100");

  absl::MutexLock lock(&mutex_);
  const Lease* found = leases_->FindLease(request.lease_id());
  if (found == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("no lease ", request.lease_id()));
  }
  const Lease lease = *found;
  if (!IsActive(lease)) {
    return absl::FailedPreconditionError(absl::StrCat("lease ", lease.id(), " was released"));
  }
  if (lease.fencing_token() != request.fencing_token()) {
    std::string why = absl::StrCat("stale fencing token ", request.fencing_token(), " for lease ",
                                   lease.id(), " (current ", lease.fencing_token(), ")");
    (void)leases_->Mutate([&](tended::state::v1::CoordinatorState&,
                              const LeaseManager::EventAppender& append) {
      append(tended::v1::EVENT_TYPE_FENCING_REJECTED, nullptr, lease.node_name(),
             absl::StrCat("step report refused: ", why));
      return absl::OkStatus();
    });
    return absl::FailedPreconditionError(why);
  }
  if (lease.kind() != tended::v1::LEASE_KIND_OS_UPGRADE) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease.id(), " is not an os_upgrade lease; only those report steps"));
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease ", lease.id(), " has not begun a disruption; call BeginDisruption first"));
  }
  tended::v1::ReportStepResponse response;
  const std::string node = lease.node_name();

  if (!IsFinal(report.state())) {
    // Progress: shown as the lease's status; late progress after the end is dropped.
    std::string status = absl::StrCat(report.step(), ": ", report.message());
    if (report.percent() > 0) absl::StrAppend(&status, " (", report.percent(), "%)");
    if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING && lease.status_message() != status) {
      RETURN_IF_ERROR(leases_->Mutate(
          [&](tended::state::v1::CoordinatorState& state, const LeaseManager::EventAppender&) {
            for (Lease& candidate : *state.mutable_leases()) {
              if (candidate.id() == lease.id()) candidate.set_status_message(status);
            }
            return absl::OkStatus();
          }));
    }
    *response.mutable_lease() = *leases_->FindLease(lease.id());
    return response;
  }

  const tended::state::v1::KnownNode* known = leases_->FindNode(node);
  const bool duplicate = known != nullptr && known->last_step_report().lease_id() == lease.id() &&
                         IsFinal(known->last_step_report().state());
  if (!duplicate) {
    const bool succeeded = report.state() == tended::v1::STEP_STATE_SUCCEEDED;
    std::string summary =
        succeeded
            ? absl::StrCat(report.step(), " succeeded: ", report.packages_size(),
                           " packages installed", report.reboot_required() ? ", reboot required" : "")
            : absl::StrCat(report.step(),
                           report.state() == tended::v1::STEP_STATE_FAILED ? " failed: "
                                                                            : " was interrupted: ",
                           report.message());
    RETURN_IF_ERROR(leases_->Mutate([&](tended::state::v1::CoordinatorState& state,
                                        const LeaseManager::EventAppender& append) {
      for (auto& candidate : *state.mutable_nodes()) {
        if (candidate.node_name() != node) continue;
        *candidate.mutable_last_step_report() = report;
        candidate.mutable_last_step_report()->set_lease_id(lease.id());
      }
      append(tended::v1::EVENT_TYPE_STEP_REPORTED, &lease, node, summary);
      return absl::OkStatus();
    }));
    auto verifying = leases_->MarkVerifying(lease.id(), summary);
    if (!verifying.ok()) return verifying.status();
    if (!succeeded) {
      (void)leases_->SetVerificationProblem(
          lease.id(), absl::StrCat(summary,
                                   "; the lease stays held until the node is repaired and an "
                                   "operator force-releases it"));
      auto policy = config_.leases.find(tended::v1::LEASE_KIND_OS_UPGRADE);
      const bool is_canary = policy != config_.leases.end() && policy->second.canary == node;
      StopOsRollout(node, absl::StrCat(is_canary ? "canary " : "", node,
                                       is_canary ? " failed: " : "'s OS upgrade failed: ",
                                       report.message()));
    }
  }
  *response.mutable_lease() = *leases_->FindLease(lease.id());
  return response;
}

void Coordinator::VerifyOsUpgradeLease(const Lease& held, const tended::v1::NodeFacts& facts,
                                       const std::optional<AlertSnapshot>& alerts) {
  const Lease lease = held;  // `held` points into state that the calls below replace.
  if (lease.phase() != tended::v1::LEASE_PHASE_VERIFYING) return;  // The step still runs.
  const tended::state::v1::KnownNode* known = leases_->FindNode(lease.node_name());
  if (known == nullptr) return;
  const tended::v1::StepReport report = known->last_step_report();
  if (report.lease_id() != lease.id() || report.state() != tended::v1::STEP_STATE_SUCCEEDED) {
    return;  // Failed or interrupted: held until an operator force-releases it.
  }
  // The node reports after its step: its facts carry the step's result.
  if (facts.os_upgrade().last_step().lease_id() != lease.id()) return;
  auto policy = config_.leases.find(tended::v1::LEASE_KIND_OS_UPGRADE);
  const bool is_canary =
      policy != config_.leases.end() && policy->second.canary == lease.node_name();
  if (!config_.alerts.prometheus_url.empty()) {
    GateFacts gate_facts;
    gate_facts.alerts = alerts;
    const absl::Time now = clock_.Now();
    GateOutcome alerts_now = AlertsGate(gate_facts, config_, now);
    if (!alerts_now.pass) {
      (void)leases_->SetVerificationProblem(
          lease.id(), absl::StrCat("upgraded, but not verified: ", alerts_now.reason));
      // Only an alert that fires stops the rollout; an unread or stale answer just waits.
      if (is_canary && alerts.has_value() && alerts->status.ok() &&
          now - alerts->fetched_at <= config_.alerts.max_age) {
        StopOsRollout(lease.node_name(), absl::StrCat("canary ", lease.node_name(),
                                                      " came back unhealthy: ", alerts_now.reason));
      }
      return;
    }
  }
  auto released = leases_->CompleteVerification(
      lease.id(), absl::StrCat(report.step(), " installed ", report.packages_size(),
                               " packages; the node reports after it and no alert fires"));
  if (!released.ok()) {
    Logger("coordinator")->error("releasing {}: {}", lease.id(), released.status().ToString());
    return;
  }
  if (is_canary) {
    std::vector<tended::v1::PackageChange> installed(report.packages().begin(),
                                                     report.packages().end());
    absl::Status vetted = leases_->Mutate(
        [&](tended::state::v1::CoordinatorState& state, const LeaseManager::EventAppender&) {
          AddVettedPackages(installed, clock_.Now(), kVettedLimit, state.mutable_os_rollout());
          return absl::OkStatus();
        });
    if (!vetted.ok()) {
      Logger("coordinator")->error("recording the canary's packages: {}", vetted.ToString());
    }
  }
  SendLease(*released, /*granted=*/false);
}

absl::StatusOr<tended::v1::ResumeRolloutResponse> Coordinator::ResumeRollout(
    const tended::v1::ResumeRolloutRequest& request) {
  if (request.kind() != tended::v1::LEASE_KIND_OS_UPGRADE) {
    return absl::InvalidArgumentError(
        "kind: must be LEASE_KIND_OS_UPGRADE, the only kind with a staged rollout");
  }
  if (absl::StripAsciiWhitespace(request.reason()).empty()) {
    return absl::InvalidArgumentError("reason: required; it is recorded in the event log");
  }
  tended::v1::ResumeRolloutResponse response;
  {
    absl::MutexLock lock(&mutex_);
    const tended::v1::RolloutStop stop = leases_->state().os_rollout().stop();
    *response.mutable_cleared() = stop;
    if (!stop.stopped()) return response;
    RETURN_IF_ERROR(leases_->Mutate([&](tended::state::v1::CoordinatorState& state,
                                        const LeaseManager::EventAppender& append) {
      state.mutable_os_rollout()->clear_stop();
      append(tended::v1::EVENT_TYPE_ROLLOUT_RESUMED, nullptr, stop.node_name(),
             absl::StrCat("os_upgrade rollout resumed by an operator: ", request.reason(),
                          " (it stopped because ", stop.reason(), ")"));
      return absl::OkStatus();
    }));
  }
  Logger("coordinator")->info("OS rollout resumed: {}", request.reason());
  Schedule();
  return response;
}

}  // namespace tended::coordinator
