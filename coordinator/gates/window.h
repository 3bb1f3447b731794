// Maintenance-window arithmetic behind the window gate: turns weekday/time-of-day windows in
// IANA zones into concrete instants around `now`, merges them into one union, and says
// whether a step of a given length may start now or when it next may. Also the small
// formatting helpers every gate uses to write reasons people can read. Pure functions.
#ifndef TENDED_COORDINATOR_WINDOW_H_
#define TENDED_COORDINATOR_WINDOW_H_

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/core_gates.h"

namespace tended::coordinator {

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

#endif  // TENDED_COORDINATOR_WINDOW_H_
