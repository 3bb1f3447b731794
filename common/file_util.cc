#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

namespace tended {
namespace {

absl::Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  int rc = ::fsync(fd);
  int saved_errno = errno;
  ::close(fd);
  if (rc != 0) return PosixErrorToStatus(absl::StrCat("fsync ", path), saved_errno);
  return absl::OkStatus();
}

}  // namespace

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  std::string contents;
  char buffer[8192];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved_errno = errno;
      ::close(fd);
      return PosixErrorToStatus(absl::StrCat("read ", path), saved_errno);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, int mode) {
  std::string temp_path = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", temp_path), errno);
  const char* data = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved_errno = errno;
      ::close(fd);
      ::unlink(temp_path.c_str());
      return PosixErrorToStatus(absl::StrCat("write ", temp_path), saved_errno);
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int saved_errno = errno;
    ::close(fd);
    ::unlink(temp_path.c_str());
    return PosixErrorToStatus(absl::StrCat("fsync ", temp_path), saved_errno);
  }
  if (::close(fd) != 0) {
    int saved_errno = errno;
    ::unlink(temp_path.c_str());
    return PosixErrorToStatus(absl::StrCat("close ", temp_path), saved_errno);
  }
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    int saved_errno = errno;
    ::unlink(temp_path.c_str());
    return PosixErrorToStatus(absl::StrCat("rename ", temp_path, " to ", path), saved_errno);
  }
  return FsyncPath(Dirname(path), O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<FileStamp> StampFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return PosixErrorToStatus(absl::StrCat("stat ", path), errno);
  }
  return FileStamp{static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino),
                   static_cast<int64_t>(info.st_size),
                   static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec,
                   S_ISREG(info.st_mode)};
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

absl::Status MakeDirectories(const std::string& path, int mode) {
  if (path.empty()) return absl::OkStatus();
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return PosixErrorToStatus(absl::StrCat("mkdir ", partial), errno);
    }
  }
  return absl::OkStatus();
}

absl::Status RemoveFileIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return PosixErrorToStatus(absl::StrCat("unlink ", path), errno);
  }
  return absl::OkStatus();
}

absl::Status CheckNotWritableByOthers(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return PosixErrorToStatus(absl::StrCat("stat ", path), errno);
  if ((st.st_mode & S_IWOTH) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s is writable by every user (mode %04o); refusing it: chmod o-w %s", path,
        st.st_mode & 07777, path));
  }
  if ((st.st_mode & S_IWGRP) != 0 && st.st_gid != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s is writable by group %d (mode %04o); refusing it: chmod g-w %s or chgrp root %s",
        path, st.st_gid, st.st_mode & 07777, path, path));
  }
  return absl::OkStatus();
}

absl::Status MakePrivateDirectory(const std::string& path) {
  RETURN_IF_ERROR(MakeDirectories(path, 0700));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return PosixErrorToStatus(absl::StrCat("stat ", path), errno);
  if ((st.st_mode & 0077) != 0 && ::chmod(path.c_str(), st.st_mode & 0700) != 0) {
    return PosixErrorToStatus(absl::StrCat("chmod 0700 ", path), errno);
  }
  return absl::OkStatus();
}

}  // namespace tended
