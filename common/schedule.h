// A cron-like schedule in an IANA time zone: "minute hour day-of-month month day-of-week"
// (numbers, *, lists a,b, ranges a-b, steps */n, a-b/n and a/n, names jan..dec and sun..sat,
// 7 also Sunday), e.g. "0 12 * * sun" in UTC. Next() is safe across daylight saving time: a
// local time skipped by a spring-forward gap runs once, at the first instant after the gap;
// a local time repeated by a fall-back runs once, at its first occurrence. When both
// day-of-month and day-of-week are restricted (neither begins with "*"), a day matches when
// either does, as in Vixie cron.
#ifndef TENDED_COMMON_SCHEDULE_H_
#define TENDED_COMMON_SCHEDULE_H_

#include <bitset>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tended {

class Schedule {
 public:
  // How far ahead Next() looks before giving up.
  static constexpr int kMaxYearsAhead = 5;

  // INVALID_ARGUMENT naming the field and the value at fault, an unknown time zone, or a
  // schedule that can never run (such as "0 0 30 2 *").
  static absl::StatusOr<Schedule> Parse(absl::string_view expression, absl::string_view time_zone);

  // The first run strictly after `after`; absl::InfiniteFuture() when there is none within
  // kMaxYearsAhead years (or `after` is infinite).
  absl::Time Next(absl::Time after) const;

  const std::string& expression() const { return expression_; }
  const std::string& time_zone_name() const { return time_zone_name_; }

 private:
  Schedule() = default;
  bool DayMatches(const absl::CivilDay& day) const;

  std::string expression_;
  std::string time_zone_name_;
  absl::TimeZone zone_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31.
  std::bitset<13> months_;         // 1..12.
  std::bitset<7> days_of_week_;    // 0 (Sunday)..6.
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
};

}  // namespace tended

#endif  // TENDED_COMMON_SCHEDULE_H_
