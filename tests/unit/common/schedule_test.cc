// Cron-like schedules: field syntax and its errors, day matching, and runs across daylight
// saving time in Europe/London and America/New_York.
#include "common/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace tended {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone());
}

std::string Show(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M %Z", t, absl::UTCTimeZone());
}

Schedule MustParse(const std::string& expression, const std::string& zone = "UTC") {
  absl::StatusOr<Schedule> s = Schedule::Parse(expression, zone);
  EXPECT_TRUE(s.ok()) << expression << ": " << s.status();
  return s.ok() ? *s : *Schedule::Parse("* * * * *", "UTC");
}

std::string ErrorOf(const std::string& expression, const std::string& zone = "UTC") {
  absl::StatusOr<Schedule> s = Schedule::Parse(expression, zone);
  EXPECT_FALSE(s.ok()) << expression << " parsed";
  if (s.ok()) return "";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

TEST(ScheduleTest, TheReferenceRunsSundaysAtNoonUtc) {
  Schedule s = MustParse("0 12 * * sun");
  EXPECT_EQ(s.expression(), "0 12 * * sun");
  EXPECT_EQ(s.time_zone_name(), "UTC");
  // 2026-01-07 is a Wednesday.
  EXPECT_EQ(Show(s.Next(Utc(2026, 1, 7, 9, 0))), "2026-01-11 12:00 UTC");
  // Strictly after: from a run, the next Sunday.
  EXPECT_EQ(Show(s.Next(Utc(2026, 1, 11, 12, 0))), "2026-01-18 12:00 UTC");
  EXPECT_EQ(Show(s.Next(Utc(2026, 1, 11, 11, 59) + absl::Seconds(59))), "2026-01-11 12:00 UTC");
  EXPECT_EQ(s.Next(Utc(2026, 1, 11, 12, 0) - absl::Nanoseconds(1)), Utc(2026, 1, 11, 12, 0));
}

TEST(ScheduleTest, ListsRangesStepsAndNames) {
  Schedule s = MustParse("*/20 9-10 * JAN-mar MON-fri");
  absl::Time t = Utc(2026, 1, 2, 10, 30);  // A Friday.
  std::vector<std::string> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(Show(t = s.Next(t)));
  EXPECT_THAT(runs, ::testing::ElementsAre("2026-01-02 10:40 UTC", "2026-01-05 09:00 UTC",
                                           "2026-01-05 09:20 UTC", "2026-01-05 09:40 UTC"));
  // a-b/n, a/n and lists.
  s = MustParse("5-20/5,58 23/1 1 * *");
  t = Utc(2026, 1, 1, 0, 0);
  runs.clear();
  for (int i = 0; i < 6; ++i) runs.push_back(Show(t = s.Next(t)));
  EXPECT_THAT(runs, ::testing::ElementsAre("2026-01-01 23:05 UTC", "2026-01-01 23:10 UTC",
                                           "2026-01-01 23:15 UTC", "2026-01-01 23:20 UTC",
                                           "2026-01-01 23:58 UTC", "2026-02-01 23:05 UTC"));
  // Only December: from February, the next run is in December.
  EXPECT_EQ(Show(MustParse("0 0 1 dec *").Next(Utc(2026, 2, 1, 0, 0))), "2026-12-01 00:00 UTC");
}

TEST(ScheduleTest, SevenAndZeroAreBothSunday) {
  EXPECT_EQ(Show(MustParse("0 0 * * 7").Next(Utc(2026, 1, 7, 0, 0))), "2026-01-11 00:00 UTC");
  EXPECT_EQ(Show(MustParse("0 0 * * 0").Next(Utc(2026, 1, 7, 0, 0))), "2026-01-11 00:00 UTC");
  EXPECT_EQ(Show(MustParse("0 0 * * 6-7").Next(Utc(2026, 1, 7, 0, 0))), "2026-01-10 00:00 UTC");
}

TEST(ScheduleTest, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // 2026-01-01 is a Thursday: Friday the 2nd comes before the 13th.
  EXPECT_EQ(Show(MustParse("0 0 13 * fri").Next(Utc(2026, 1, 1, 0, 0))), "2026-01-02 00:00 UTC");
  EXPECT_EQ(Show(MustParse("0 0 13 * fri").Next(Utc(2026, 1, 10, 0, 0))), "2026-01-13 00:00 UTC");
  // Only one restricted: that one alone.
  EXPECT_EQ(Show(MustParse("0 0 13 * *").Next(Utc(2026, 1, 1, 0, 0))), "2026-01-13 00:00 UTC");
  // A day-of-month beginning with "*" counts as unrestricted: both must match.
  EXPECT_EQ(Show(MustParse("0 0 */2 * fri").Next(Utc(2026, 1, 1, 0, 0))), "2026-01-09 00:00 UTC");
}

TEST(ScheduleTest, FebruaryTheTwentyNinthWaitsForALeapYear) {
  Schedule s = MustParse("0 6 29 2 *");
  EXPECT_EQ(Show(s.Next(Utc(2026, 1, 1, 0, 0))), "2028-02-29 06:00 UTC");
  EXPECT_EQ(Show(s.Next(Utc(2028, 2, 29, 6, 0))), "2032-02-29 06:00 UTC");
  // 2100 is not a leap year: eight years to the next one, beyond the search bound.
  EXPECT_EQ(s.Next(Utc(2096, 3, 1, 0, 0)), absl::InfiniteFuture());
  EXPECT_EQ(s.Next(absl::InfiniteFuture()), absl::InfiniteFuture());
  // "the 29th or a Monday" is fine in any year.
  EXPECT_EQ(Show(MustParse("0 6 29 2 mon").Next(Utc(2026, 2, 1, 0, 0))), "2026-02-02 06:00 UTC");
}

TEST(ScheduleTest, LondonSpringForwardRunsASkippedTimeOnceAfterTheGap) {
  // 2026-03-29 01:00 GMT becomes 02:00 BST: 01:30 does not exist that night.
  Schedule s = MustParse("30 1 * * *", "Europe/London");
  absl::Time t = s.Next(Utc(2026, 3, 28, 12, 0));
  EXPECT_EQ(Show(t), "2026-03-29 01:00 UTC");  // 02:00 BST, the first instant after the gap.
  EXPECT_EQ(Show(s.Next(t)), "2026-03-30 00:30 UTC");  // 01:30 BST.
  // Every time inside the gap maps to that same instant: it runs once.
  Schedule every_ten = MustParse("*/10 1 29 3 *", "Europe/London");
  t = every_ten.Next(Utc(2026, 3, 29, 0, 0));
  EXPECT_EQ(Show(t), "2026-03-29 01:00 UTC");
  EXPECT_EQ(Show(every_ten.Next(t)), "2027-03-29 00:00 UTC");  // 01:00 BST a year later.
}

TEST(ScheduleTest, LondonFallBackRunsARepeatedTimeOnlyTheFirstTime) {
  // 2026-10-25 02:00 BST becomes 01:00 GMT: 01:30 happens twice.
  Schedule s = MustParse("30 1 * * *", "Europe/London");
  absl::Time t = s.Next(Utc(2026, 10, 24, 12, 0));
  EXPECT_EQ(Show(t), "2026-10-25 00:30 UTC");          // 01:30 BST.
  EXPECT_EQ(Show(s.Next(t)), "2026-10-26 01:30 UTC");  // Not 01:30 GMT on the 25th.
  // From inside the second pass of the hour, too.
  EXPECT_EQ(Show(s.Next(Utc(2026, 10, 25, 1, 10))), "2026-10-26 01:30 UTC");
}

TEST(ScheduleTest, NewYorkAcrossBothChanges) {
  // 2026-03-08 02:00 EST becomes 03:00 EDT.
  Schedule s = MustParse("30 2 * * *", "America/New_York");
  EXPECT_EQ(Show(s.Next(Utc(2026, 3, 7, 12, 0))), "2026-03-08 07:00 UTC");  // 03:00 EDT.
  EXPECT_EQ(Show(s.Next(Utc(2026, 3, 8, 7, 0))), "2026-03-09 06:30 UTC");   // 02:30 EDT.
  Schedule every_minute = MustParse("* * * * *", "America/New_York");
  EXPECT_EQ(Show(every_minute.Next(Utc(2026, 3, 8, 6, 59))), "2026-03-08 07:00 UTC");

  // 2026-11-01 02:00 EDT becomes 01:00 EST: the half hours of 01:xx run in EDT only.
  Schedule half_hours = MustParse("*/30 * * * *", "America/New_York");
  absl::Time t = Utc(2026, 11, 1, 4, 59);
  std::vector<std::string> runs;
  for (int i = 0; i < 4; ++i) runs.push_back(Show(t = half_hours.Next(t)));
  EXPECT_THAT(runs, ::testing::ElementsAre("2026-11-01 05:00 UTC", "2026-11-01 05:30 UTC",
                                           "2026-11-01 07:00 UTC", "2026-11-01 07:30 UTC"));
  Schedule sundays = MustParse("0 12 * * sun", "America/New_York");
  EXPECT_EQ(Show(sundays.Next(Utc(2026, 10, 31, 0, 0))), "2026-11-01 17:00 UTC");  // 12:00 EST.
}

TEST(ScheduleTest, EveryFieldsErrorsNameTheFieldAndTheValue) {
  EXPECT_THAT(ErrorOf("0 12 * *"), HasSubstr("expected 5 fields"));
  EXPECT_THAT(ErrorOf("0 12 * * * *"), HasSubstr("got 6"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("got 0"));
  EXPECT_THAT(ErrorOf("60 * * * *"), HasSubstr("minute field \"60\": 60 is out of range 0-59"));
  EXPECT_THAT(ErrorOf("* 24 * * *"), HasSubstr("hour field \"24\": 24 is out of range 0-23"));
  EXPECT_THAT(ErrorOf("* * 0 * *"), HasSubstr("day-of-month field \"0\": 0 is out of range 1-31"));
  EXPECT_THAT(ErrorOf("* * 32 * *"), HasSubstr("day-of-month field \"32\""));
  EXPECT_THAT(ErrorOf("* * * 13 *"), HasSubstr("month field \"13\": 13 is out of range 1-12"));
  EXPECT_THAT(ErrorOf("* * * foo *"),
              HasSubstr("month field \"foo\": \"foo\" is neither a number nor a name (jan..dec)"));
  EXPECT_THAT(ErrorOf("* * * * 8"), HasSubstr("day-of-week field \"8\": 8 is out of range 0-7"));
  EXPECT_THAT(ErrorOf("* * * * sunday"), HasSubstr("day-of-week field \"sunday\""));
  EXPECT_THAT(ErrorOf("x * * * *"), HasSubstr("minute field \"x\": \"x\" is not a number"));
  EXPECT_THAT(ErrorOf("jan * * * *"), HasSubstr("\"jan\" is not a number"));
  EXPECT_THAT(ErrorOf("*/0 * * * *"), HasSubstr("minute field \"*/0\": step 0"));
  EXPECT_THAT(ErrorOf("* */x * * *"), HasSubstr("hour field \"*/x\": step \"x\""));
  EXPECT_THAT(ErrorOf("* */ * * *"), HasSubstr("hour field"));
  EXPECT_THAT(ErrorOf("* 5-1 * * *"),
              HasSubstr("hour field \"5-1\": range \"5-1\" goes backwards"));
  EXPECT_THAT(ErrorOf("* * * * fri-mon"), HasSubstr("day-of-week field \"fri-mon\""));
  EXPECT_THAT(ErrorOf("1,,2 * * * *"), HasSubstr("minute field \"1,,2\": an empty list item"));
  EXPECT_THAT(ErrorOf("1- * * * *"), HasSubstr("a value is missing in \"1-\""));
  EXPECT_THAT(ErrorOf("99999 * * * *"), HasSubstr("\"99999\" is not a number"));
  EXPECT_THAT(ErrorOf("0 0 30 2 *"), HasSubstr("never occurs"));
  EXPECT_THAT(ErrorOf("0 0 31 apr,jun *"), HasSubstr("never occurs"));
  EXPECT_THAT(ErrorOf("0 12 * * sun", ""), HasSubstr("no time zone given"));
  EXPECT_THAT(ErrorOf("0 12 * * sun", "Mars/Olympus_Mons"),
              HasSubstr("unknown time zone \"Mars/Olympus_Mons\""));
  EXPECT_THAT(ErrorOf("0 12 * * sun", "../../etc/passwd"), HasSubstr("unknown time zone"));
  EXPECT_THAT(ErrorOf("0 12 * * sun", "/usr/share/zoneinfo/UTC"), HasSubstr("unknown time zone"));
  // The expression is quoted in every message.
  EXPECT_THAT(ErrorOf("60 * * * *"), HasSubstr("schedule \"60 * * * *\""));
}

}  // namespace
}  // namespace tended
