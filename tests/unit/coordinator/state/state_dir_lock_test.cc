#include "coordinator/state/state_dir_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;

std::string HostName() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

TEST(StateDirLockTest, SecondHolderIsRefusedWithTheFirstNamed) {
  testing::TempDir temp;
  testing::FakeClock clock;
  std::string dir = temp.Path("state");
  auto first = StateDirLock::Acquire(dir, "coordinator on 127.0.0.1:7443", clock);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  auto second = StateDirLock::Acquire(dir, "coordinator on 127.0.0.1:7444", clock);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string message(second.status().message());
  EXPECT_THAT(message, HasSubstr("state folder " + dir + " is in use by another"));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("pid ", ::getpid(), " on ", HostName())));
  EXPECT_THAT(message, HasSubstr("since 2026-01-01T00:00:00+00:00"));
  EXPECT_THAT(message, HasSubstr("127.0.0.1:7443"));
  EXPECT_THAT(message, HasSubstr("would grant the same slots"));
}

TEST(StateDirLockTest, ReleasedWhenDestroyed) {
  testing::TempDir temp;
  std::string dir = temp.Path("state");
  auto first = StateDirLock::Acquire(dir, "first");
  ASSERT_TRUE(first.ok()) << first.status();
  first->reset();
  auto second = StateDirLock::Acquire(dir, "second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(StateDirLock::Acquire(dir, "third").ok());
}

// Another process holds the lock: refused, naming that process; free again once it is killed.
TEST(StateDirLockTest, HeldByAnotherProcessUntilItDies) {
  testing::TempDir temp;
  std::string dir = temp.Path("state");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto lock = StateDirLock::Acquire(dir, "the child");
    char byte = lock.ok() ? 'y' : 'n';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(2);
    while (true) ::pause();  // Holds the lock until killed.
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(byte, 'y');
  auto refused = StateDirLock::Acquire(dir, "the parent");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("pid ", child, " on ")));
  EXPECT_THAT(refused.status().message(), HasSubstr("the child"));
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  auto acquired = StateDirLock::Acquire(dir, "the parent");
  EXPECT_TRUE(acquired.ok()) << acquired.status();
}

// And the other way round: a child process cannot take the lock this process holds.
TEST(StateDirLockTest, AnotherProcessIsRefused) {
  testing::TempDir temp;
  std::string dir = temp.Path("state");
  auto lock = StateDirLock::Acquire(dir, "the parent");
  ASSERT_TRUE(lock.ok()) << lock.status();
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto refused = StateDirLock::Acquire(dir, "the child");
    bool named = refused.status().code() == absl::StatusCode::kFailedPrecondition &&
                 absl::StrContains(refused.status().message(), absl::StrCat("pid ", parent));
    ::_exit(named ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace tended::coordinator
