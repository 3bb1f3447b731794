#include "coordinator/gates/window.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

constexpr absl::Weekday kMon = absl::Weekday::monday;
constexpr absl::Weekday kTue = absl::Weekday::tuesday;
constexpr absl::Weekday kWed = absl::Weekday::wednesday;
constexpr absl::Weekday kThu = absl::Weekday::thursday;
constexpr absl::Weekday kFri = absl::Weekday::friday;
constexpr absl::Weekday kSat = absl::Weekday::saturday;
constexpr absl::Weekday kSun = absl::Weekday::sunday;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

absl::TimeZone Zone(const std::string& name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name;
  return zone;
}

absl::Duration At(int hours, int minutes) { return absl::Hours(hours) + absl::Minutes(minutes); }

MaintenanceWindow Window(std::vector<absl::Weekday> days, absl::Duration start, absl::Duration end,
                         const std::string& zone = "Europe/London") {
  MaintenanceWindow window;
  window.days = std::move(days);
  window.start = start;
  window.end = end;
  window.time_zone_name = zone;
  window.time_zone = Zone(zone);
  return window;
}

TEST(WindowTest, CalendarAssumptionsHold) {
  EXPECT_EQ(absl::GetWeekday(absl::CivilDay(2026, 3, 29)), kSun);
  EXPECT_EQ(absl::GetWeekday(absl::CivilDay(2026, 10, 25)), kSun);
  EXPECT_EQ(absl::GetWeekday(absl::CivilDay(2026, 1, 9)), kFri);
  // London's 2026 changes happen at 01:00 UTC on those Sundays.
  absl::TimeZone london = Zone("Europe/London");
  EXPECT_EQ(london.At(Utc(2026, 3, 29, 0, 59)).offset, 0);
  EXPECT_EQ(london.At(Utc(2026, 3, 29, 1, 0)).offset, 3600);
  EXPECT_EQ(london.At(Utc(2026, 10, 25, 0, 59)).offset, 3600);
  EXPECT_EQ(london.At(Utc(2026, 10, 25, 1, 0)).offset, 0);
}

TEST(WindowTest, EmptyListIsAlwaysOpen) {
  WindowStatus status = EvaluateWindows({}, absl::Hours(5), Utc(2026, 3, 29, 1, 30));
  EXPECT_TRUE(status.open);
  EXPECT_FALSE(status.closes_at.has_value());
  EXPECT_FALSE(status.next_open.has_value());
  EXPECT_EQ(status.description, "always open");
}

TEST(WindowTest, FirstInstantAtOrAfterResolvesSkippedAndRepeatedTimes) {
  absl::TimeZone london = Zone("Europe/London");
  // 01:30 does not exist on 2026-03-29: the transition (02:00 BST) is the first later instant.
  EXPECT_EQ(FirstInstantAtOrAfter(absl::CivilSecond(2026, 3, 29, 1, 30, 0), london),
            Utc(2026, 3, 29, 1, 0));
  // 01:30 happens twice on 2026-10-25: the first (BST) occurrence is chosen.
  EXPECT_EQ(FirstInstantAtOrAfter(absl::CivilSecond(2026, 10, 25, 1, 30, 0), london),
            Utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(FirstInstantAtOrAfter(absl::CivilSecond(2026, 1, 9, 22, 0, 0), london),
            Utc(2026, 1, 9, 22, 0));
}

// 2026-03-29, Europe/London: 01:00 GMT jumps to 02:00 BST.
TEST(WindowTest, SpringForwardWindowOneToThree) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(1, 0), At(3, 0))};
  const absl::Duration step = absl::Minutes(30);

  WindowStatus before = EvaluateWindows(windows, step, Utc(2026, 3, 29, 0, 30));
  EXPECT_FALSE(before.open);
  // 01:00 local is skipped; the window opens at the transition, 02:00 BST.
  EXPECT_THAT(before.next_open, Optional(Utc(2026, 3, 29, 1, 0)));
  EXPECT_FALSE(before.closes_at.has_value());

  WindowStatus at_open = EvaluateWindows(windows, step, Utc(2026, 3, 29, 1, 0));
  EXPECT_TRUE(at_open.open);
  // 03:00 BST: only one real hour after opening.
  EXPECT_THAT(at_open.closes_at, Optional(Utc(2026, 3, 29, 2, 0)));
  EXPECT_FALSE(at_open.next_open.has_value());

  EXPECT_TRUE(EvaluateWindows(windows, step, Utc(2026, 3, 29, 1, 30)).open);

  WindowStatus too_late = EvaluateWindows(windows, step, Utc(2026, 3, 29, 1, 31));
  EXPECT_FALSE(too_late.open);
  // Next Sunday is in BST: 01:00 BST is 00:00 UTC.
  EXPECT_THAT(too_late.next_open, Optional(Utc(2026, 4, 5, 0, 0)));
}

TEST(WindowTest, SpringForwardWindowStartingInSkippedHour) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(1, 30), At(2, 30))};

  WindowStatus before = EvaluateWindows(windows, absl::Minutes(15), Utc(2026, 3, 29, 0, 59));
  EXPECT_FALSE(before.open);
  EXPECT_THAT(before.next_open, Optional(Utc(2026, 3, 29, 1, 0)));

  WindowStatus inside = EvaluateWindows(windows, absl::Minutes(15), Utc(2026, 3, 29, 1, 10));
  EXPECT_TRUE(inside.open);
  EXPECT_THAT(inside.closes_at, Optional(Utc(2026, 3, 29, 1, 30)));  // 02:30 BST

  // Only 30 real minutes that day: a 45 minute step waits a week.
  WindowStatus long_step = EvaluateWindows(windows, absl::Minutes(45), Utc(2026, 3, 29, 0, 59));
  EXPECT_FALSE(long_step.open);
  EXPECT_THAT(long_step.next_open, Optional(Utc(2026, 4, 5, 0, 30)));
}

TEST(WindowTest, SpringForwardWindowEndingInSkippedHourClosesAtTransition) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(0, 30), At(1, 30))};
  WindowStatus inside = EvaluateWindows(windows, absl::Minutes(20), Utc(2026, 3, 29, 0, 40));
  EXPECT_TRUE(inside.open);
  EXPECT_THAT(inside.closes_at, Optional(Utc(2026, 3, 29, 1, 0)));

  WindowStatus too_late = EvaluateWindows(windows, absl::Minutes(20), Utc(2026, 3, 29, 0, 41));
  EXPECT_FALSE(too_late.open);
  EXPECT_THAT(too_late.next_open, Optional(Utc(2026, 4, 4, 23, 30)));  // 00:30 BST
}

// 2026-10-25, Europe/London: 02:00 BST falls back to 01:00 GMT.
TEST(WindowTest, FallBackWindowOneToThree) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(1, 0), At(3, 0))};
  const absl::Duration step = absl::Minutes(30);

  WindowStatus before = EvaluateWindows(windows, step, Utc(2026, 10, 24, 23, 59));
  EXPECT_FALSE(before.open);
  EXPECT_THAT(before.next_open, Optional(Utc(2026, 10, 25, 0, 0)));  // 01:00 BST

  WindowStatus at_open = EvaluateWindows(windows, step, Utc(2026, 10, 25, 0, 0));
  EXPECT_TRUE(at_open.open);
  EXPECT_THAT(at_open.closes_at, Optional(Utc(2026, 10, 25, 3, 0)));  // 03:00 GMT

  // 01:15 GMT, the second time 01:15 happens that night, is inside too.
  WindowStatus repeated = EvaluateWindows(windows, step, Utc(2026, 10, 25, 1, 15));
  EXPECT_TRUE(repeated.open);
  EXPECT_THAT(repeated.closes_at, Optional(Utc(2026, 10, 25, 3, 0)));

  EXPECT_TRUE(EvaluateWindows(windows, step, Utc(2026, 10, 25, 2, 30)).open);
  WindowStatus too_late = EvaluateWindows(windows, step, Utc(2026, 10, 25, 2, 31));
  EXPECT_FALSE(too_late.open);
  EXPECT_THAT(too_late.next_open, Optional(Utc(2026, 11, 1, 1, 0)));
}

TEST(WindowTest, FallBackWindowInsideRepeatedHour) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(1, 30), At(2, 30))};

  WindowStatus before = EvaluateWindows(windows, absl::Minutes(30), Utc(2026, 10, 25, 0, 15));
  EXPECT_FALSE(before.open);
  EXPECT_THAT(before.next_open, Optional(Utc(2026, 10, 25, 0, 30)));  // first 01:30, BST

  WindowStatus second_pass = EvaluateWindows(windows, absl::Minutes(30), Utc(2026, 10, 25, 1, 35));
  EXPECT_TRUE(second_pass.open);
  EXPECT_THAT(second_pass.closes_at, Optional(Utc(2026, 10, 25, 2, 30)));  // 02:30 GMT

  // Once open, the window stays open through the repeated hour until it closes: 01:15 GMT
  // does not shut it again although 01:15 is before the civil start.
  EXPECT_TRUE(EvaluateWindows(windows, absl::Minutes(30), Utc(2026, 10, 25, 1, 15)).open);

  // The civil hour is two real hours long that night.
  EXPECT_TRUE(EvaluateWindows(windows, absl::Hours(2), Utc(2026, 10, 25, 0, 30)).open);
  EXPECT_FALSE(EvaluateWindows(windows, absl::Hours(2), Utc(2026, 10, 25, 0, 31)).open);
}

TEST(WindowTest, FallBackWindowEndingInRepeatedHourClosesAtFirstOccurrence) {
  std::vector<MaintenanceWindow> windows = {Window({kSun}, At(0, 30), At(1, 30))};
  WindowStatus inside = EvaluateWindows(windows, absl::Minutes(15), Utc(2026, 10, 25, 0, 15));
  EXPECT_TRUE(inside.open);
  EXPECT_THAT(inside.closes_at, Optional(Utc(2026, 10, 25, 0, 30)));  // 01:30 BST

  // 01:00 GMT reads as inside the civil window, but the window already closed at 01:30 BST.
  WindowStatus again = EvaluateWindows(windows, absl::Minutes(15), Utc(2026, 10, 25, 1, 0));
  EXPECT_FALSE(again.open);
  EXPECT_THAT(again.next_open, Optional(Utc(2026, 11, 1, 0, 30)));
}

TEST(WindowTest, WindowCrossingMidnightBelongsToTheDayItOpens) {
  std::vector<MaintenanceWindow> windows = {Window({kFri}, At(22, 0), At(2, 0))};
  const absl::Duration step = absl::Minutes(30);

  // January: London is on GMT, so local equals UTC.
  WindowStatus saturday_early = EvaluateWindows(windows, step, Utc(2026, 1, 10, 1, 0));
  EXPECT_TRUE(saturday_early.open);
  EXPECT_THAT(saturday_early.closes_at, Optional(Utc(2026, 1, 10, 2, 0)));

  EXPECT_TRUE(EvaluateWindows(windows, step, Utc(2026, 1, 10, 1, 30)).open);
  EXPECT_FALSE(EvaluateWindows(windows, step, Utc(2026, 1, 10, 1, 31)).open);

  WindowStatus saturday_late = EvaluateWindows(windows, step, Utc(2026, 1, 10, 23, 0));
  EXPECT_FALSE(saturday_late.open);
  EXPECT_THAT(saturday_late.next_open, Optional(Utc(2026, 1, 16, 22, 0)));

  WindowStatus friday_early = EvaluateWindows(windows, step, Utc(2026, 1, 9, 21, 59));
  EXPECT_FALSE(friday_early.open);
  EXPECT_THAT(friday_early.next_open, Optional(Utc(2026, 1, 9, 22, 0)));

  std::vector<MaintenanceWindow> with_saturday = {Window({kFri, kSat}, At(22, 0), At(2, 0))};
  WindowStatus listed = EvaluateWindows(with_saturday, step, Utc(2026, 1, 10, 23, 0));
  EXPECT_TRUE(listed.open);
  EXPECT_THAT(listed.closes_at, Optional(Utc(2026, 1, 11, 2, 0)));
}

TEST(WindowTest, StepMustFinishBeforeTheWindowCloses) {
  std::vector<MaintenanceWindow> windows = {
      Window({kMon, kTue, kWed, kThu, kFri}, At(2, 0), At(6, 0))};
  const absl::Duration step = absl::Minutes(30);
  WindowStatus near_end = EvaluateWindows(windows, step, Utc(2026, 1, 12, 5, 29));
  EXPECT_TRUE(near_end.open);
  EXPECT_THAT(near_end.closes_at, Optional(Utc(2026, 1, 12, 6, 0)));
  EXPECT_TRUE(EvaluateWindows(windows, step, Utc(2026, 1, 12, 5, 30)).open);

  WindowStatus too_late = EvaluateWindows(windows, step, Utc(2026, 1, 12, 5, 30, 1));
  EXPECT_FALSE(too_late.open);
  EXPECT_THAT(too_late.next_open, Optional(Utc(2026, 1, 13, 2, 0)));

  WindowEvaluation explained = EvaluateWindowsWithReason(windows, step, Utc(2026, 1, 12, 5, 45));
  EXPECT_FALSE(explained.status.open);
  EXPECT_THAT(explained.reason, HasSubstr("too soon"));
  EXPECT_THAT(explained.reason, HasSubstr("2026-01-13 02:00 GMT"));
}

TEST(WindowTest, NextOpenSearchSkipsTheWeekend) {
  std::vector<MaintenanceWindow> windows = {
      Window({kMon, kTue, kWed, kThu, kFri}, At(2, 0), At(6, 0))};
  WindowStatus status = EvaluateWindows(windows, absl::Minutes(30), Utc(2026, 1, 9, 7, 0));
  EXPECT_FALSE(status.open);
  EXPECT_THAT(status.next_open, Optional(Utc(2026, 1, 12, 2, 0)));
  EXPECT_EQ(status.description, "Mon-Fri 02:00-06:00 Europe/London");
}

TEST(WindowTest, MultipleWindowsFormAUnion) {
  std::vector<MaintenanceWindow> windows = {
      Window({kMon, kTue, kWed, kThu, kFri}, At(2, 0), At(4, 0)),
      Window({kSat, kSun}, At(10, 0), At(12, 0), "America/New_York")};
  const absl::Duration step = absl::Minutes(30);

  WindowStatus weekday = EvaluateWindows(windows, step, Utc(2026, 1, 9, 3, 0));
  EXPECT_TRUE(weekday.open);
  EXPECT_THAT(weekday.closes_at, Optional(Utc(2026, 1, 9, 4, 0)));

  // 10:30 EST on Saturday.
  WindowStatus weekend = EvaluateWindows(windows, step, Utc(2026, 1, 10, 15, 30));
  EXPECT_TRUE(weekend.open);
  EXPECT_THAT(weekend.closes_at, Optional(Utc(2026, 1, 10, 17, 0)));

  WindowStatus friday = EvaluateWindows(windows, step, Utc(2026, 1, 9, 5, 0));
  EXPECT_FALSE(friday.open);
  EXPECT_THAT(friday.next_open, Optional(Utc(2026, 1, 10, 15, 0)));

  WindowStatus sunday_evening = EvaluateWindows(windows, step, Utc(2026, 1, 11, 18, 0));
  EXPECT_FALSE(sunday_evening.open);
  EXPECT_THAT(sunday_evening.next_open, Optional(Utc(2026, 1, 12, 2, 0)));
}

TEST(WindowTest, TouchingWindowsMergeForALongStep) {
  std::vector<MaintenanceWindow> windows = {Window({kMon}, At(22, 0), At(0, 0), "UTC"),
                                            Window({kTue}, At(0, 0), At(2, 0), "UTC")};
  WindowStatus status = EvaluateWindows(windows, absl::Hours(1), Utc(2026, 1, 12, 23, 30));
  EXPECT_TRUE(status.open);
  EXPECT_THAT(status.closes_at, Optional(Utc(2026, 1, 13, 2, 0)));
}

TEST(WindowTest, WindowShorterThanTheStepNeverOpens) {
  std::vector<MaintenanceWindow> windows = {
      Window({kMon, kTue, kWed, kThu, kFri, kSat, kSun}, At(2, 0), At(2, 20))};
  WindowEvaluation evaluation =
      EvaluateWindowsWithReason(windows, absl::Minutes(30), Utc(2026, 1, 12, 1, 0));
  EXPECT_FALSE(evaluation.status.open);
  EXPECT_FALSE(evaluation.status.next_open.has_value());
  EXPECT_THAT(evaluation.status.description, HasSubstr("never long enough"));
  EXPECT_THAT(evaluation.reason, HasSubstr("never opens"));

  // The same window does admit a shorter step.
  EXPECT_THAT(EvaluateWindows(windows, absl::Minutes(20), Utc(2026, 1, 12, 1, 0)).next_open,
              Optional(Utc(2026, 1, 12, 2, 0)));
}

TEST(WindowTest, WindowWithoutDaysNeverOpens) {
  std::vector<MaintenanceWindow> windows = {Window({}, At(2, 0), At(6, 0))};
  WindowStatus status = EvaluateWindows(windows, absl::Minutes(30), Utc(2026, 1, 12, 3, 0));
  EXPECT_FALSE(status.open);
  EXPECT_FALSE(status.next_open.has_value());
}

TEST(WindowTest, DailyWindowWithEqualStartAndEndIsAlwaysOpen) {
  std::vector<MaintenanceWindow> windows = {
      Window({kMon, kTue, kWed, kThu, kFri, kSat, kSun}, At(0, 0), At(0, 0), "UTC")};
  WindowStatus status = EvaluateWindows(windows, absl::Hours(3), Utc(2026, 1, 12, 23, 0));
  EXPECT_TRUE(status.open);
  ASSERT_TRUE(status.closes_at.has_value());
  EXPECT_GT(*status.closes_at, Utc(2026, 1, 20, 0, 0));
}

TEST(WindowTest, DescribesWindowsAndTimes) {
  EXPECT_EQ(DescribeWeekdays({kMon, kTue, kWed, kThu, kFri}), "Mon-Fri");
  EXPECT_EQ(DescribeWeekdays({kSat, kSun}), "Sat,Sun");
  EXPECT_EQ(DescribeWeekdays({kFri, kMon, kWed}), "Mon,Wed,Fri");
  EXPECT_EQ(DescribeWeekdays({kMon, kTue, kWed, kThu, kFri, kSat, kSun}), "daily");
  EXPECT_EQ(DescribeWeekdays({}), "no days");
  EXPECT_EQ(DescribeWindow(Window({kFri}, At(22, 0), At(2, 0))), "Fri 22:00-02:00 Europe/London");
  EXPECT_EQ(FormatLocalTime(Utc(2026, 3, 30, 5, 0), Zone("Europe/London")), "2026-03-30 06:00 BST");
  EXPECT_EQ(FormatDurationForPeople(absl::Minutes(150)), "2h30m");
  EXPECT_EQ(FormatDurationForPeople(absl::Seconds(45)), "45s");
  EXPECT_EQ(FormatDurationForPeople(absl::Hours(24)), "24h");
  EXPECT_EQ(FormatDurationForPeople(absl::Hours(75)), "3d3h");
}

// Monday 04:00 BST.
const absl::Time kMonday0300 = Utc(2026, 3, 30, 3, 0);

TEST(WindowGateTest, PassesInsideWindowNamingItsEndInLocalTime) {
  LeasePolicy policy;
  MaintenanceWindow window;
  window.days = {absl::Weekday::monday};
  window.start = absl::Hours(2);
  window.end = absl::Hours(6);
  window.time_zone_name = "Europe/London";
  ASSERT_TRUE(absl::LoadTimeZone("Europe/London", &window.time_zone));
  policy.windows = {window};

  GateOutcome open = WindowGate(policy, kMonday0300);
  EXPECT_EQ(open.gate, "window");
  EXPECT_TRUE(open.pass);
  EXPECT_THAT(open.reason, HasSubstr("2026-03-30 06:00 BST"));

  GateOutcome closed = WindowGate(policy, Utc(2026, 3, 30, 6, 0));
  EXPECT_FALSE(closed.pass);
  EXPECT_THAT(closed.earliest_pass, Optional(Utc(2026, 4, 6, 1, 0)));
  EXPECT_THAT(closed.reason, HasSubstr("Mon 02:00-06:00 Europe/London"));
}

TEST(WindowGateTest, NoWindowsMeansOpen) {
  GateOutcome outcome = WindowGate(LeasePolicy{}, kMonday0300);
  EXPECT_TRUE(outcome.pass);
  EXPECT_FALSE(outcome.earliest_pass.has_value());
}

}  // namespace
}  // namespace tended::coordinator
