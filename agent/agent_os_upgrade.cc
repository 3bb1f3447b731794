// The Agent under an OS_UPGRADE lease: prove the lease with BeginDisruption("dpkg") naming
// exactly the packages and versions of the plan at that moment, journal that set with the
// step, install exactly that set, journal the report, deliver it, and leave the release to
// the coordinator's verification. A reboot the packages ask for then follows through the
// REBOOT flow. (The lease is asked for in agent.cc, like every kind's.)
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

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

std::string LastStepPath(const RootPath& root, const AgentConfig& config) {
  return root.Resolve(absl::StrCat(config.state_dir, "/last-os-upgrade.json"));
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
  // What dpkg was started on: some of it may be installed, some not.
  *report.mutable_packages() = journal_.step_packages();
  *report.mutable_start_time() = journal_.step_start_time();
  *report.mutable_end_time() = ToProtoTimestamp(deps_.clock->Now());
  std::string repair =
      !repaired.ok() ? absl::StrCat("dpkg --configure -a failed: ", repaired.status().message())
      : *repaired    ? "dpkg --configure -a repaired it"
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

absl::Time Agent::DeliverStepReport() {
  const absl::Time now = deps_.clock->Now();
  tended::v1::ReportStepRequest request;
  request.set_lease_id(journal_.lease().id());
  request.set_fencing_token(journal_.lease().fencing_token());
  *request.mutable_report() = journal_.step_report();
  request.mutable_report()->set_lease_id(journal_.lease().id());
  request.set_agent_instance_id(instance_id_);
  auto delivered = deps_.coordinator->ReportStep(request);
  if (!delivered.ok()) {
    if (absl::IsInvalidArgument(delivered.status())) {
      // The report itself is malformed; put into the facts it would get them refused too.
      Log()->error("the coordinator refused the step report: {}", delivered.status().ToString());
      ClearLease(delivered.status().message());
      return now;
    }
    if (absl::IsFailedPrecondition(delivered.status())) {
      // A refusal does not prove the lease gone: the renewal below does. The report is not
      // sent again; the facts carry the result for verification.
      Log()->error("the coordinator refused the step report: {}", delivered.status().ToString());
      journal_.set_step_report_delivered(true);
      (void)SaveJournal();
      last_os_step_ = journal_.step_report();
      (void)WriteProtoJsonFile(LastStepPath(root_, config_), last_os_step_);
      next_renew_ = now;
      next_report_ = absl::InfinitePast();
      SetStatus(absl::StrCat("the coordinator refused the report of ", journal_.lease().id(), " (",
                             delivered.status().message(),
                             "); keeping the lease while it holds it"));
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
        request.set_agent_instance_id(instance_id_);
        tended::v1::StepReport* report = request.mutable_report();
        report->set_lease_id(lease.id());
        report->set_step(kDpkgStep);
        report->set_state(tended::v1::STEP_STATE_RUNNING);
        report->set_message(progress->message.empty() ? std::string(StageName(progress->stage))
                                                      : absl::StrCat(StageName(progress->stage),
                                                                     ": ", progress->message));
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
      report = StepReportFor(*result, PlanOf(journal_.step_packages()));
      if (result->ok()) {
        Log()->info("OS upgrade under {}: {}", lease.id(), report.message());
      } else {
        Log()->error("OS upgrade under {} failed: {}", lease.id(), report.message());
      }
    } else {
      report.set_step(kDpkgStep);
      report.set_state(tended::v1::STEP_STATE_INTERRUPTED);
      report.set_message("the dpkg step is journaled but no install ran in this process");
      *report.mutable_packages() = journal_.step_packages();
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
    return ReturnLease("no OS upgrade is planned any more");
  }
  if (now < next_lease_act_) return next_lease_act_;
  return StartOsUpgrade();
}

absl::Time Agent::StartOsUpgrade() {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();
  // The fence, right before dpkg: nothing can be checked once it runs. It names exactly
  // what will be installed, and nothing else is.
  const auto packages = PackageChangesOf(*os_->plan());
  if (std::optional<absl::Time> wake = WakeUnlessGo(BeginDisruption(kDpkgStep, packages)))
    return *wake;
  auto boot_id = facts_reader_.ReadBootId();
  journal_.set_step(kDpkgStep);
  journal_.set_boot_id_before_step(boot_id.ok() ? *boot_id : "");
  *journal_.mutable_step_start_time() = ToProtoTimestamp(now);
  *journal_.mutable_step_packages() = packages;
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    // Without the journal a crash could not tell that dpkg ran: do not start it.
    Log()->error("not upgrading: cannot journal the step: {}", saved.ToString());
    *journal_.mutable_lease() = lease;
    journal_.clear_step();
    journal_.clear_step_packages();
    return now + kRetrySoon;
  }
  const apt::UpgradePlan approved = PlanOf(journal_.step_packages());
  SetStatus(absl::StrCat("upgrading ", DescribePlan(approved), " under ", lease.id()));
  os_->StartApply(approved);
  return now;
}

}  // namespace tended::agent
