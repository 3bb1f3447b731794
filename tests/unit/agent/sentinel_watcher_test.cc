#include "agent/sentinel_watcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::ElementsAre;

// The callback's history. Waiting is for an event to arrive; the timeout only bounds a broken
// watcher, it is not part of what is tested.
class Recorder {
 public:
  SentinelWatcher::Callback callback() {
    return [this](bool exists) {
      absl::MutexLock lock(&mutex_);
      calls_.push_back(exists);
    };
  }

  // True once at least `count` callbacks arrived.
  bool WaitForCalls(size_t count) {
    absl::MutexLock lock(&mutex_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return calls_.size() >= count; };
    return mutex_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(5));
  }

  std::vector<bool> calls() {
    absl::MutexLock lock(&mutex_);
    return calls_;
  }

 private:
  absl::Mutex mutex_;
  std::vector<bool> calls_ ABSL_GUARDED_BY(mutex_);
};

void Touch(const std::string& path) { ASSERT_TRUE(WriteFileAtomically(path, "").ok()) << path; }

void WriteInPlace(const std::string& path, const std::string& contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  ASSERT_EQ(::close(fd), 0);
}

void Remove(const std::string& path) { ASSERT_EQ(::unlink(path.c_str()), 0) << path; }

std::unique_ptr<SentinelWatcher> StartWatcher(const std::string& path, Recorder& recorder) {
  auto watcher = SentinelWatcher::Create(path, recorder.callback());
  EXPECT_TRUE(watcher.ok()) << watcher.status();
  if (!watcher.ok()) return nullptr;
  EXPECT_TRUE((*watcher)->Start().ok());
  return std::move(watcher).value();
}

TEST(SentinelWatcherTest, ReportsInitialStateAtStart) {
  testing::TempDir dir;
  Touch(dir.Path("present"));
  Recorder present, absent;
  auto watch_present = StartWatcher(dir.Path("present"), present);
  auto watch_absent = StartWatcher(dir.Path("absent"), absent);
  ASSERT_NE(watch_present, nullptr);
  ASSERT_NE(watch_absent, nullptr);
  // Start() reports synchronously, before it returns.
  EXPECT_THAT(present.calls(), ElementsAre(true));
  EXPECT_THAT(absent.calls(), ElementsAre(false));
}

TEST(SentinelWatcherTest, ReportsCreateAndDelete) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  Touch(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(2));
  Remove(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(3));
  Touch(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(4));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true, false, true));
}

TEST(SentinelWatcherTest, ReportsRenameIntoAndOutOfPlace) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  WriteInPlace(dir.Path("staging"), "linux-image\n");
  ASSERT_EQ(std::rename(dir.Path("staging").c_str(), sentinel.c_str()), 0);
  ASSERT_TRUE(recorder.WaitForCalls(2));
  ASSERT_EQ(std::rename(sentinel.c_str(), dir.Path("done").c_str()), 0);
  ASSERT_TRUE(recorder.WaitForCalls(3));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true, false));
}

TEST(SentinelWatcherTest, WritingTheFileReportsOnlyItsAppearance) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  WriteInPlace(sentinel, "*** System restart required ***\n");
  ASSERT_TRUE(recorder.WaitForCalls(2));
  // Rewrites of an existing sentinel change nothing; the removal afterwards is the marker that
  // every earlier event has been handled.
  WriteInPlace(sentinel, "again\n");
  WriteInPlace(sentinel, "and again\n");
  Remove(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(3));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true, false));
}

TEST(SentinelWatcherTest, IgnoresUnrelatedFilesInTheDirectory) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  Touch(dir.Path("reboot-required.pkgs"));
  WriteInPlace(dir.Path("other"), "x");
  ASSERT_EQ(std::rename(dir.Path("other").c_str(), dir.Path("other2").c_str()), 0);
  Remove(dir.Path("other2"));
  ASSERT_EQ(::mkdir(dir.Path("subdir").c_str(), 0755), 0);
  Touch(sentinel);  // marker: events are handled in order
  ASSERT_TRUE(recorder.WaitForCalls(2));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true));
}

TEST(SentinelWatcherTest, FollowsADirectoryThatAppearsLater) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("var/run/reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  ASSERT_TRUE(MakeDirectories(dir.Path("var/run")).ok());
  Touch(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(2));

  // The directory goes away with the file in it, then comes back.
  Remove(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(3));
  ASSERT_EQ(::rmdir(dir.Path("var/run").c_str()), 0);
  ASSERT_EQ(::rmdir(dir.Path("var").c_str()), 0);
  ASSERT_TRUE(MakeDirectories(dir.Path("var/run")).ok());
  Touch(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(4));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true, false, true));
}

TEST(SentinelWatcherTest, FollowsADanglingVarRunSymlink) {
  testing::TempDir dir;
  ASSERT_TRUE(MakeDirectories(dir.Path("var")).ok());
  ASSERT_EQ(::symlink("../run", dir.Path("var/run").c_str()), 0);
  std::string sentinel = dir.Path("var/run/reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);

  ASSERT_EQ(::mkdir(dir.Path("run").c_str(), 0755), 0);
  Touch(dir.Path("run/reboot-required"));
  ASSERT_TRUE(recorder.WaitForCalls(2));
  Remove(dir.Path("run/reboot-required"));
  ASSERT_TRUE(recorder.WaitForCalls(3));
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true, false));
}

TEST(SentinelWatcherTest, NoCallbacksAfterStop) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  auto watcher = StartWatcher(sentinel, recorder);
  ASSERT_NE(watcher, nullptr);
  watcher->Stop();
  watcher->Stop();  // idempotent
  Touch(sentinel);
  Remove(sentinel);
  Touch(sentinel);
  EXPECT_THAT(recorder.calls(), ElementsAre(false));
  EXPECT_FALSE(watcher->Start().ok());
}

TEST(SentinelWatcherTest, StopFromInsideTheCallback) {
  testing::TempDir dir;
  std::string sentinel = dir.Path("reboot-required");
  Recorder recorder;
  SentinelWatcher* raw = nullptr;
  auto callback = recorder.callback();
  auto watcher = SentinelWatcher::Create(sentinel, [&](bool exists) {
    callback(exists);
    if (exists) raw->Stop();
  });
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  raw = watcher->get();
  ASSERT_TRUE((*watcher)->Start().ok());
  Touch(sentinel);
  ASSERT_TRUE(recorder.WaitForCalls(2));
  watcher->reset();  // joins the thread that stopped itself
  EXPECT_THAT(recorder.calls(), ElementsAre(false, true));
}

TEST(SentinelWatcherTest, RejectsBadPathsAndSecondStart) {
  Recorder recorder;
  EXPECT_EQ(SentinelWatcher::Create("relative/path", recorder.callback()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SentinelWatcher::Create("/tmp/dir/", recorder.callback()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SentinelWatcher::Create("/tmp/x", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);

  testing::TempDir dir;
  auto watcher = StartWatcher(dir.Path("reboot-required"), recorder);
  ASSERT_NE(watcher, nullptr);
  EXPECT_EQ(watcher->Start().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tended::agent
