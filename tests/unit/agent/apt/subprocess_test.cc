#include "agent/apt/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <string>
#include <vector>

#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::apt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string RunShell(const std::string& script, const std::string& stdin_data = "") {
  absl::StatusOr<ProcessResult> run = RunProcess({"/bin/sh", "-c", script}, {}, stdin_data);
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? run->output : "";
}

TEST(SubprocessTest, ChildrenStartWithNoSignalBlocked) {
  // As in the agent, which waits for SIGTERM and SIGINT with sigwait.
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  // Not through sh: dash clears its signal mask when it starts.
  absl::StatusOr<ProcessResult> blocked = RunProcess({"grep", "SigBlk", "/proc/self/status"});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_EQ(blocked->output, "SigBlk:\t0000000000000000\n");
}

TEST(SubprocessTest, StdinIsDevNullWithoutInputAndThePipeWithIt) {
  EXPECT_EQ(RunShell("readlink /proc/self/fd/0"), "/dev/null\n");
  EXPECT_EQ(RunShell("cat", "kubelet hold\n"), "kubelet hold\n");
}

TEST(SubprocessTest, ExitCodesAndSignals) {
  absl::StatusOr<ProcessResult> run =
      RunProcess({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 7);
  EXPECT_THAT(run->output, HasSubstr("out\n"));
  EXPECT_THAT(run->output, HasSubstr("err\n"));
  run = RunProcess({"/bin/sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 128 + 9);
  EXPECT_FALSE(RunProcess({"/nonexistent/program"}).ok());
}

TEST(SubprocessTest, RepliesArriveLineByLineApartFromTheOutput) {
  std::vector<std::string> lines;
  absl::StatusOr<int> exit_code =
      RunProcessWithReplies({"/bin/sh", "-c",
                             "read request; echo 'noise on stdout'; echo \"got $request\" >&3; "
                             "printf 'two\\nthree' >&3; exit 3"},
                            "ping\n", [&](absl::string_view line) { lines.emplace_back(line); });
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 3);
  EXPECT_THAT(lines, ElementsAre("got ping", "two", "three"));
}

TEST(SubprocessTest, AChildPastItsTimeoutIsKilled) {
  std::vector<std::string> lines;
  absl::StatusOr<int> exit_code = RunProcessWithReplies(
      {"/bin/sh", "-c", "echo started >&3; exec sleep 600"}, "",
      [&](absl::string_view line) { lines.emplace_back(line); }, absl::Milliseconds(300));
  EXPECT_EQ(exit_code.status().code(), absl::StatusCode::kDeadlineExceeded) << exit_code.status();
  EXPECT_THAT(exit_code.status().message(), HasSubstr("was killed"));
  EXPECT_THAT(lines, ElementsAre("started"));
}

TEST(SubprocessTest, AChildThatClosesItsOutputIsStillTimedOut) {
  absl::StatusOr<int> exit_code = RunProcessWithReplies(
      {"/bin/sh", "-c", "exec 3>&- 1>&- 2>&-; exec sleep 600"}, "", [](absl::string_view) {},
      absl::Milliseconds(300));
  EXPECT_EQ(exit_code.status().code(), absl::StatusCode::kDeadlineExceeded) << exit_code.status();
}

// A child that leaves a process behind which still holds the output pipe (a maintainer
// script starting a daemon): the call returns when the child exits, not when the pipe closes.
TEST(SubprocessTest, AProcessLeftBehindDoesNotHoldTheCallOpen) {
  tended::testing::TempDir dir;
  const std::string pid_file = dir.Path("left-behind.pid");
  std::vector<std::string> lines;
  absl::StatusOr<int> exit_code = RunProcessWithReplies(
      {"/bin/sh", "-c", "sleep 600 & echo $! > '" + pid_file + "'; echo done >&3; exit 0"}, "",
      [&](absl::string_view line) { lines.emplace_back(line); });
  absl::StatusOr<std::string> pid = ReadFileToString(pid_file);
  ASSERT_TRUE(pid.ok()) << pid.status();
  kill(std::stoi(*pid), SIGKILL);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_THAT(lines, ElementsAre("done"));

  absl::StatusOr<ProcessResult> run = RunProcess(
      {"/bin/sh", "-c", "sleep 600 & echo $! > '" + pid_file + "'; echo configured; exit 0"});
  pid = ReadFileToString(pid_file);
  ASSERT_TRUE(pid.ok());
  kill(std::stoi(*pid), SIGKILL);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->output, "configured\n");
}

}  // namespace
}  // namespace tended::agent::apt
