// The Agent under a K8S_UPGRADE lease: for each typed step of the lease's work not yet
// done, in order, prove the lease with BeginDisruption naming the step (the coordinator asks
// every gate again, so a halt stops the next step), journal the step as in flight, run it
// (K8sStepRunner), journal its report and deliver it. After a crash a step journaled in
// flight is begun again and re-run: every step is idempotent. A failed step is reported and
// the lease kept for an operator; after the last step the coordinator verifies and releases.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "common/k8s_steps.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"

namespace tended::agent {
namespace {

using tended::v1::K8sStep;
using tended::v1::Lease;

constexpr absl::Duration kStepPoll = absl::Seconds(2);
constexpr absl::Duration kRetrySoon = absl::Seconds(5);

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

std::string LastSnapshotPath(const RootPath& root, const AgentConfig& config) {
  return root.Resolve(absl::StrCat(config.state_dir, "/last-etcd-snapshot.json"));
}

bool Contains(const google::protobuf::RepeatedField<int>& kinds, tended::v1::K8sStepKind kind) {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

// The first step of the lease's work the coordinator has not recorded as done.
const K8sStep* NextStep(const Lease& lease) {
  for (const K8sStep& step : lease.k8s_work().steps()) {
    if (!Contains(lease.k8s_steps_done(), step.kind())) return &step;
  }
  return nullptr;
}

}  // namespace

void Agent::FillK8sFacts(tended::v1::K8sNodeFacts* facts) {
  absl::StatusOr<tended::v1::K8sNodeFacts> installed = deps_.k8s_installed->Read();
  if (installed.ok()) {
    *facts = *std::move(installed);
  }
  if (deps_.k8s_version_check != nullptr) deps_.k8s_version_check->Fill(facts);
  if (!installed.ok()) {
    facts->set_check_error(absl::StrCat(
        "cannot read the installed Kubernetes packages: ", installed.status().message(),
        facts->check_error().empty() ? "" : "; ", facts->check_error()));
  }
  if (!last_snapshot_loaded_) {
    // Once per process: afterwards FinishK8sStep keeps it current.
    (void)ReadProtoJsonFile(LastSnapshotPath(root_, config_), &last_snapshot_);
    last_snapshot_loaded_ = true;
  }
  if (last_snapshot_.size_bytes() > 0) *facts->mutable_last_snapshot() = last_snapshot_;
}

bool Agent::K8sStepRunning() {
  absl::MutexLock lock(&k8s_mutex_);
  return k8s_running_;
}

std::optional<absl::StatusOr<k8s::StepOutcome>> Agent::TakeK8sOutcome() {
  std::optional<absl::StatusOr<k8s::StepOutcome>> outcome;
  {
    absl::MutexLock lock(&k8s_mutex_);
    if (k8s_running_) return std::nullopt;
    outcome.swap(k8s_outcome_);
  }
  if (outcome.has_value() && k8s_worker_.joinable()) k8s_worker_.join();
  return outcome;
}

absl::Time Agent::HandleK8sUpgradeLease() {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();
  if (deps_.k8s_steps == nullptr) {
    if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
      return ReturnLease("this agent runs no Kubernetes steps (k8s.enabled is false)");
    }
    SetStatus(absl::StrCat("holding ", lease.id(), " (k8s_upgrade), which this agent cannot run"));
    return absl::InfiniteFuture();
  }

  // A step on the worker: wait for it, then report it.
  if (K8sStepRunning()) return now + kStepPoll;
  if (std::optional<absl::StatusOr<k8s::StepOutcome>> outcome = TakeK8sOutcome();
      outcome.has_value()) {
    const K8sStep* step = NextStep(lease);
    for (const K8sStep& candidate : lease.k8s_work().steps()) {
      if (candidate.kind() == journal_.k8s_step_in_flight()) step = &candidate;
    }
    if (step == nullptr || journal_.k8s_step_in_flight() == tended::v1::K8S_STEP_KIND_UNSPECIFIED) {
      Log()->warn("a Kubernetes step ended after its lease changed; its result is dropped");
      return now;
    }
    return FinishK8sStep(*step, *outcome);
  }

  if (journal_.has_step_report() && !journal_.step_report_delivered()) return DeliverK8sReport();
  if (journal_.has_step_report() &&
      journal_.step_report().state() != tended::v1::STEP_STATE_SUCCEEDED) {
    SetStatus(absl::StrCat(journal_.step_report().step(), " under ", lease.id(), " ",
                           tended::v1::StepState_Name(journal_.step_report().state()), ": ",
                           journal_.step_report().message(),
                           "; the lease is held for an operator"));
    return absl::InfiniteFuture();
  }

  const K8sStep* next = NextStep(lease);
  if (next == nullptr || lease.phase() == tended::v1::LEASE_PHASE_VERIFYING) {
    SetStatus(absl::StrCat("Kubernetes steps under ", lease.id(),
                           " done; waiting for the coordinator to verify and release"));
    return absl::InfiniteFuture();
  }
  // Done here, but the coordinator has not recorded it: the report is sent again.
  if (Contains(journal_.k8s_steps_done(), next->kind()) && journal_.has_step_report() &&
      journal_.step_report().k8s_step() == next->kind()) {
    if (now < next_lease_act_) return next_lease_act_;
    journal_.set_step_report_delivered(false);
    return DeliverK8sReport();
  }
  const bool resumed = journal_.k8s_step_in_flight() == next->kind();
  if (now < next_lease_act_) return next_lease_act_;
  if (os_ != nullptr && os_->busy()) return now + absl::Seconds(1);  // The engine is in use.
  return StartK8sStep(*next, resumed);
}

absl::Time Agent::StartK8sStep(const K8sStep& step, bool resumed) {
  const absl::Time now = deps_.clock->Now();
  const std::string name = K8sStepName(step.kind());
  if (std::optional<absl::Time> wake = WakeUnlessGo(BeginDisruption(name, {}))) return *wake;
  const Lease lease = journal_.lease();
  // The work is checked against what the node has before every step: a lease whose work
  // must not run here stops the rollout with the reason.
  if (absl::Status valid = deps_.k8s_steps->ValidateWork(lease.k8s_work()); !valid.ok()) {
    Log()->error("refusing {} under {}: {}", name, lease.id(), valid.message());
    return FinishK8sStep(
        step, absl::Status(valid.code(), absl::StrCat("refused by the agent: ", valid.message())));
  }
  journal_.set_k8s_step_in_flight(step.kind());
  journal_.set_step(name);
  *journal_.mutable_step_start_time() = ToProtoTimestamp(now);
  journal_.clear_step_report();
  journal_.clear_step_report_delivered();
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    // Without the journal a crash could not tell that the step ran: do not start it.
    Log()->error("not running {}: cannot journal it: {}", name, saved.ToString());
    journal_.clear_k8s_step_in_flight();
    journal_.clear_step();
    return now + kRetrySoon;
  }
  SetStatus(absl::StrCat(resumed ? "resuming " : "running ", name, " under ", lease.id(),
                         " (target ", step.target_version(), ")"));
  if (!deps_.k8s_in_background) {
    return FinishK8sStep(step, deps_.k8s_steps->Run(step));
  }
  if (k8s_worker_.joinable()) k8s_worker_.join();
  {
    absl::MutexLock lock(&k8s_mutex_);
    k8s_running_ = true;
    k8s_outcome_.reset();
  }
  k8s_worker_ = std::thread([this, step] {
    absl::StatusOr<k8s::StepOutcome> outcome = deps_.k8s_steps->Run(step);
    {
      absl::MutexLock lock(&k8s_mutex_);
      k8s_outcome_ = std::move(outcome);
      k8s_running_ = false;
    }
    Wake();
  });
  return now + kStepPoll;
}

absl::Time Agent::FinishK8sStep(const K8sStep& step,
                                const absl::StatusOr<k8s::StepOutcome>& outcome) {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();
  const std::string name = K8sStepName(step.kind());
  tended::v1::StepReport report;
  report.set_lease_id(lease.id());
  report.set_step(name);
  report.set_k8s_step(step.kind());
  *report.mutable_start_time() =
      journal_.has_step_start_time() ? journal_.step_start_time() : ToProtoTimestamp(now);
  *report.mutable_end_time() = ToProtoTimestamp(now);
  if (outcome.ok()) {
    report.set_state(tended::v1::STEP_STATE_SUCCEEDED);
    report.set_message(outcome->message);
    if (outcome->snapshot.has_value()) {
      *report.mutable_snapshot() = *outcome->snapshot;
      last_snapshot_ = *outcome->snapshot;
      if (absl::Status kept = WriteProtoJsonFile(LastSnapshotPath(root_, config_), last_snapshot_);
          !kept.ok()) {
        Log()->warn("cannot record the last etcd snapshot: {}", kept.ToString());
      }
    }
    if (!Contains(journal_.k8s_steps_done(), step.kind())) journal_.add_k8s_steps_done(step.kind());
    Log()->info("{} under {} succeeded: {}", name, lease.id(), report.message());
  } else {
    report.set_state(tended::v1::STEP_STATE_FAILED);
    report.set_message(std::string(outcome.status().message()));
    Log()->error("{} under {} failed: {}", name, lease.id(), report.message());
  }
  journal_.clear_k8s_step_in_flight();
  journal_.clear_step();
  *journal_.mutable_step_report() = report;
  journal_.set_step_report_delivered(false);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    Log()->error("cannot journal the result of {}: {}", name, saved.ToString());
  }
  // Package steps change what the node reports: the coordinator verifies on it.
  next_report_ = absl::InfinitePast();
  return DeliverK8sReport();
}

absl::Time Agent::DeliverK8sReport() {
  const absl::Time now = deps_.clock->Now();
  tended::v1::ReportStepRequest request;
  request.set_lease_id(journal_.lease().id());
  request.set_fencing_token(journal_.lease().fencing_token());
  *request.mutable_report() = journal_.step_report();
  request.set_agent_instance_id(instance_id_);
  auto delivered = deps_.coordinator->ReportStep(request);
  if (!delivered.ok()) {
    if (absl::IsFailedPrecondition(delivered.status()) ||
        absl::IsInvalidArgument(delivered.status())) {
      // Not sent again; the renewal shows whether the lease is still held.
      Log()->error("the coordinator refused the report of {}: {}", journal_.step_report().step(),
                   delivered.status().ToString());
      journal_.set_step_report_delivered(true);
      (void)SaveJournal();
      next_renew_ = now;
      next_lease_act_ = now + ActRetryDelay();
      SetStatus(absl::StrCat("the coordinator refused the report of ",
                             journal_.step_report().step(), " (", delivered.status().message(),
                             "); keeping the lease while it holds it"));
      return now;
    }
    Disconnected(delivered.status());
    return next_connect_attempt_;
  }
  *journal_.mutable_lease() = delivered->lease();
  journal_.set_step_report_delivered(true);
  (void)SaveJournal();
  next_report_ = absl::InfinitePast();
  return now;
}

}  // namespace tended::agent
