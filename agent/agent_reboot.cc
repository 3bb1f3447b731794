// The Agent under a REBOOT lease: prove the lease (BeginDisruption "reboot"), journal the
// step, write the gated sentinel, pause, prove it again right before the act, reboot; then
// wait for the coordinator to verify the new boot and release. A lease whose reboot is no
// longer needed before it happened is given back instead.
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace tended::agent {
namespace {

using tended::v1::Lease;

constexpr absl::Duration kRetrySoon = absl::Seconds(5);

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

}  // namespace

absl::Time Agent::HandleRebootLease(const std::string& boot_id, bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  const Lease& lease = journal_.lease();
  if (journal_.step() == kRebootStep) {
    if (!reboot_at_.has_value()) {
      // Restarted during the pause before the reboot: take the pause again.
      reboot_at_ = now + config_.reboot.delay;
    }
    if (now >= *reboot_at_) return FinishReboot(reboot_needed);
    return *reboot_at_;
  }
  if (boot_id != lease.boot_id_at_grant() || lease.phase() == tended::v1::LEASE_PHASE_VERIFYING) {
    SetStatus(
        absl::StrCat("rebooted under ", lease.id(), "; waiting for the coordinator to verify"));
    return absl::InfiniteFuture();
  }
  if (!reboot_needed) {
    // Same boot as at the grant and no reboot step journaled: the node did not reboot under
    // the lease. Disrupting all the same means the lease was adopted after its
    // BeginDisruption (the journal was lost); either way nothing is left to do.
    return ReturnLease(lease.phase() == tended::v1::LEASE_PHASE_GRANTED
                           ? "the reboot-required sentinel went away"
                           : absl::StrCat("the node did not reboot under the lease (boot id ",
                                          boot_id,
                                          " as at the grant) and no reboot is required any more"));
  }
  if (lease.preparing()) {
    // The coordinator cordons and drains first; the lease comes again when it is done.
    SetStatus(absl::StrCat("holding ", lease.id(), "; waiting for the coordinator to drain"));
    return absl::InfiniteFuture();
  }
  if (now < next_lease_act_) return next_lease_act_;
  return StartReboot(boot_id);
}

absl::Time Agent::StartReboot(const std::string& boot_id) {
  const absl::Time now = deps_.clock->Now();
  if (std::optional<absl::Time> wake = WakeUnlessGo(BeginDisruption(kRebootStep, {}))) return *wake;
  const Lease& lease = journal_.lease();
  journal_.set_step(kRebootStep);
  journal_.set_boot_id_before_step(boot_id);
  *journal_.mutable_step_start_time() = ToProtoTimestamp(now);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    // Without the journal a crash could reboot twice: do not go on.
    Log()->error("not rebooting: cannot journal the step: {}", saved.ToString());
    journal_.clear_step();
    return now + kRetrySoon;
  }
  std::string gated = root_.Resolve(config_.reboot.gated_sentinel);
  absl::Status written = MakeDirectories(Dirname(gated));
  if (written.ok()) written = WriteFileAtomically(gated, absl::StrCat(lease.id(), "\n"));
  if (!written.ok()) Log()->warn("cannot write the gated sentinel: {}", written.ToString());
  reboot_at_ = now + config_.reboot.delay;
  SetStatus(absl::StrCat("rebooting under ", lease.id(), " in ",
                         absl::FormatDuration(config_.reboot.delay)));
  return *reboot_at_;
}

absl::Time Agent::FinishReboot(bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  if (!reboot_needed) {
    // The need went away during the pause: no reboot, and the lease goes back.
    Log()->info("not rebooting under {}: no reboot is required any more", journal_.lease().id());
    journal_.clear_step();
    journal_.clear_boot_id_before_step();
    journal_.clear_step_start_time();
    reboot_at_.reset();
    if (absl::Status saved = SaveJournal(); !saved.ok()) {
      Log()->error("cannot journal the step's end: {}", saved.ToString());
    }
    if (absl::Status removed = RemoveFileIfExists(root_.Resolve(config_.reboot.gated_sentinel));
        !removed.ok()) {
      Log()->warn("{}", removed.ToString());
    }
    return ReturnLease("no reboot is required any more; the node did not reboot");
  }
  // The last fence check, right before the act. Unless it says go, never reboot on a guess.
  const Fence fence = BeginDisruption(kRebootStep, {});
  if (fence == Fence::kWait) reboot_at_ = next_lease_act_;
  if (std::optional<absl::Time> wake = WakeUnlessGo(fence)) return *wake;
  const Lease lease = journal_.lease();
  absl::Status rebooted = deps_.rebooter->Reboot(absl::StrCat("tended lease ", lease.id()));
  if (!rebooted.ok()) {
    Log()->error("reboot failed: {}", rebooted.ToString());
    reboot_at_ = now + config_.check_period;
    return *reboot_at_;
  }
  if (!deps_.rebooter->simulated()) {
    awaiting_host_reboot_ = true;
    SetStatus("reboot requested from logind; going down");
    return now + absl::Minutes(1);
  }
  // A simulated reboot: carry on as the freshly started agent of the next boot would.
  SimulateRestartForTest();
  return now;
}

}  // namespace tended::agent
