#include "common/node_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/posix_status.h"

namespace tended {
namespace {

// Like the kernel's limit on symlinks followed in one lookup.
constexpr int kMaxSymlinks = 40;
constexpr size_t kReadChunk = 64 * 1024;

std::atomic<NodeFileResolution> g_resolution{NodeFileResolution::kAuto};
// Set once openat2 answered ENOSYS: the walk from then on.
std::atomic<bool> g_no_openat2{false};

std::string Kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symlink";
  return "of an unknown type";
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

// RESOLVE_IN_ROOT by hand: one component at a time, never letting the kernel follow a
// symlink. Returns the descriptor or -1 with errno set. O_NOFOLLOW in `flags` keeps a last
// component that is a symlink (with O_PATH: the link itself, as lstat sees it).
int WalkInRoot(int root_fd, absl::string_view relative, int flags) {
  const bool follow_last = (flags & O_NOFOLLOW) == 0;
  std::deque<std::string> todo;
  for (absl::string_view part : absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    todo.emplace_back(part);
  }
  std::vector<int> dirs;  // Descriptors of the folders below the root, innermost last.
  absl::Cleanup close_dirs = [&dirs] { CloseAll(dirs); };
  auto at = [&] { return dirs.empty() ? root_fd : dirs.back(); };
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (!dirs.empty()) {
        ::close(dirs.back());
        dirs.pop_back();
      }
      continue;
    }
    if (todo.empty()) {
      int fd = ::openat(at(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        struct stat st;
        if (!follow_last || (flags & O_PATH) == 0 || ::fstat(fd, &st) != 0 ||
            !S_ISLNK(st.st_mode)) {
          return fd;
        }
        ::close(fd);  // O_PATH opened the link itself; follow it below.
      } else if (errno != ELOOP || !follow_last) {
        return -1;
      }
    } else {
      int fd = ::openat(at(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return -1;
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
      }
      if (S_ISDIR(st.st_mode)) {
        dirs.push_back(fd);
        continue;
      }
      ::close(fd);
      if (!S_ISLNK(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
      }
    }
    // A symlink: its target continues the walk, from the root when absolute.
    if (++links > kMaxSymlinks) {
      errno = ELOOP;
      return -1;
    }
    char target[4096];
    ssize_t n = ::readlinkat(at(), name.c_str(), target, sizeof(target));
    if (n < 0) return -1;
    if (n == 0 || static_cast<size_t>(n) == sizeof(target)) {
      errno = n == 0 ? ENOENT : ENAMETOOLONG;
      return -1;
    }
    absl::string_view link(target, static_cast<size_t>(n));
    if (link.front() == '/') CloseAll(dirs);
    std::vector<std::string> parts = absl::StrSplit(link, '/', absl::SkipEmpty());
    todo.insert(todo.begin(), parts.begin(), parts.end());
  }
  // Nothing after the last folder ("/", "/var/"): the folder itself.
  return ::openat(at(), ".", flags | O_CLOEXEC);
}

// The descriptor of `path` under the root, or -1 with errno set.
int OpenInRoot(const RootPath& root, absl::string_view path, int flags) {
  int root_fd =
      ::open(root.is_host_root() ? "/" : root.root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return -1;
  absl::Cleanup close_root = [root_fd] { ::close(root_fd); };
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  const std::string relative = path.empty() ? "." : std::string(path);
  if (g_resolution.load() == NodeFileResolution::kAuto && !g_no_openat2.load()) {
    struct open_how how = {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    for (int attempt = 0; attempt < 8; ++attempt) {
      long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof(how));
      if (fd >= 0) return static_cast<int>(fd);
      // EAGAIN: a rename raced with a ".." on the way; the kernel asks to try again.
      if (errno == EAGAIN) continue;
      // ENOSYS: before Linux 5.6; EPERM: a seccomp filter that does not know it.
      if (errno == ENOSYS) g_no_openat2 = true;
      if (errno != ENOSYS && errno != EPERM) return -1;
      break;
    }
  }
  return WalkInRoot(root_fd, relative, flags);
}

}  // namespace

void SetNodeFileResolutionForTest(NodeFileResolution resolution) { g_resolution = resolution; }

absl::StatusOr<NodeFilePrefix> ReadNodeFilePrefix(const RootPath& root, absl::string_view path,
                                                  size_t max_bytes) {
  const std::string shown = root.Resolve(path);
  int fd = OpenInRoot(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int saved = errno;
    // A socket cannot be opened at all; say what it is.
    if (int at = OpenInRoot(root, path, O_PATH); at >= 0) {
      struct stat st;
      bool irregular = ::fstat(at, &st) == 0 && !S_ISREG(st.st_mode);
      ::close(at);
      if (irregular) {
        return absl::FailedPreconditionError(
            absl::StrCat(shown, " is ", Kind(st.st_mode), ", not a regular file"));
      }
    }
    return PosixErrorToStatus(absl::StrCat("open ", shown), saved);
  }
  absl::Cleanup close_fd = [fd] { ::close(fd); };
  struct stat st;
  if (::fstat(fd, &st) != 0) return PosixErrorToStatus(absl::StrCat("stat ", shown), errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(shown, " is ", Kind(st.st_mode), ", not a regular file"));
  }
  // One byte past the cap tells a file of exactly `max_bytes` from a longer one.
  NodeFilePrefix out;
  std::string& data = out.contents;
  while (data.size() <= max_bytes) {
    size_t want = std::min(kReadChunk, max_bytes + 1 - data.size());
    size_t had = data.size();
    data.resize(had + want);
    ssize_t n = ::read(fd, data.data() + had, want);
    if (n < 0) {
      data.resize(had);
      if (errno == EINTR) continue;
      return PosixErrorToStatus(absl::StrCat("read ", shown), errno);
    }
    data.resize(had + static_cast<size_t>(n));
    if (n == 0) break;
  }
  if (data.size() > max_bytes) {
    data.resize(max_bytes);
    out.truncated = true;
  }
  return out;
}

absl::StatusOr<std::string> ReadNodeFile(const RootPath& root, absl::string_view path,
                                         size_t max_bytes) {
  absl::StatusOr<NodeFilePrefix> read = ReadNodeFilePrefix(root, path, max_bytes);
  if (!read.ok()) return read.status();
  if (read->truncated) {
    return absl::OutOfRangeError(
        absl::StrCat(root.Resolve(path), " is larger than ", max_bytes, " bytes"));
  }
  return std::move(read->contents);
}

bool NodeFileExists(const RootPath& root, absl::string_view path) {
  int fd = OpenInRoot(root, path, O_PATH | O_NOFOLLOW);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace tended
