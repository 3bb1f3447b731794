#include "agent/sentinel_watcher.h"

#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended::agent {
namespace {

constexpr uint32_t kWatchMask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE |
                                IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// While no watch could be placed (say a directory we may not read), retry this often.
constexpr int kRearmRetryMillis = 1000;
// Like the kernel's limit on symlinks followed during one lookup.
constexpr int kMaxSymlinkHops = 40;
constexpr int kMaxRearmAttempts = 16;

// The directory to watch so that we hear about `dir` (or anything on the way to it) coming into
// existence: `dir` itself with symlinks resolved when it is a directory, else its nearest
// existing ancestor. A dangling symlink (var/run -> ../run before run exists) is followed, so
// the directory that would complete it is watched.
std::string NearestExistingDirectory(std::string dir) {
  int hops = 0;
  for (int step = 0; step < 4096; ++step) {
    char resolved[PATH_MAX];
    if (::realpath(dir.c_str(), resolved) != nullptr) {
      struct stat st;
      if (::stat(resolved, &st) == 0 && S_ISDIR(st.st_mode)) return resolved;
    } else {
      struct stat lst;
      if (hops < kMaxSymlinkHops && ::lstat(dir.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = ::readlink(dir.c_str(), target, sizeof(target) - 1);
        if (n > 0) {
          ++hops;
          std::string link(target, static_cast<size_t>(n));
          dir = link[0] == '/' ? link : absl::StrCat(Dirname(dir), "/", link);
          continue;
        }
      }
    }
    if (dir == "/") break;
    dir = Dirname(dir);
  }
  return "/";
}

void CloseIfOpen(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SentinelWatcher>> SentinelWatcher::Create(std::string file_path,
                                                                         Callback on_change) {
  if (file_path.empty() || file_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("sentinel path must be absolute, got \"", file_path, "\""));
  }
  std::string name = file_path.substr(file_path.rfind('/') + 1);
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("sentinel path must name a file, got \"", file_path, "\""));
  }
  if (!on_change) return absl::InvalidArgumentError("sentinel watcher needs a callback");

  int inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) return PosixErrorToStatus("inotify_init1", errno);
  int stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd < 0) {
    int saved_errno = errno;
    ::close(inotify_fd);
    return PosixErrorToStatus("eventfd", saved_errno);
  }
  auto watcher = absl::WrapUnique(
      new SentinelWatcher(std::move(file_path), std::move(on_change), inotify_fd, stop_fd));
  if (absl::Status status = watcher->Rearm(); !status.ok()) return status;
  return watcher;
}

SentinelWatcher::SentinelWatcher(std::string file_path, Callback on_change, int inotify_fd,
                                 int stop_fd)
    : file_path_(std::move(file_path)),
      parent_dir_(Dirname(file_path_)),
      on_change_(std::move(on_change)),
      inotify_fd_(inotify_fd),
      stop_fd_(stop_fd) {}

SentinelWatcher::~SentinelWatcher() {
  Stop();
  CloseIfOpen(inotify_fd_);
  CloseIfOpen(stop_fd_);
}

absl::Status SentinelWatcher::Start() {
  {
    absl::MutexLock lock(&thread_mutex_);
    if (started_) return absl::FailedPreconditionError("sentinel watcher already started");
    if (stop_requested_) return absl::FailedPreconditionError("sentinel watcher was stopped");
    started_ = true;
  }
  // The watch is armed before the first look, so a change right after it is queued, not lost.
  if (absl::Status status = Rearm(); !status.ok()) {
    Logger("sentinel")->warn("watching for {}: {} (will retry)", file_path_, status.ToString());
    rearm_failed_ = true;
  }
  last_exists_ = FileExists();
  if (!stop_requested_) on_change_(last_exists_);

  absl::MutexLock lock(&thread_mutex_);
  if (!stop_requested_) thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void SentinelWatcher::Stop() {
  stop_requested_ = true;
  uint64_t one = 1;
  // Cannot fail in a way that matters: the counter only has to become non-zero.
  [[maybe_unused]] ssize_t written = ::write(stop_fd_, &one, sizeof(one));
  if (std::this_thread::get_id() == watcher_thread_id_.load()) return;
  absl::MutexLock lock(&thread_mutex_);
  if (thread_.joinable()) thread_.join();
}

absl::Status SentinelWatcher::Rearm() {
  std::string target = NearestExistingDirectory(parent_dir_);
  // A folder on the way may appear between finding the target and watching it, before the
  // watch could report it; looking again once the watch is in place closes that gap.
  for (int attempt = 0; attempt < kMaxRearmAttempts; ++attempt) {
    int wd = ::inotify_add_watch(inotify_fd_, target.c_str(), kWatchMask);
    if (wd < 0) return PosixErrorToStatus(absl::StrCat("inotify_add_watch ", target), errno);
    if (wd_ >= 0 && wd_ != wd) ::inotify_rm_watch(inotify_fd_, wd_);
    if (target != watched_path_) {
      Logger("sentinel")->debug("watching {} for {}", target, file_path_);
    }
    wd_ = wd;
    watched_path_ = target;
    target = NearestExistingDirectory(parent_dir_);
    if (target == watched_path_) return absl::OkStatus();
  }
  // Still moving: the events of the folders just watched will bring us back here.
  return absl::OkStatus();
}

bool SentinelWatcher::DrainEvents() {
  alignas(struct inotify_event) char buffer[8192];
  while (true) {
    ssize_t n = ::read(inotify_fd_, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      Logger("sentinel")
          ->error("reading inotify events for {}: {}", file_path_,
                  PosixErrorToStatus("read", errno).ToString());
      return false;
    }
    if (n == 0) return true;
    for (char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(p);
      // The kernel drops a watch whose directory went away; Rearm() must not remove it again.
      if ((event->mask & IN_IGNORED) != 0 && event->wd == wd_) wd_ = -1;
      p += sizeof(struct inotify_event) + event->len;
    }
  }
}

bool SentinelWatcher::FileExists() {
  struct stat st;
  if (::lstat(file_path_.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  Logger("sentinel")
      ->warn("cannot tell whether {} exists: {}; keeping the last known state", file_path_,
             PosixErrorToStatus("lstat", errno).ToString());
  return last_exists_;
}

void SentinelWatcher::Recheck() {
  bool exists = FileExists();
  if (exists == last_exists_) return;
  last_exists_ = exists;
  if (!stop_requested_) on_change_(exists);
}

void SentinelWatcher::Run() {
  watcher_thread_id_ = std::this_thread::get_id();
  while (!stop_requested_) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, rearm_failed_ ? kRearmRetryMillis : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      Logger("sentinel")
          ->error("watching {} stopped: {}", file_path_,
                  PosixErrorToStatus("poll", errno).ToString());
      return;
    }
    if (fds[1].revents != 0 || stop_requested_) return;
    if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0) {
      Logger("sentinel")->error("watching {} stopped: inotify descriptor failed", file_path_);
      return;
    }
    if ((fds[0].revents & POLLIN) != 0 && !DrainEvents()) return;

    // After every batch: follow the directory if it appeared, vanished or was replaced, then
    // look at the file itself. Reporting only flips keeps unrelated files in the directory
    // (and rewrites of the sentinel) silent.
    if (absl::Status status = Rearm(); !status.ok()) {
      if (!rearm_failed_) {
        Logger("sentinel")->warn("watching for {}: {} (will retry)", file_path_, status.ToString());
      }
      rearm_failed_ = true;
    } else if (rearm_failed_) {
      Logger("sentinel")->info("watching for {} again", file_path_);
      rearm_failed_ = false;
    }
    Recheck();
  }
}

}  // namespace tended::agent
