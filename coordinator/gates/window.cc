#include "coordinator/gates/window.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tended::coordinator {
namespace {

// One concrete opening of a window: [open, close), with the zone each end is shown in.
struct Interval {
  absl::Time open;
  absl::Time close;
  absl::TimeZone open_zone;
  absl::TimeZone close_zone;
};

int MondayBasedIndex(absl::Weekday day) {
  switch (day) {
    case absl::Weekday::monday:
      return 0;
    case absl::Weekday::tuesday:
      return 1;
    case absl::Weekday::wednesday:
      return 2;
    case absl::Weekday::thursday:
      return 3;
    case absl::Weekday::friday:
      return 4;
    case absl::Weekday::saturday:
      return 5;
    case absl::Weekday::sunday:
      return 6;
  }
  return 0;
}

constexpr std::array<const char*, 7> kDayNames = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

std::string FormatTimeOfDay(absl::Duration since_midnight) {
  const int64_t minutes = absl::ToInt64Minutes(since_midnight);
  const int64_t seconds = absl::ToInt64Seconds(since_midnight) % 60;
  std::string out = absl::StrFormat("%02d:%02d", minutes / 60, minutes % 60);
  if (seconds != 0) absl::StrAppendFormat(&out, ":%02d", seconds);
  return out;
}

bool ListsDay(const MaintenanceWindow& window, absl::Weekday day) {
  return std::find(window.days.begin(), window.days.end(), day) != window.days.end();
}

// Every opening of `window` whose opening day lies within [from, to] in its own zone.
void AppendIntervals(const MaintenanceWindow& window, absl::CivilDay from, absl::CivilDay to,
                     std::vector<Interval>& out) {
  const int64_t start_seconds = absl::ToInt64Seconds(window.start);
  const int64_t end_seconds = absl::ToInt64Seconds(window.end);
  const bool crosses_midnight = window.end <= window.start;
  for (absl::CivilDay day = from; day <= to; ++day) {
    if (!ListsDay(window, absl::GetWeekday(day))) continue;
    const absl::CivilSecond start = absl::CivilSecond(day) + start_seconds;
    const absl::CivilDay end_day = crosses_midnight ? day + 1 : day;
    const absl::CivilSecond end = absl::CivilSecond(end_day) + end_seconds;
    const absl::Time open = FirstInstantAtOrAfter(start, window.time_zone);
    const absl::Time close = FirstInstantAtOrAfter(end, window.time_zone);
    if (close <= open) continue;
    out.push_back({open, close, window.time_zone, window.time_zone});
  }
}

// Sorts and merges overlapping or touching intervals, so the union is a list of disjoint
// spans in time order.
std::vector<Interval> MergeIntervals(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.open < b.open; });
  std::vector<Interval> merged;
  for (const Interval& interval : intervals) {
    if (!merged.empty() && interval.open <= merged.back().close) {
      if (interval.close > merged.back().close) {
        merged.back().close = interval.close;
        merged.back().close_zone = interval.close_zone;
      }
      continue;
    }
    merged.push_back(interval);
  }
  return merged;
}

std::string DescribeWindows(const std::vector<MaintenanceWindow>& windows) {
  std::vector<std::string> parts;
  parts.reserve(windows.size());
  for (const MaintenanceWindow& window : windows) parts.push_back(DescribeWindow(window));
  return absl::StrJoin(parts, "; ");
}

}  // namespace

absl::Time FirstInstantAtOrAfter(absl::CivilSecond civil, absl::TimeZone zone) {
  const absl::TimeZone::TimeInfo info = zone.At(civil);
  switch (info.kind) {
    case absl::TimeZone::TimeInfo::UNIQUE:
      return info.pre;
    case absl::TimeZone::TimeInfo::SKIPPED:
      return info.trans;
    case absl::TimeZone::TimeInfo::REPEATED:
      return info.pre;
  }
  return info.pre;
}

std::string DescribeWeekdays(const std::vector<absl::Weekday>& days) {
  std::array<bool, 7> listed{};
  for (absl::Weekday day : days) listed[MondayBasedIndex(day)] = true;
  if (std::all_of(listed.begin(), listed.end(), [](bool b) { return b; })) return "daily";
  std::vector<std::string> parts;
  int i = 0;
  while (i < 7) {
    if (!listed[i]) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < 7 && listed[j + 1]) ++j;
    if (j - i >= 2) {
      parts.push_back(absl::StrCat(kDayNames[i], "-", kDayNames[j]));
    } else {
      for (int k = i; k <= j; ++k) parts.push_back(kDayNames[k]);
    }
    i = j + 1;
  }
  if (parts.empty()) return "no days";
  return absl::StrJoin(parts, ",");
}

std::string DescribeWindow(const MaintenanceWindow& window) {
  const std::string zone =
      window.time_zone_name.empty() ? window.time_zone.name() : window.time_zone_name;
  return absl::StrCat(DescribeWeekdays(window.days), " ", FormatTimeOfDay(window.start), "-",
                      FormatTimeOfDay(window.end), " ", zone);
}

std::string FormatLocalTime(absl::Time t, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M %Z", t, zone);
}

std::string FormatUtcTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone());
}

std::string FormatDurationForPeople(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "forever";
  if (d < absl::ZeroDuration()) return absl::StrCat("-", FormatDurationForPeople(-d));
  int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds == 0) return "0s";
  // Days only from two days on: "36h" reads better than "1d12h".
  const int64_t days = seconds >= 2 * 86400 ? seconds / 86400 : 0;
  const int64_t hours = (seconds - days * 86400) / 3600;
  const int64_t minutes = seconds / 60 % 60;
  seconds %= 60;
  std::string out;
  if (days > 0) absl::StrAppend(&out, days, "d");
  if (hours > 0) absl::StrAppend(&out, hours, "h");
  if (days == 0 && minutes > 0) absl::StrAppend(&out, minutes, "m");
  if (days == 0 && hours == 0 && seconds > 0) absl::StrAppend(&out, seconds, "s");
  if (out.empty()) out = "0s";
  return out;
}

WindowEvaluation EvaluateWindowsWithReason(const std::vector<MaintenanceWindow>& windows,
                                           absl::Duration expected_duration, absl::Time now) {
  WindowEvaluation result;
  if (windows.empty()) {
    result.status.open = true;
    result.status.description = "always open";
    result.reason = "no maintenance window configured, so it is always open";
    return result;
  }
  result.status.description = DescribeWindows(windows);
  const std::string step = FormatDurationForPeople(expected_duration);

  std::vector<Interval> intervals;
  for (const MaintenanceWindow& window : windows) {
    const absl::CivilDay today = absl::ToCivilDay(now, window.time_zone);
    // Yesterday's opening may cross midnight into today.
    AppendIntervals(window, today - 1, today + kWindowSearchDays, intervals);
  }
  const std::vector<Interval> merged = MergeIntervals(std::move(intervals));
  const bool any_long_enough =
      std::any_of(merged.begin(), merged.end(), [&](const Interval& interval) {
        return interval.close - interval.open >= expected_duration;
      });

  const Interval* current = nullptr;
  const Interval* next = nullptr;
  for (const Interval& interval : merged) {
    if (interval.open <= now && now < interval.close) current = &interval;
    const absl::Time latest_start = interval.close - expected_duration;
    if (interval.close - interval.open < expected_duration || latest_start < now) continue;
    if (next == nullptr) next = &interval;
  }

  if (next != nullptr && next->open <= now) {
    result.status.open = true;
    result.status.closes_at = next->close;
    result.reason = absl::StrCat("maintenance window open until ",
                                 FormatLocalTime(next->close, next->close_zone), " (",
                                 result.status.description, ")");
    return result;
  }

  std::string why;
  if (current != nullptr) {
    why = absl::StrCat("the maintenance window (", result.status.description, ") closes at ",
                       FormatLocalTime(current->close, current->close_zone),
                       ", too soon for a step expected to take ", step);
  } else {
    why = absl::StrCat("outside the maintenance window (", result.status.description, ")");
  }
  if (next != nullptr) {
    result.status.next_open = next->open;
    result.reason = absl::StrCat(why, "; a ", step, " step can next start at ",
                                 FormatLocalTime(next->open, next->open_zone));
  } else if (!any_long_enough && !merged.empty()) {
    result.status.description =
        absl::StrCat(result.status.description, " (never long enough for a ", step, " step)");
    result.reason = absl::StrCat(why, "; no window is long enough for a step expected to take ",
                                 step, ", so it never opens");
  } else {
    result.reason = absl::StrCat(why, "; it does not admit a ", step, " step within the next ",
                                 kWindowSearchDays, " days");
  }
  return result;
}

WindowStatus EvaluateWindows(const std::vector<MaintenanceWindow>& windows,
                             absl::Duration expected_duration, absl::Time now) {
  return EvaluateWindowsWithReason(windows, expected_duration, now).status;
}

GateOutcome WindowGate(const LeasePolicy& policy, absl::Time now) {
  WindowEvaluation evaluation =
      EvaluateWindowsWithReason(policy.windows, policy.expected_duration, now);
  if (evaluation.status.open) return PassGate("window", std::move(evaluation.reason));
  return BlockGate("window", std::move(evaluation.reason), evaluation.status.next_open);
}

}  // namespace tended::coordinator
