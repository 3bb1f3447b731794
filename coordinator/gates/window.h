// Maintenance-window arithmetic behind the window gate: turns weekday/time-of-day windows in
// IANA zones into concrete instants around `now`, merges them into one union, and says
// whether a step of a given length may start now or when it next may. Also the small
// formatting helpers every gate uses to write reasons people can read. Pure functions.
#ifndef TENDED_COORDINATOR_GATES_WINDOW_H_
#define TENDED_COORDINATOR_GATES_WINDOW_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate.h"

namespace tended::coordinator {

// When a set of maintenance windows next admits a step of `expected_duration`.
struct WindowStatus {
  bool open = false;
  // Set when open: the end of the window now in force.
  std::optional<absl::Time> closes_at;
  // Set when closed: the earliest time a step of the expected length could start.
  std::optional<absl::Time> next_open;
  std::string description;  // "Mon-Fri 02:00-06:00 Europe/London"
};

// Empty `windows` means always open. A window crossing midnight belongs to the weekday it
// opens on. Local times that a DST change skips or repeats are resolved so the window
// never opens earlier or closes later than its civil times say.
WindowStatus EvaluateWindows(const std::vector<MaintenanceWindow>& windows,
                             absl::Duration expected_duration, absl::Time now);

// The window gate: a step of the kind's expected length must fit before the window closes.
GateOutcome WindowGate(const LeasePolicy& policy, absl::Time now);

// How many days ahead EvaluateWindows looks for the next opening.
inline constexpr int kWindowSearchDays = 15;

// EvaluateWindows' status plus a sentence explaining it, for the window gate.
struct WindowEvaluation {
  WindowStatus status;
  std::string reason;
};

WindowEvaluation EvaluateWindowsWithReason(const std::vector<MaintenanceWindow>& windows,
                                           absl::Duration expected_duration, absl::Time now);

// The first instant at which the local civil time in `zone` is at or after `civil`: the
// instant itself when unique, the transition when a DST change skips it, the earlier
// occurrence when a DST change repeats it.
absl::Time FirstInstantAtOrAfter(absl::CivilSecond civil, absl::TimeZone zone);

// "Mon-Fri 02:00-06:00 Europe/London".
std::string DescribeWindow(const MaintenanceWindow& window);
// "Mon-Fri", "Mon,Wed,Sat", "daily", "no days".
std::string DescribeWeekdays(const std::vector<absl::Weekday>& days);
// "2026-03-30 06:00 BST".
std::string FormatLocalTime(absl::Time t, absl::TimeZone zone);
// "2026-03-30 05:00 UTC".
std::string FormatUtcTime(absl::Time t);
// "2h30m", "45s", "3d4h".
std::string FormatDurationForPeople(absl::Duration d);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_WINDOW_H_
