// The Agent's OS upgrade flow: ask for an OS_UPGRADE lease when the plan has upgrades,
// prove the lease with BeginDisruption("dpkg") right before dpkg runs, journal the step,
// install, journal the report, deliver it, and leave the release to the coordinator's
// verification. A reboot the packages ask for then follows through the REBOOT flow.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/agent.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"

namespace tended::agent {
namespace {

using tended::v1::Lease;

constexpr absl::Duration kStepPoll = absl::Seconds(5);
constexpr absl::Duration kRetrySoon = absl::Seconds(5);
constexpr size_t kPackagesInReason = 5;

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

std::string LastStepPath(const RootPath& root, const AgentConfig& config) {
  return root.Resolve(absl::StrCat(config.state_dir, "/last-os-upgrade.json"));
}

std::string DescribePlan(const apt::UpgradePlan& plan) {
  std::vector<std::string> names;
  for (const apt::PackageUpgrade& u : plan.upgrades) {
    if (names.size() == kPackagesInReason) {
      names.push_back(absl::StrCat("and ", plan.upgrades.size() - kPackagesInReason, " more"));
      break;
    }
    names.push_back(absl::StrCat(u.package, " ", u.to));
  }
  return absl::StrCat(plan.upgrades.size(), " OS upgrades: ", absl::StrJoin(names, ", "));
}

const char* StageName(apt::ApplyProgress::Stage stage) {
  switch (stage) {
    case apt::ApplyProgress::Stage::kRepairing:
      return "repairing dpkg";
    case apt::ApplyProgress::Stage::kWaitingForLock:
      return "waiting for the dpkg lock";
    case apt::ApplyProgress::Stage::kDownloading:
      return "downloading";
    case apt::ApplyProgress::Stage::kInstalling:
      return "installing";
    case apt::ApplyProgress::Stage::kHolding:
      return "re-holding";
  }
  return "working";
}

}  // namespace

void Agent::StartOsUpgrades() {
  absl::StatusOr<bool> repaired = os_->RepairInterruptedDpkg();
  if (!repaired.ok()) {
    Log()->error("repairing an interrupted dpkg: {}", repaired.status().ToString());
  } else if (*repaired) {
    Log()->warn("dpkg was interrupted; dpkg --configure -a repaired it");
  }
  tended::v1::StepReport last;
  if (ReadProtoJsonFile(LastStepPath(root_, config_), &last).ok()) last_os_step_ = last;

  if (journal_.step() != kDpkgStep || journal_.has_step_report()) return;
  // A dpkg step was journaled and never finished here: report it, never redo it.
  tended::v1::StepReport report;
  report.set_lease_id(journal_.lease().id());
  report.set_step(kDpkgStep);
  report.set_state(tended::v1::STEP_STATE_INTERRUPTED);
  *report.mutable_start_time() = journal_.step_start_time();
  *report.mutable_end_time() = ToProtoTimestamp(deps_.clock->Now());
  std::string repair = !repaired.ok() ? absl::StrCat("dpkg --configure -a failed: ",
                                                     repaired.status().message())
                       : *repaired   ? "dpkg --configure -a repaired it"
                                     : "dpkg was left consistent";
  report.set_message(absl::StrCat("tended-agent stopped while dpkg ran (step started at ",
                                  absl::FormatTime(FromProtoTimestamp(journal_.step_start_time())),
                                  "); ", repair, "; check the node before releasing the lease"));
  Log()->error("{}", report.message());
  *journal_.mutable_step_report() = report;
  journal_.set_step_report_delivered(false);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    Log()->error("cannot journal the interrupted step: {}", saved.ToString());
  }
}

void Agent::FillOsUpgradeFacts(tended::v1::OsUpgradeFacts* facts) const {
  os_->FillFacts(facts);
  if (journal_.has_step_report() && journal_.step_report_delivered()) {
    *facts->mutable_last_step() = journal_.step_report();
  } else if (!last_os_step_.step().empty()) {
    *facts->mutable_last_step() = last_os_step_;
  }
}

void Agent::CancelOsLeaseRequest() {
  tended::v1::CancelLeaseRequestRequest cancel;
  cancel.set_node_name(node_name_);
  cancel.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
  if (auto cancelled = deps_.coordinator->CancelLeaseRequest(cancel); !cancelled.ok()) {
    Disconnected(cancelled.status());
    return;
  }
  waiting_for_os_lease_ = false;
}

absl::Time Agent::HandleNoOsLease() {
  const absl::Time now = deps_.clock->Now();
  const std::optional<apt::UpgradePlan>& plan = os_->plan();
  if (!plan.has_value() || plan->upgrades.empty()) {
    if (waiting_for_os_lease_) {
      CancelOsLeaseRequest();
      if (!connected_) return next_connect_attempt_;
    }
    SetStatus(plan.has_value() ? "idle: no reboot required, no OS upgrades"
                               : "idle: no reboot required; the OS upgrade plan is not ready");
    return absl::InfiniteFuture();
  }
  if (waiting_for_os_lease_ && now < next_os_acquire_) return next_os_acquire_;

  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(node_name_);
  request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
  request.set_reason(DescribePlan(*plan));
  auto response = deps_.coordinator->AcquireLease(request);
  if (!response.ok()) {
    if (absl::IsFailedPrecondition(response.status()) ||
        absl::IsInvalidArgument(response.status())) {
      SetStatus(absl::StrCat("OS upgrade lease refused: ", response.status().message()));
      waiting_for_os_lease_ = true;
      next_os_acquire_ = now + config_.check_period;
      return next_os_acquire_;
    }
    Disconnected(response.status());
    return next_connect_attempt_;
  }
  if (response->has_lease()) {
    AdoptLease(response->lease(), "granted at once");
    return now;
  }
  waiting_for_os_lease_ = true;
  next_os_acquire_ = now + config_.check_period;
  std::vector<std::string> blocking;
  for (const auto& gate : response->gates()) {
    if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
      blocking.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
    }
  }
  SetStatus(absl::StrCat("waiting for an OS upgrade lease (queue position ",
                         response->queue_position(), "): ", absl::StrJoin(blocking, "; ")));
  return next_os_acquire_;
}

absl::Time Agent::DeliverStepReport() {
  const absl::Time now = deps_.clock->Now();
  tended::v1::ReportStepRequest request;
  request.set_lease_id(journal_.lease().id());
  request.set_fencing_token(journal_.lease().fencing_token());
  *request.mutable_report() = journal_.step_report();
  request.mutable_report()->set_lease_id(journal_.lease().id());
  auto delivered = deps_.coordinator->ReportStep(request);
  if (!delivered.ok()) {
    if (absl::IsFailedPrecondition(delivered.status()) ||
        absl::IsInvalidArgument(delivered.status())) {
      Log()->error("the coordinator refused the step report: {}", delivered.status().ToString());
      ClearLease(delivered.status().message());
      return now;
    }
    Disconnected(delivered.status());
    return next_connect_attempt_;
  }
  *journal_.mutable_lease() = delivered->lease();
  journal_.set_step_report_delivered(true);
  (void)SaveJournal();
  last_os_step_ = journal_.step_report();
  if (absl::Status saved = WriteProtoJsonFile(LastStepPath(root_, config_), last_os_step_);
      !saved.ok()) {
    Log()->warn("cannot record the last OS upgrade: {}", saved.ToString());
  }
  next_report_ = absl::InfinitePast();  // The facts carry the result: verification needs them.
  return now;
}

absl::Time Agent::HandleOsUpgradeLease() {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();

  if (journal_.has_step_report()) {
    if (!journal_.step_report_delivered()) return DeliverStepReport();
    SetStatus(absl::StrCat("OS upgrade under ", lease.id(), " ",
                           tended::v1::StepState_Name(journal_.step_report().state()),
                           "; waiting for the coordinator to verify and release"));
    return absl::InfiniteFuture();
  }

  if (journal_.step() == kDpkgStep) {
    if (os_->busy()) {
      if (std::optional<apt::ApplyProgress> progress = os_->TakeProgress(); progress.has_value()) {
        tended::v1::ReportStepRequest request;
        request.set_lease_id(lease.id());
        request.set_fencing_token(lease.fencing_token());
        tended::v1::StepReport* report = request.mutable_report();
        report->set_lease_id(lease.id());
        report->set_step(kDpkgStep);
        report->set_state(tended::v1::STEP_STATE_RUNNING);
        report->set_message(progress->message.empty()
                                ? std::string(StageName(progress->stage))
                                : absl::StrCat(StageName(progress->stage), ": ", progress->message));
        report->set_percent(static_cast<uint32_t>(std::clamp(progress->percent, 0.0, 100.0)));
        *report->mutable_start_time() = journal_.step_start_time();
        // Progress is informative: dpkg runs on whatever the answer.
        if (auto sent = deps_.coordinator->ReportStep(request); !sent.ok()) {
          Log()->warn("progress report: {}", sent.status().ToString());
        }
        SetStatus(absl::StrCat("upgrading under ", lease.id(), ": ", report->message()));
      }
      return now + kStepPoll;
    }
    std::optional<absl::StatusOr<apt::ApplyResult>> result = os_->TakeApplyResult();
    tended::v1::StepReport report;
    if (result.has_value()) {
      report = StepReportFor(*result, applying_);
      if (result->ok()) {
        Log()->info("OS upgrade under {}: {}", lease.id(), report.message());
      } else {
        Log()->error("OS upgrade under {} failed: {}", lease.id(), report.message());
      }
    } else {
      report.set_step(kDpkgStep);
      report.set_state(tended::v1::STEP_STATE_INTERRUPTED);
      report.set_message("the dpkg step is journaled but no install ran in this process");
    }
    report.set_lease_id(lease.id());
    *report.mutable_start_time() = journal_.step_start_time();
    *report.mutable_end_time() = ToProtoTimestamp(now);
    *journal_.mutable_step_report() = report;
    journal_.set_step_report_delivered(false);
    if (absl::Status saved = SaveJournal(); !saved.ok()) {
      Log()->error("cannot journal the step's result: {}", saved.ToString());
    }
    os_->RequestReplan();
    return DeliverStepReport();
  }

  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
    // Disrupting, yet no step journaled: the journal was lost, and dpkg may have run.
    tended::v1::StepReport report;
    report.set_lease_id(lease.id());
    report.set_step(kDpkgStep);
    report.set_state(tended::v1::STEP_STATE_INTERRUPTED);
    report.set_message(
        "the agent lost its journal while the lease was disrupting; dpkg may have run");
    *report.mutable_end_time() = ToProtoTimestamp(now);
    *journal_.mutable_step_report() = report;
    journal_.set_step_report_delivered(false);
    (void)SaveJournal();
    return DeliverStepReport();
  }
  if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED) {
    SetStatus(absl::StrCat("holding ", lease.id(), "; waiting for the coordinator"));
    return absl::InfiniteFuture();
  }
  if (os_->busy()) return now + absl::Seconds(1);  // A refresh is running.
  const std::optional<apt::UpgradePlan>& plan = os_->plan();
  if (!plan.has_value() || plan->upgrades.empty()) {
    tended::v1::ReleaseLeaseRequest release;
    release.set_lease_id(lease.id());
    release.set_fencing_token(lease.fencing_token());
    release.set_reason("no OS upgrade is planned any more");
    auto released = deps_.coordinator->ReleaseLease(release);
    if (released.ok() || absl::IsFailedPrecondition(released.status())) {
      ClearLease("no OS upgrade is planned any more");
      return now;
    }
    Disconnected(released.status());
    return next_connect_attempt_;
  }

  // The fence, right before dpkg: nothing can be checked once it runs.
  tended::v1::BeginDisruptionRequest begin;
  begin.set_lease_id(lease.id());
  begin.set_fencing_token(lease.fencing_token());
  begin.set_step(kDpkgStep);
  auto begun = deps_.coordinator->BeginDisruption(begin);
  if (!begun.ok()) {
    if (absl::IsFailedPrecondition(begun.status())) {
      Log()->error("not upgrading: {}", begun.status().message());
      ClearLease(begun.status().message());
      return now;
    }
    Disconnected(begun.status());
    return next_connect_attempt_;
  }
  auto boot_id = facts_reader_.ReadBootId();
  *journal_.mutable_lease() = begun->lease();
  journal_.set_step(kDpkgStep);
  journal_.set_boot_id_before_step(boot_id.ok() ? *boot_id : "");
  *journal_.mutable_step_start_time() = ToProtoTimestamp(now);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    // Without the journal a crash could not tell that dpkg ran: do not start it.
    Log()->error("not upgrading: cannot journal the step: {}", saved.ToString());
    *journal_.mutable_lease() = lease;
    journal_.clear_step();
    return now + kRetrySoon;
  }
  applying_ = *plan;
  SetStatus(absl::StrCat("upgrading ", DescribePlan(applying_), " under ", lease.id()));
  os_->StartApply(applying_);
  return now;
}

}  // namespace tended::agent
