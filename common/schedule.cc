#include "common/schedule.h"

#include <array>
#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/status_macros.h"

namespace tended {
namespace {

struct FieldSpec {
  const char* name;
  int min;
  int max;
  absl::Span<const char* const> names;  // names[i] stands for min + i.
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const FieldSpec kFields[] = {
    {"minute", 0, 59, {}},
    {"hour", 0, 23, {}},
    {"day-of-month", 1, 31, {}},
    {"month", 1, 12, kMonthNames},
    // 7 is Sunday too; folded into 0 after parsing.
    {"day-of-week", 0, 7, kDayNames},
};

// One value: a number or (where the field has them) a three-letter name.
absl::StatusOr<int> ParseValue(const FieldSpec& field, absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("a value is missing");
  int value = 0;
  if (absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
    if (text.size() > 4 || !absl::SimpleAtoi(text, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a number"));
    }
    if (value < field.min || value > field.max) {
      return absl::InvalidArgumentError(
          absl::StrCat(value, " is out of range ", field.min, "-", field.max));
    }
    return value;
  }
  const std::string lower = absl::AsciiStrToLower(text);
  for (size_t i = 0; i < field.names.size(); ++i) {
    if (lower == field.names[i]) return field.min + static_cast<int>(i);
  }
  if (field.names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a number"));
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is neither a number nor a name (",
                                                 field.names.front(), "..", field.names.back(),
                                                 ")"));
}

// One comma-separated item: *, a, a-b, each optionally /step.
absl::Status ParseItem(const FieldSpec& field, absl::string_view item, std::vector<bool>& set) {
  if (item.empty()) return absl::InvalidArgumentError("an empty list item");
  absl::string_view range = item;
  int step = 1;
  bool stepped = false;
  if (size_t slash = item.find('/'); slash != absl::string_view::npos) {
    range = item.substr(0, slash);
    absl::string_view step_text = item.substr(slash + 1);
    if (step_text.empty() || step_text.size() > 4 || !absl::SimpleAtoi(step_text, &step) ||
        step_text[0] == '+' || step_text[0] == '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("step \"", step_text, "\" in \"", item, "\" is not a number"));
    }
    if (step <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("step 0 in \"", item, "\""));
    }
    stepped = true;
  }
  int first = field.min;
  int last = field.max;
  if (range != "*") {
    const size_t dash = range.find('-');
    auto value = [&](absl::string_view text) -> absl::StatusOr<int> {
      absl::StatusOr<int> v = ParseValue(field, text);
      if (!v.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            v.status().message(), text == item ? "" : absl::StrCat(" in \"", item, "\"")));
      }
      return v;
    };
    if (dash == absl::string_view::npos) {
      ASSIGN_OR_RETURN(first, value(range));
      // "a/n" runs from a to the field's end; a single value stays alone.
      if (!stepped) last = first;
    } else {
      ASSIGN_OR_RETURN(first, value(range.substr(0, dash)));
      ASSIGN_OR_RETURN(last, value(range.substr(dash + 1)));
      if (first > last) {
        return absl::InvalidArgumentError(
            absl::StrCat("range \"", range, "\" goes backwards (", first, " is after ", last, ")"));
      }
    }
  }
  for (int v = first; v <= last; v += step) set[v] = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<bool>> ParseField(const FieldSpec& field, absl::string_view text) {
  std::vector<bool> set(field.max + 1, false);
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::Status status = ParseItem(field, item, set);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field.name, " field \"", text, "\": ", status.message()));
    }
  }
  return set;
}

template <size_t N>
std::bitset<N> ToBits(const std::vector<bool>& set) {
  std::bitset<N> bits;
  for (size_t i = 0; i < N && i < set.size(); ++i) bits[i] = set[i];
  return bits;
}

bool ValidZoneName(absl::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '/' || absl::StrContains(name, "..")) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '-' &&
        c != '+') {
      return false;
    }
  }
  return true;
}

int DaysInMonth(int month) {
  constexpr std::array<int, 13> kDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month];
}

}  // namespace

absl::StatusOr<Schedule> Schedule::Parse(absl::string_view expression,
                                         absl::string_view time_zone) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("schedule \"", expression, "\": ", what));
  };
  std::vector<absl::string_view> fields =
      absl::StrSplit(expression, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5) {
    return error(absl::StrCat(
        "expected 5 fields (minute hour day-of-month month day-of-week), got ", fields.size()));
  }
  Schedule schedule;
  std::array<std::vector<bool>, 5> sets;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<std::vector<bool>> set = ParseField(kFields[i], fields[i]);
    if (!set.ok()) return error(set.status().message());
    sets[i] = *std::move(set);
  }
  if (sets[4][7]) sets[4][0] = true;
  schedule.minutes_ = ToBits<60>(sets[0]);
  schedule.hours_ = ToBits<24>(sets[1]);
  schedule.days_of_month_ = ToBits<32>(sets[2]);
  schedule.months_ = ToBits<13>(sets[3]);
  schedule.days_of_week_ = ToBits<7>(sets[4]);
  schedule.day_of_month_star_ = fields[2][0] == '*';
  schedule.day_of_week_star_ = fields[4][0] == '*';

  // With the day of the week unrestricted, some chosen day must exist in some chosen month.
  if (schedule.day_of_week_star_ || schedule.day_of_month_star_) {
    bool possible = false;
    for (int month = 1; month <= 12 && !possible; ++month) {
      if (!schedule.months_[month]) continue;
      for (int day = 1; day <= DaysInMonth(month) && !possible; ++day) {
        possible = schedule.days_of_month_[day];
      }
    }
    if (!possible) {
      return error(absl::StrCat("day-of-month \"", fields[2], "\" never occurs in month \"",
                                fields[3], "\", so it would never run"));
    }
  }

  if (time_zone.empty()) return error("no time zone given (e.g. \"UTC\", \"Europe/London\")");
  if (!ValidZoneName(time_zone) || !absl::LoadTimeZone(time_zone, &schedule.zone_)) {
    return error(absl::StrCat("unknown time zone \"", time_zone,
                              "\" (expected an IANA name such as \"UTC\" or \"Europe/London\")"));
  }
  schedule.expression_ = std::string(expression);
  schedule.time_zone_name_ = std::string(time_zone);
  return schedule;
}

bool Schedule::DayMatches(const absl::CivilDay& day) const {
  if (!months_[day.month()]) return false;
  const bool dom = days_of_month_[day.day()];
  // absl::Weekday counts from Monday = 0; cron from Sunday = 0.
  const bool dow = days_of_week_[(static_cast<int>(absl::GetWeekday(day)) + 1) % 7];
  if (day_of_month_star_ || day_of_week_star_) return dom && dow;
  return dom || dow;
}

absl::Time Schedule::Next(absl::Time after) const {
  if (after == absl::InfiniteFuture() || after == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  const absl::CivilDay start = absl::ToCivilDay(after, zone_);
  const absl::CivilDay end = start + kMaxYearsAhead * 366;
  for (absl::CivilDay day = start; day <= end; ++day) {
    if (!DayMatches(day)) continue;
    for (int hour = 0; hour < 24; ++hour) {
      if (!hours_[hour]) continue;
      for (int minute = 0; minute < 60; ++minute) {
        if (!minutes_[minute]) continue;
        const absl::TimeZone::TimeInfo info =
            zone_.At(absl::CivilSecond(day.year(), day.month(), day.day(), hour, minute, 0));
        // Skipped: the first instant after the gap. Repeated: the first occurrence only.
        const absl::Time at =
            info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre;
        if (at > after) return at;
      }
    }
  }
  return absl::InfiniteFuture();
}

}  // namespace tended
