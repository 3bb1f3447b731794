// The shipped tended-agent program: it does not load libapt-pkg (the engine runs in
// tended-apt-engine), and `tended-agent plan` still works by running that engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/apt/subprocess.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgent[] = TENDED_BINARY_DIR "/agent/tended-agent";
constexpr char kEngine[] = TENDED_BINARY_DIR "/agent/tended-apt-engine";

std::string DynamicSection(const char* program) {
  absl::StatusOr<apt::ProcessResult> run = apt::RunProcess({"readelf", "--dynamic", program});
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return "";
  EXPECT_EQ(run->exit_code, 0) << run->output;
  return run->output;
}

TEST(AgentBinaryTest, TheDaemonDoesNotLoadLibaptPkg) {
  std::string agent = DynamicSection(kAgent);
  EXPECT_THAT(agent, HasSubstr("libgrpc"));  // The section was read.
  EXPECT_THAT(agent, Not(HasSubstr("libapt-pkg")));
  EXPECT_THAT(DynamicSection(kEngine), HasSubstr("libapt-pkg"));
}

TEST(AgentBinaryTest, PlanRunsTheEngine) {
  absl::StatusOr<apt::ProcessResult> help = apt::RunProcess({kAgent, "plan", "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0) << help->output;
  EXPECT_THAT(help->output, HasSubstr("usage: tended-agent plan [--root DIR]"));

  absl::StatusOr<apt::ProcessResult> bad = apt::RunProcess({kAgent, "plan", "--bogus"});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 2);
  EXPECT_THAT(bad->output, HasSubstr("unknown argument \"--bogus\""));

  absl::StatusOr<apt::ProcessResult> no_root =
      apt::RunProcess({kAgent, "plan", "--root", "/nonexistent/tended-root"});
  ASSERT_TRUE(no_root.ok());
  EXPECT_EQ(no_root->exit_code, 1);
  EXPECT_THAT(no_root->output, HasSubstr("no dpkg database at /nonexistent/tended-root"));
}

}  // namespace
}  // namespace tended::agent
