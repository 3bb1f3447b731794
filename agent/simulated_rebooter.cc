#include "agent/simulated_rebooter.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/instance_id.h"
#include "agent/node_facts.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

namespace tended::agent {
namespace {

// Deeper trees than this under /run are not something a test builds; stop rather than recurse.
constexpr int kMaxDepth = 64;

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return PosixErrorToStatus(absl::StrCat("realpath ", path), errno);
  }
  return std::string(resolved);
}

bool IsInside(const std::string& root_real, const std::string& path_real) {
  return path_real == root_real || (path_real.size() > root_real.size() &&
                                    path_real.compare(0, root_real.size(), root_real) == 0 &&
                                    path_real[root_real.size()] == '/');
}

// The real path of the simulated root; an error for the host root.
absl::StatusOr<std::string> CheckedRoot(const RootPath& root) {
  if (root.is_host_root()) {
    return absl::FailedPreconditionError(
        "a simulated reboot needs a root other than \"/\": it rewrites the boot id and empties "
        "/run under the root");
  }
  absl::StatusOr<std::string> real = RealPath(root.root());
  if (real.ok() && real->size() <= 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("a simulated reboot refuses root ", root.root(), ", which is \"/\""));
  }
  return real;
}

// Fails unless `path`, or the nearest part of it that exists, resolves inside the root.
absl::Status CheckInsideRoot(const std::string& root_real, const std::string& path) {
  std::string existing = path;
  absl::StatusOr<std::string> real = RealPath(existing);
  while (!real.ok() && existing != "/" && existing != ".") {
    existing = Dirname(existing);
    real = RealPath(existing);
  }
  if (!real.ok()) return real.status();
  if (!IsInside(root_real, *real)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " resolves to ", *real, ", outside the simulated root ", root_real));
  }
  return absl::OkStatus();
}

// Creates the parent folders of `path` and writes it atomically, never outside the root.
absl::Status WriteInsideRoot(const std::string& root_real, const std::string& path,
                             absl::string_view contents) {
  std::string parent = Dirname(path);
  RETURN_IF_ERROR(CheckInsideRoot(root_real, parent));
  RETURN_IF_ERROR(MakeDirectories(parent));
  RETURN_IF_ERROR(CheckInsideRoot(root_real, parent));
  return WriteFileAtomically(path, contents);
}

// Removes everything inside the open directory `dir_fd` without following symlinks and without
// crossing into another file system.
absl::Status RemoveContents(int dir_fd, dev_t device, const std::string& display_path, int depth) {
  if (depth > kMaxDepth) {
    return absl::FailedPreconditionError(
        absl::StrCat(display_path, ": nested deeper than ", kMaxDepth, " folders"));
  }
  int list_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (list_fd < 0) return PosixErrorToStatus(absl::StrCat("dup ", display_path), errno);
  DIR* dir = ::fdopendir(list_fd);
  if (dir == nullptr) {
    int saved_errno = errno;
    ::close(list_fd);
    return PosixErrorToStatus(absl::StrCat("opendir ", display_path), saved_errno);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    return PosixErrorToStatus(absl::StrCat("readdir ", display_path), read_errno);
  }

  for (const std::string& name : names) {
    std::string child_path = absl::StrCat(display_path, "/", name);
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return PosixErrorToStatus(absl::StrCat("stat ", child_path), errno);
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != device) {
        return absl::FailedPreconditionError(absl::StrCat(
            child_path, " is another file system mounted inside run; not removing it"));
      }
      int child_fd =
          ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child_fd < 0) return PosixErrorToStatus(absl::StrCat("open ", child_path), errno);
      absl::Status status = RemoveContents(child_fd, device, child_path, depth + 1);
      ::close(child_fd);
      RETURN_IF_ERROR(status);
    }
    if (::unlinkat(dir_fd, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0 &&
        errno != ENOENT) {
      return PosixErrorToStatus(absl::StrCat("remove ", child_path), errno);
    }
  }
  return absl::OkStatus();
}

// Empties <root>/run or <root>/var/run the way a fresh tmpfs would be: the folder (or the
// symlink to it) stays, what is inside goes. Anything resolving outside the root is left alone.
absl::Status ClearRunDirectory(const std::string& root_real, const std::string& path) {
  struct stat lst;
  if (::lstat(path.c_str(), &lst) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::OkStatus();
    return PosixErrorToStatus(absl::StrCat("lstat ", path), errno);
  }
  if (!S_ISDIR(lst.st_mode) && !S_ISLNK(lst.st_mode)) return absl::OkStatus();
  absl::StatusOr<std::string> real = RealPath(path);
  if (!real.ok()) {
    if (S_ISLNK(lst.st_mode)) return absl::OkStatus();  // dangling: nothing to clear
    return real.status();
  }
  if (!IsInside(root_real, *real) || *real == root_real) {
    Logger("reboot")->info("simulated reboot: leaving {} alone, it resolves to {} outside {}", path,
                           *real, root_real);
    return absl::OkStatus();
  }
  int fd = ::open(real->c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR) return absl::OkStatus();  // a symlink to a file
    return PosixErrorToStatus(absl::StrCat("open ", *real), errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int saved_errno = errno;
    ::close(fd);
    return PosixErrorToStatus(absl::StrCat("stat ", *real), saved_errno);
  }
  absl::Status status = RemoveContents(fd, st.st_dev, *real, 0);
  ::close(fd);
  return status;
}

std::string ReplaceBtime(absl::string_view stat_contents, int64_t boot_seconds) {
  std::string btime_line = absl::StrCat("btime ", boot_seconds);
  std::vector<std::string> lines = absl::StrSplit(stat_contents, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  bool replaced = false;
  for (std::string& line : lines) {
    if (absl::StartsWith(line, "btime ") || line == "btime") {
      line = btime_line;
      replaced = true;
    }
  }
  if (!replaced) lines.push_back(btime_line);
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<SimulatedRebooter>> SimulatedRebooter::Create(const RootPath& root,
                                                                             const Clock& clock) {
  RETURN_IF_ERROR(CheckedRoot(root).status());
  return std::make_unique<SimulatedRebooter>(root, clock);
}

SimulatedRebooter::SimulatedRebooter(RootPath root, const Clock& clock)
    : root_(std::move(root)), clock_(clock) {}

int SimulatedRebooter::reboot_count() const {
  absl::MutexLock lock(&mutex_);
  return reboot_count_;
}

std::string SimulatedRebooter::NewBootId() { return NewRandomUuid(); }

absl::Status SimulatedRebooter::Reboot(absl::string_view reason) {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(std::string root_real, CheckedRoot(root_));
  Logger("reboot")->warn("simulated reboot of {}: {}", root_real, std::string(reason));

  RETURN_IF_ERROR(ClearRunDirectory(root_real, root_.Resolve("/run")));
  RETURN_IF_ERROR(ClearRunDirectory(root_real, root_.Resolve("/var/run")));

  std::string stat_path = root_.Resolve(kProcStatPath);
  std::string stat_contents;
  if (absl::StatusOr<std::string> existing = ReadFileToString(stat_path); existing.ok()) {
    stat_contents = *std::move(existing);
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  RETURN_IF_ERROR(WriteInsideRoot(root_real, stat_path,
                                  ReplaceBtime(stat_contents, absl::ToUnixSeconds(clock_.Now()))));

  // The boot id goes last: it is what tells observers that a new boot happened.
  std::string boot_id_path = root_.Resolve(kBootIdPath);
  std::string old_boot_id;
  if (absl::StatusOr<std::string> existing = ReadFileToString(boot_id_path); existing.ok()) {
    old_boot_id = std::string(absl::StripAsciiWhitespace(*existing));
  }
  std::string boot_id = NewBootId();
  for (int attempt = 0; attempt < 3 && boot_id == old_boot_id; ++attempt) boot_id = NewBootId();
  if (boot_id == old_boot_id) return absl::InternalError("could not draw a new boot id");
  RETURN_IF_ERROR(WriteInsideRoot(root_real, boot_id_path, absl::StrCat(boot_id, "\n")));

  ++reboot_count_;
  return absl::OkStatus();
}

}  // namespace tended::agent
