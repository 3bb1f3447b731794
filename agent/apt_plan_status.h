// What the agent's latest apt plan found, summed up for the operator (the /metrics
// endpoint): how many upgrades it would install and how many of them come from a security
// archive, why the others are kept back (by class), when it was computed, and whether the
// latest attempt failed. OsUpgradeStep publishes; the metrics exporter reads at scrape time
// from another thread. Thread-safe.
#ifndef TENDED_AGENT_APT_PLAN_STATUS_H_
#define TENDED_AGENT_APT_PLAN_STATUS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/apt/package_manager.h"

namespace tended::agent {

// The classes of KeptPackage::reason, as the metrics' `reason` label names them, in order.
inline constexpr const char* kKeptReasons[] = {"held",         "blacklisted", "not_whitelisted",
                                               "origin",       "untrusted",   "app_restart",
                                               "dependencies", "other"};

// The class of a kept-back reason the apt engine gave (agent/apt/engine/planner.cc words
// them): "held (dpkg hold)" is "held", "blacklisted (...)" "blacklisted", and so on; a
// reason it does not know is "other".
std::string KeptReasonClass(absl::string_view reason);

// True when an upgrade's origin ("o=Debian,a=bookworm-security,...", FormatOrigin) is a
// security archive: its archive or codename ends in "-security" or "/updates" (Debian
// before bullseye), or its label contains "Security" (Debian-Security).
bool IsSecurityOrigin(absl::string_view origin);

struct AptPlanSummary {
  // The latest attempt, successful or not.
  absl::Time attempt_time = absl::InfinitePast();
  bool failed = false;
  // The latest plan that was computed; unset before the first one.
  std::optional<absl::Time> plan_time;
  int upgrades = 0;
  int security_upgrades = 0;
  // Every class of kKeptReasons, 0 when none.
  std::map<std::string, int> kept;
};

// Fills the counts of `summary` from `plan`.
void SummarizePlan(const apt::UpgradePlan& plan, AptPlanSummary* summary);

class AptPlanStatus {
 public:
  void PlanComputed(const apt::UpgradePlan& plan, absl::Time at);
  // The counts of the last computed plan stay; `failed` says they may be stale.
  void PlanFailed(absl::Time at);
  // Forgets everything, as a process restart would.
  void Reset();
  // Unset before the first attempt.
  std::optional<AptPlanSummary> Get() const;

 private:
  mutable absl::Mutex mutex_;
  std::optional<AptPlanSummary> summary_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_APT_PLAN_STATUS_H_
