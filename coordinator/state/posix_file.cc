#include "coordinator/state/posix_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/posix_status.h"

namespace tended::coordinator {

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixErrorToStatus(absl::StrCat("write ", path), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", dir), errno);
  int rc = ::fsync(fd);
  int saved_errno = errno;
  ::close(fd);
  if (rc != 0) return PosixErrorToStatus(absl::StrCat("fsync ", dir), saved_errno);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) {
  DIR* handle = ::opendir(dir.c_str());
  if (handle == nullptr) return PosixErrorToStatus(absl::StrCat("opendir ", dir), errno);
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    struct dirent* entry = ::readdir(handle);
    if (entry == nullptr) break;
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int saved_errno = errno;
  ::closedir(handle);
  if (saved_errno != 0) return PosixErrorToStatus(absl::StrCat("readdir ", dir), saved_errno);
  return names;
}

absl::Status EnsureDirectory(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(dir, " is not a folder"));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT) return PosixErrorToStatus(absl::StrCat("stat ", dir), errno);
  std::string trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  absl::Status made = MakeDirectories(trimmed, 0700);
  if (!made.ok()) return made;
  return SyncDirectory(Dirname(trimmed));
}

}  // namespace tended::coordinator
