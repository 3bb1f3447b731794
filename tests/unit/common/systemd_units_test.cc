// The shipped systemd units' exposure, as `systemd-analyze security --offline=true` scores
// it: never worse than the figures docs/security.md records (lower is better). A setting
// removed from a unit raises its score and fails here. Skipped only where systemd-analyze
// or its --offline option is missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

constexpr char kUnits[] = TENDED_SOURCE_DIR "/systemd/";

// The figures of docs/security.md ("systemd unit hardening"), from systemd 252.
struct Recorded {
  const char* unit;
  double exposure;
};
constexpr Recorded kRecorded[] = {{"tended-agent.service", 8.4},
                                  {"tended-coordinator.service", 1.3}};

struct Ran {
  bool exited = false;
  std::string output;
};

Ran RunCommand(const std::vector<std::string>& argv, const testing::TempDir& dir) {
  const std::string log = dir.Path("run.log");
  (void)RemoveFileIfExists(log);
  auto child = testing::ChildProcess::Start(argv, log);
  if (!child.ok()) return {false, std::string(child.status().message())};
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while ((*child)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  Ran ran{!(*child)->Running(), ""};
  (*child)->Stop();
  ran.output = ReadFileToString(log).value_or("");
  return ran;
}

// The figure of "→ Overall exposure level for X.service: 8.4 EXPOSED 🙁"; -1 when absent.
double OverallExposure(const std::string& output) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    size_t at = line.find("Overall exposure level for ");
    if (at == absl::string_view::npos) continue;
    line.remove_prefix(at);
    size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) continue;
    line.remove_prefix(colon + 2);
    double value = 0;
    if (absl::SimpleAtod(line.substr(0, line.find(' ')), &value)) return value;
  }
  return -1;
}

bool HasOfflineAnalysis(const testing::TempDir& dir) {
  Ran help = RunCommand({"/bin/sh", "-c", "systemd-analyze security --help"}, dir);
  return help.exited && absl::StrContains(help.output, "--offline");
}

TEST(SystemdUnitsTest, ExposureIsNoWorseThanRecorded) {
  testing::TempDir dir;
  if (!HasOfflineAnalysis(dir)) {
    GTEST_SKIP() << "systemd-analyze with `security --offline` (systemd 250 or later) is not "
                    "installed: the units' exposure was not checked";
  }
  for (const Recorded& recorded : kRecorded) {
    const std::string unit = absl::StrCat(kUnits, recorded.unit);
    Ran ran = RunCommand(
        {"/usr/bin/env", "systemd-analyze", "security", "--offline=true", "--no-pager", unit}, dir);
    ASSERT_TRUE(ran.exited) << ran.output;
    const double exposure = OverallExposure(ran.output);
    ASSERT_GE(exposure, 0) << "no overall exposure level for " << unit << ":\n" << ran.output;
    EXPECT_LE(exposure, recorded.exposure)
        << recorded.unit << " is more exposed than docs/security.md records; a hardening "
        << "setting went away?\n"
        << ran.output;
  }
}

TEST(SystemdUnitsTest, ALooserUnitScoresWorse) {
  // So the check above can fail: the agent's unit without its hardening lines.
  testing::TempDir dir;
  if (!HasOfflineAnalysis(dir)) GTEST_SKIP() << "systemd-analyze security --offline missing";
  auto unit = ReadFileToString(absl::StrCat(kUnits, "tended-agent.service"));
  ASSERT_TRUE(unit.ok()) << unit.status();
  std::string loose;
  for (absl::string_view line : absl::StrSplit(*unit, '\n')) {
    for (const char* setting : {"Protect", "Private", "SystemCall", "Capability", "Restrict"}) {
      if (absl::StartsWith(line, setting)) line = "";
    }
    absl::StrAppend(&loose, line, "\n");
  }
  ASSERT_TRUE(WriteFileAtomically(dir.Path("tended-agent.service"), loose).ok());
  Ran ran = RunCommand({"/usr/bin/env", "systemd-analyze", "security", "--offline=true",
                        "--no-pager", dir.Path("tended-agent.service")},
                       dir);
  EXPECT_GT(OverallExposure(ran.output), kRecorded[0].exposure) << ran.output;
}

TEST(SystemdUnitsTest, ParsesTheOverallLine) {
  EXPECT_EQ(OverallExposure("✓ X\n→ Overall exposure level for a.service: 8.4 EXPOSED 🙁\n"),
            8.4);
  EXPECT_EQ(OverallExposure("nothing here\n"), -1);
}

}  // namespace
}  // namespace tended
