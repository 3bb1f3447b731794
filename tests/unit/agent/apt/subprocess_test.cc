#include "agent/apt/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <string>
#include <vector>

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

}  // namespace
}  // namespace tended::agent::apt
