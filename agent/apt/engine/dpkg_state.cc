#include "agent/apt/engine/dpkg_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/node_file.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

namespace tended::agent::apt {

std::vector<DpkgStatusEntry> ParseDpkgStatus(absl::string_view contents) {
  std::vector<DpkgStatusEntry> out;
  DpkgStatusEntry current;
  auto flush = [&] {
    if (!current.package.empty()) out.push_back(current);
    current = DpkgStatusEntry();
  };
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (absl::StripTrailingAsciiWhitespace(line).empty()) {
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;  // Continuation.
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view field = line.substr(0, colon);
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (field == "Package") {
      current.package = value;
    } else if (field == "Architecture") {
      current.architecture = value;
    } else if (field == "Version") {
      current.version = value;
    } else if (field == "Status") {
      std::vector<std::string> words = absl::StrSplit(value, ' ', absl::SkipEmpty());
      if (words.size() == 3) {
        current.want = words[0];
        current.eflag = words[1];
        current.status = words[2];
      }
    }
  }
  flush();
  return out;
}

absl::StatusOr<std::vector<DpkgStatusEntry>> ReadDpkgStatus(const std::string& status_path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(status_path));
  return ParseDpkgStatus(contents);
}

absl::StatusOr<DpkgInterruption> InspectDpkg(const std::string& admindir) {
  DpkgInterruption result;
  std::string updates = absl::StrCat(admindir, "/updates");
  if (DIR* dir = opendir(updates.c_str()); dir != nullptr) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      // dpkg only reads journal files whose names are all digits.
      if (!name.empty() &&
          std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        result.journal_files.push_back(name);
      }
    }
    closedir(dir);
  } else if (errno != ENOENT) {
    return PosixErrorToStatus(absl::StrCat("opendir ", updates), errno);
  }
  std::sort(result.journal_files.begin(), result.journal_files.end());
  ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> entries,
                   ReadDpkgStatus(absl::StrCat(admindir, "/status")));
  for (const DpkgStatusEntry& e : entries) {
    bool settled =
        e.status == "installed" || e.status == "not-installed" || e.status == "config-files";
    if (!settled || e.eflag != "ok") {
      result.unfinished.push_back(absl::StrCat(e.package, " (", e.status, ", ", e.eflag, ")"));
    }
  }
  return result;
}

std::vector<std::string> HeldPackages(const std::vector<DpkgStatusEntry>& entries) {
  std::vector<std::string> out;
  for (const DpkgStatusEntry& e : entries) {
    if (e.want == "hold" && e.status != "not-installed") out.push_back(e.package);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<pid_t> LockHolder(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  }
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int rc = fcntl(fd, F_GETLK, &fl);
  int err = errno;
  close(fd);
  if (rc != 0) return PosixErrorToStatus(absl::StrCat("fcntl F_GETLK ", path), err);
  return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

absl::StatusOr<DpkgLockFile> DpkgLockFile::TryAcquire(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    int err = errno;
    close(fd);
    if (err == EAGAIN || err == EACCES) {
      absl::StatusOr<pid_t> holder = LockHolder(path);
      return absl::UnavailableError(
          absl::StrCat(path, " is locked by process ", holder.ok() ? absl::StrCat(*holder) : "?"));
    }
    return PosixErrorToStatus(absl::StrCat("lock ", path), err);
  }
  return DpkgLockFile(fd);
}

DpkgLockFile::DpkgLockFile(DpkgLockFile&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DpkgLockFile::~DpkgLockFile() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<RebootSentinel> ReadRebootSentinel(const RootPath& root) {
  RebootSentinel out;
  out.exists = NodeFileExists(root, "/var/run/reboot-required");
  absl::StatusOr<NodeFilePrefix> list =
      ReadNodeFilePrefix(root, "/var/run/reboot-required.pkgs", kRebootPackagesMaxBytes);
  if (absl::IsNotFound(list.status())) return out;
  if (absl::IsFailedPrecondition(list.status())) {
    Logger("apt")->warn("ignoring the reboot package list: {}", list.status().message());
    return out;
  }
  if (!list.ok()) return list.status();
  absl::string_view contents = list->contents;
  if (list->truncated) {
    Logger("apt")->warn("reading only the first {} bytes of {}", kRebootPackagesMaxBytes,
                        root.Resolve("/var/run/reboot-required.pkgs"));
    contents = contents.substr(0, contents.rfind('\n') + 1);  // Without a cut last line.
  }
  for (absl::string_view line : absl::StrSplit(contents, '\n', absl::SkipWhitespace())) {
    std::string name(absl::StripAsciiWhitespace(line));
    if (std::find(out.packages.begin(), out.packages.end(), name) == out.packages.end()) {
      out.packages.push_back(name);
    }
  }
  return out;
}

absl::Status WriteRebootSentinel(const RootPath& root, const std::vector<std::string>& packages) {
  ASSIGN_OR_RETURN(RebootSentinel current, ReadRebootSentinel(root));
  std::string sentinel = root.Resolve("/var/run/reboot-required");
  RETURN_IF_ERROR(MakeDirectories(root.Resolve("/var/run")));
  if (!current.exists) {
    RETURN_IF_ERROR(WriteFileAtomically(sentinel, "*** System restart required ***\n"));
  }
  std::vector<std::string> listed = current.packages;
  bool changed = false;
  for (const std::string& p : packages) {
    if (std::find(listed.begin(), listed.end(), p) == listed.end()) {
      listed.push_back(p);
      changed = true;
    }
  }
  if (changed) {
    RETURN_IF_ERROR(WriteFileAtomically(root.Resolve("/var/run/reboot-required.pkgs"),
                                        absl::StrCat(absl::StrJoin(listed, "\n"), "\n")));
  }
  return absl::OkStatus();
}

}  // namespace tended::agent::apt
