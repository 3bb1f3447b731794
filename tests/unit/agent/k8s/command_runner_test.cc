#include "agent/k8s/command_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended::agent::k8s {
namespace {

using ::testing::HasSubstr;

TEST(ProcessCommandRunnerTest, RunsWithoutAShellAndReportsTheExitCode) {
  ProcessCommandRunner runner;
  // The argument reaches the program as one word: no shell splits or expands it.
  auto echoed = runner.Run({"/bin/echo", "a; exit 3 $HOME"}, absl::Seconds(30));
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->exit_code, 0);
  EXPECT_EQ(echoed->output, "a; exit 3 $HOME\n");

  auto failed = runner.Run({"/bin/false"}, absl::Seconds(30));
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->exit_code, 1);
}

TEST(ProcessCommandRunnerTest, KillsAProgramPastItsTimeout) {
  ProcessCommandRunner runner;
  auto slow = runner.Run({"/bin/sleep", "30"}, absl::Milliseconds(200));
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
}

TEST(ProcessCommandRunnerTest, RefusesARelativeProgramAndReportsAMissingOne) {
  ProcessCommandRunner runner;
  EXPECT_EQ(runner.Run({"kubeadm", "version"}, absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto missing = runner.Run({"/nonexistent/kubeadm"}, absl::Seconds(5));
  EXPECT_TRUE(!missing.ok() || missing->exit_code != 0);
}

TEST(ProcessCommandRunnerTest, KeepsTheEndOfALongOutput) {
  ProcessCommandRunner runner;
  auto long_output = runner.Run(
      {"/bin/sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo END"}, absl::Seconds(30));
  ASSERT_TRUE(long_output.ok()) << long_output.status();
  EXPECT_EQ(long_output->output.size(), kMaxCommandOutputBytes);
  EXPECT_THAT(long_output->output, ::testing::EndsWith("END\n"));
}

TEST(OutputTailTest, CutsAtALineAndNeverInsideAUtf8Sequence) {
  EXPECT_EQ(OutputTail("short\n\n", 100), "short");
  std::string text = "first line\nsecond line\nthird line";
  EXPECT_EQ(OutputTail(text, 15), "…third line");
  std::string utf8 = std::string(10, 'a') + "ééééé";
  std::string tail = OutputTail(utf8, 5);
  EXPECT_THAT(tail, ::testing::StartsWith("…"));
  EXPECT_EQ(tail.substr(std::string("…").size()).size() % 2, 0u);
}

TEST(DescribeCommandTest, DropsTheProgramsFolder) {
  EXPECT_EQ(DescribeCommand({"/usr/bin/kubeadm", "upgrade", "node"}), "kubeadm upgrade node");
}

}  // namespace
}  // namespace tended::agent::k8s
