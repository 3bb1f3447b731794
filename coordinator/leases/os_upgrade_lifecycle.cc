#include "coordinator/leases/os_upgrade_lifecycle.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;

// Vetted package versions kept in the state.
constexpr size_t kVettedLimit = 5000;

bool IsFinal(tended::v1::StepState state) {
  return state == tended::v1::STEP_STATE_SUCCEEDED || state == tended::v1::STEP_STATE_FAILED ||
         state == tended::v1::STEP_STATE_INTERRUPTED;
}

std::string Key(const std::string& name, const std::string& version) {
  return absl::StrCat(name, "=", version);
}

std::set<std::string> PackageKeys(
    const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& packages) {
  std::set<std::string> keys;
  for (const auto& change : packages) keys.insert(Key(change.name(), change.to_version()));
  return keys;
}

// What a successful step installed that BeginDisruption did not name ("name version").
std::vector<std::string> Unapproved(const Lease& lease, const tended::v1::StepReport& report) {
  std::vector<std::string> unapproved;
  if (report.state() != tended::v1::STEP_STATE_SUCCEEDED) return unapproved;
  const std::set<std::string> approved = PackageKeys(lease.approved_packages());
  for (const auto& change : report.packages()) {
    if (approved.count(Key(change.name(), change.to_version())) == 0) {
      unapproved.push_back(absl::StrCat(change.name(), " ", change.to_version()));
    }
  }
  return unapproved;
}

}  // namespace

OsUpgradeLifecycle::OsUpgradeLifecycle(const CoordinatorConfig& config) : config_(config) {
  auto policy = config.leases.find(tended::v1::LEASE_KIND_OS_UPGRADE);
  if (policy != config.leases.end()) {
    canary_ = policy->second.canary;
    canary_soak_ = policy->second.canary_soak;
  }
}

OsRolloutFacts OsUpgradeLifecycle::Facts(const state::FleetState& state,
                                         const std::vector<std::string>& nodes) const {
  OsRolloutFacts facts;
  facts.canary = canary_;
  facts.canary_soak = canary_soak_;
  facts.report_deadline = config_.fleet.report_deadline;
  facts.state = state.os_rollout();
  std::vector<std::string> wanted = nodes;
  if (!canary_.empty()) wanted.push_back(canary_);
  for (const std::string& name : wanted) {
    const state::NodeEntry* entry = state.FindNode(name);
    if (entry == nullptr) continue;
    RolloutNode& node = facts.nodes[name];
    node.last_report = entry->last_report();
    node.os = entry->facts.os_upgrade();
    const Lease* held = state.ActiveLeaseForNode(name);
    node.upgrading = held != nullptr && held->kind() == tended::v1::LEASE_KIND_OS_UPGRADE;
  }
  return facts;
}

void OsUpgradeLifecycle::AppendKindGates(const state::FleetState& state,
                                         const std::vector<std::string>& waiting, absl::Time now,
                                         std::vector<GateOutcome>& outcomes) const {
  outcomes.push_back(CanaryGate(Facts(state, waiting), waiting, now, nullptr));
}

std::vector<GateOutcome> OsUpgradeLifecycle::NodeGates(const state::FleetState& state,
                                                       const std::string& node,
                                                       absl::Time now) const {
  GateOutcome outcome = CanaryGateForNode(Facts(state, {node}), node, now);
  if (outcome.pass) return {};
  return {std::move(outcome)};
}

absl::Status OsUpgradeLifecycle::OnBegin(LeaseContext& context, Lease& lease,
                                         const tended::v1::BeginDisruptionRequest& request) {
  if (request.packages().empty()) {
    return absl::InvalidArgumentError(
        "packages: an os_upgrade step names exactly the packages and versions it installs");
  }
  for (const auto& change : request.packages()) {
    if (change.name().empty() || change.to_version().empty()) {
      return absl::InvalidArgumentError("packages: every entry needs a name and a to_version");
    }
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
    // The same call again (its answer was lost): only with the set already approved.
    if (PackageKeys(request.packages()) != PackageKeys(lease.approved_packages())) {
      return absl::FailedPreconditionError(
          absl::StrCat("lease ", lease.id(), " began with another package set; a step installs ",
                       "only what it named when it began"));
    }
    return absl::OkStatus();
  }
  const tended::v1::RolloutStop& stop = context.state().os_rollout().stop();
  if (stop.stopped()) {
    return absl::UnavailableError(absl::StrCat("the OS rollout stopped: ", stop.reason()));
  }
  if (!canary_.empty() && !IsCanary(lease.node_name())) {
    std::vector<tended::v1::PackageVersion> named;
    for (const auto& change : request.packages()) {
      tended::v1::PackageVersion version;
      version.set_name(change.name());
      version.set_version(change.to_version());
      named.push_back(std::move(version));
    }
    VettingResult vetting = CheckVetted(context.state().os_rollout(), named);
    if (!vetting.unvetted.empty()) {
      const std::string why =
          absl::StrCat("the step names ", vetting.unvetted.size(), " package versions the canary ",
                       canary_, " has not installed and verified: ", JoinCapped(vetting.unvetted),
                       "; the lease is returned and the node asks again with its next plan");
      context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, why, /*failed=*/true);
      return absl::FailedPreconditionError(why);
    }
    const absl::Time soak_end = vetting.latest_vetted + canary_soak_;
    if (vetting.latest_vetted != absl::InfinitePast() && context.now() < soak_end) {
      return absl::UnavailableError(
          absl::StrCat("the canary's ", FormatDurationForPeople(canary_soak_),
                       " soak of these versions ends at ", FormatUtcTime(soak_end)));
    }
  }
  *lease.mutable_approved_packages() = request.packages();
  return absl::OkStatus();
}

void OsUpgradeLifecycle::Stop(LeaseContext& context, const std::string& node,
                              const std::string& reason) {
  if (context.state().os_rollout().stop().stopped()) return;  // The first cause stays.
  tended::state::v1::OsRolloutState rollout = context.state().os_rollout();
  tended::v1::RolloutStop* stop = rollout.mutable_stop();
  stop->set_stopped(true);
  stop->set_reason(reason);
  stop->set_node_name(node);
  *stop->mutable_since() = ToProtoTimestamp(context.now());
  context.txn().SetOsRollout(rollout);
  context.txn().AddEvent(tended::v1::EVENT_TYPE_ROLLOUT_STOPPED, nullptr, node,
                         absl::StrCat("os_upgrade rollout stopped: ", reason));
  Logger("coordinator")->warn("OS rollout stopped: {}", reason);
}

absl::StatusOr<Lease> OsUpgradeLifecycle::OnStepReport(
    LeaseContext& context, const Lease& lease, const tended::v1::ReportStepRequest& request) {
  const tended::v1::StepReport& report = request.report();
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease ", lease.id(), " has not begun a disruption; call BeginDisruption first"));
  }
  const std::string node = lease.node_name();
  if (!IsFinal(report.state())) {
    // Progress: shown as the lease's status; late progress after the end is dropped.
    std::string status = absl::StrCat(report.step(), ": ", report.message());
    if (report.percent() > 0) absl::StrAppend(&status, " (", report.percent(), "%)");
    if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
      context.SetStatus(lease, status, /*problem=*/false);
    }
    return *context.state().FindLease(lease.id());
  }
  const state::NodeEntry* entry = context.state().FindNode(node);
  const bool duplicate = entry != nullptr &&
                         entry->known.last_step_report().lease_id() == lease.id() &&
                         IsFinal(entry->known.last_step_report().state());
  if (duplicate) return *context.state().FindLease(lease.id());

  const bool succeeded = report.state() == tended::v1::STEP_STATE_SUCCEEDED;
  std::string summary =
      succeeded ? absl::StrCat(report.step(), " succeeded: ", report.packages_size(),
                               " packages installed",
                               report.reboot_required() ? ", reboot required" : "")
                : absl::StrCat(report.step(),
                               report.state() == tended::v1::STEP_STATE_FAILED
                                   ? " failed: "
                                   : " was interrupted: ",
                               report.message());
  if (entry != nullptr) {
    tended::state::v1::KnownNode known = entry->known;
    *known.mutable_last_step_report() = report;
    known.mutable_last_step_report()->set_lease_id(lease.id());
    context.txn().PutNode(known);
  }
  context.txn().AddEvent(tended::v1::EVENT_TYPE_STEP_REPORTED, &lease, node, summary);
  const Lease verifying = context.MarkVerifying(lease, summary);
  const std::vector<std::string> unapproved = Unapproved(lease, report);
  if (!unapproved.empty()) {
    const std::string why =
        absl::StrCat(node, " installed ", unapproved.size(),
                     " package versions its step did not name when it began: ",
                     JoinCapped(unapproved));
    context.SetStatus(verifying,
                      absl::StrCat(why, "; the lease stays held until an operator looks and "
                                        "force-releases it"),
                      /*problem=*/true);
    Stop(context, node, why);
  } else if (!succeeded) {
    context.SetStatus(verifying,
                      absl::StrCat(summary,
                                   "; the lease stays held until the node is repaired and an "
                                   "operator force-releases it"),
                      /*problem=*/true);
    Stop(context, node,
         absl::StrCat(IsCanary(node) ? "canary " : "", node,
                      IsCanary(node) ? " failed: " : "'s OS upgrade failed: ", report.message()));
  }
  return *context.state().FindLease(lease.id());
}

void OsUpgradeLifecycle::OnFacts(LeaseContext& context, const Lease& lease,
                                 const state::NodeEntry& node) {
  if (lease.phase() != tended::v1::LEASE_PHASE_VERIFYING) return;  // The step still runs.
  // A copy: releasing changes the node's registry entry, and with it this report.
  const tended::v1::StepReport report = node.known.last_step_report();
  if (report.lease_id() != lease.id() || report.state() != tended::v1::STEP_STATE_SUCCEEDED) {
    return;  // Failed or interrupted: held until an operator force-releases it.
  }
  if (!Unapproved(lease, report).empty()) return;  // Held for an operator.
  // The node reports after its step: its facts carry the step's result.
  if (node.facts.os_upgrade().last_step().lease_id() != lease.id()) return;
  if (!config_.alerts.prometheus_url.empty()) {
    GateFacts gate_facts;
    gate_facts.alerts = context.alerts();
    GateOutcome alerts_now = AlertsGate(gate_facts, config_, context.now());
    if (!alerts_now.pass) {
      context.SetStatus(lease, absl::StrCat("upgraded, but not verified: ", alerts_now.reason),
                        /*problem=*/true);
      // Only an alert that fires stops the rollout; an unread or stale answer just waits.
      if (IsCanary(lease.node_name()) && context.alerts().has_value() &&
          context.alerts()->status.ok() &&
          context.now() - context.alerts()->fetched_at <= config_.alerts.max_age) {
        Stop(context, lease.node_name(),
             absl::StrCat("canary ", lease.node_name(), " came back unhealthy: ",
                          alerts_now.reason));
      }
      return;
    }
  }
  context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RELEASED,
                  absl::StrCat("verified and released: ", report.step(), " installed ",
                               report.packages_size(),
                               " packages; the node reports after it and no alert fires"));
  if (IsCanary(lease.node_name())) {
    tended::state::v1::OsRolloutState rollout = context.state().os_rollout();
    std::vector<tended::v1::PackageChange> installed(report.packages().begin(),
                                                     report.packages().end());
    AddVettedPackages(installed, context.now(), kVettedLimit, &rollout);
    context.txn().SetOsRollout(rollout);
  }
}

tended::v1::RolloutStop OsUpgradeLifecycle::Resume(LeaseContext& context,
                                                   const std::string& reason) {
  const tended::v1::RolloutStop stop = context.state().os_rollout().stop();
  if (!stop.stopped()) return stop;
  tended::state::v1::OsRolloutState rollout = context.state().os_rollout();
  rollout.clear_stop();
  context.txn().SetOsRollout(rollout);
  context.txn().AddEvent(tended::v1::EVENT_TYPE_ROLLOUT_RESUMED, nullptr, stop.node_name(),
                         absl::StrCat("os_upgrade rollout resumed by an operator: ", reason,
                                      " (it stopped because ", stop.reason(), ")"));
  return stop;
}

}  // namespace tended::coordinator
