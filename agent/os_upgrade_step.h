// The agent's OS upgrade machinery around the apt engine: refreshes the lists and the plan
// on the agent's schedule, turns the plan into the facts the coordinator gates on, and runs
// Apply. In the daemon the long calls (list refresh, plan, Apply) run on a worker thread so
// the agent's loop keeps answering (and feeding systemd's watchdog) while dpkg runs; tests
// and the simulation run them inline for determinism. The lease logic that decides when to
// Apply lives in the Agent (agent_os_upgrade.cc).
//
// Thread-compatible: call from the agent's loop only. `wake` is called from the worker.
#ifndef TENDED_AGENT_OS_UPGRADE_STEP_H_
#define TENDED_AGENT_OS_UPGRADE_STEP_H_

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/apt/package_manager.h"
#include "agent/apt_plan_status.h"
#include "common/clock.h"
#include "tended/v1/types.pb.h"

namespace tended::agent {

inline constexpr char kDpkgStep[] = "dpkg";
// The planned list reported to the coordinator is capped at this many entries.
inline constexpr int kMaxPlannedInFacts = 2000;

// Hex FNV-1a 64 of the sorted "package=to\n" lines; "" when nothing is planned.
std::string PlanDigest(const apt::UpgradePlan& plan);

// "3 OS upgrades: a 1.1, b 2.0, c 3.0" (the first few named), for statuses and reasons.
std::string DescribePlan(const apt::UpgradePlan& plan);

// The plan's upgrades as the wire names them (BeginDisruptionRequest.packages), and back:
// the plan an Apply gets from exactly that set.
google::protobuf::RepeatedPtrField<tended::v1::PackageChange> PackageChangesOf(
    const apt::UpgradePlan& plan);
apt::UpgradePlan PlanOf(
    const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& changes);

// The report of a finished Apply: SUCCEEDED with what was installed, or FAILED with why.
tended::v1::StepReport StepReportFor(const absl::StatusOr<apt::ApplyResult>& result,
                                     const apt::UpgradePlan& requested);

class OsUpgradeStep {
 public:
  struct Options {
    absl::Duration plan_interval = absl::Hours(1);
    absl::Duration update_interval = absl::Hours(12);
    // Run refreshes and Apply on a worker thread.
    bool background = true;
    // Optional: told every plan's outcome (for /metrics); must outlive this.
    AptPlanStatus* status = nullptr;
  };

  // `packages` and `clock` must outlive this.
  OsUpgradeStep(apt::PackageManager* packages, Options options, const Clock& clock,
                std::function<void()> wake);
  ~OsUpgradeStep();

  // `dpkg --configure -a` when dpkg was interrupted; synchronous, for the agent's start.
  absl::StatusOr<bool> RepairInterruptedDpkg();

  // Starts a refresh (the lists when due, then the plan) when one is due and nothing runs.
  // Returns when the next refresh is due.
  absl::Time RefreshPlanIfDue(absl::Time now);
  // The next RefreshPlanIfDue plans again (after an Apply, the plan is stale).
  void RequestReplan() { next_plan_ = absl::InfinitePast(); }
  // True once after a refresh produced a plan (or failed): the facts changed.
  bool TakePlanChanged();

  // The latest plan; nullopt before the first one.
  const std::optional<apt::UpgradePlan>& plan() const { return plan_; }
  void FillFacts(tended::v1::OsUpgradeFacts* facts) const;

  // A refresh or Apply is running on the worker.
  bool busy();

  // Starts installing `plan`. Must not be busy.
  void StartApply(const apt::UpgradePlan& plan);
  // The latest progress since the last call.
  std::optional<apt::ApplyProgress> TakeProgress();
  // The result once Apply ended (once).
  std::optional<absl::StatusOr<apt::ApplyResult>> TakeApplyResult();
  // Forgets everything in memory, as a process restart would.
  void Reset();

 private:
  void Launch(std::function<void()> job);
  // Moves a finished refresh into plan_.
  void Collect();

  apt::PackageManager* packages_;
  const Options options_;
  const Clock& clock_;
  std::function<void()> wake_;
  std::thread worker_;

  absl::Time next_plan_ = absl::InfinitePast();
  absl::Time next_update_ = absl::InfinitePast();
  std::optional<apt::UpgradePlan> plan_;
  absl::Time plan_time_ = absl::InfinitePast();
  std::string plan_error_;
  bool plan_changed_ = false;

  absl::Mutex mutex_;
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<absl::StatusOr<apt::UpgradePlan>> refreshed_ ABSL_GUARDED_BY(mutex_);
  std::optional<apt::ApplyProgress> progress_ ABSL_GUARDED_BY(mutex_);
  std::optional<absl::StatusOr<apt::ApplyResult>> applied_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_OS_UPGRADE_STEP_H_
