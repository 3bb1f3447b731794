#include "coordinator/state/state_dir_lock.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/posix_status.h"
#include "common/status_macros.h"
#include "coordinator/state/posix_file.h"

namespace tended::coordinator {
namespace {

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown host";
  return name;
}

std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\n", " "}, {"\r", " "}});
}

// "pid N on HOST since TIME, DESCRIPTION" from the LOCK file's "key: value" lines.
std::string DescribeHolder(int fd, const std::string& path) {
  std::string contents(4096, '\0');
  ssize_t n = ::pread(fd, contents.data(), contents.size(), 0);
  if (n <= 0) return absl::StrCat("holder unknown: ", path, " is empty");
  contents.resize(static_cast<size_t>(n));
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(contents, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(": ", 1));
    fields[std::string(kv.first)] = std::string(kv.second);
  }
  auto field = [&](const std::string& key) {
    auto it = fields.find(key);
    return it == fields.end() || it->second.empty() ? std::string("?") : it->second;
  };
  return absl::StrCat("pid ", field("pid"), " on ", field("host"), " since ", field("since"), ", ",
                      field("holder"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDirLock>> StateDirLock::Acquire(const std::string& dir,
                                                                    std::string holder_description,
                                                                    const Clock& clock) {
  RETURN_IF_ERROR(EnsureDirectory(dir));
  std::string path = absl::StrCat(dir, "/", kStateDirLockFileName);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int saved_errno = errno;
    if (saved_errno != EWOULDBLOCK) {
      ::close(fd);
      return PosixErrorToStatus(absl::StrCat("flock ", path), saved_errno);
    }
    std::string holder = DescribeHolder(fd, path);
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("state folder ", dir, " is in use by another tended-coordinator (", holder,
                     "); two coordinators on one state would grant the same slots"));
  }
  std::string info = absl::StrCat("pid: ", ::getpid(), "\nhost: ", OneLine(HostName()),
                                  "\nsince: ", absl::FormatTime(clock.Now(), absl::UTCTimeZone()),
                                  "\nholder: ", OneLine(holder_description), "\n");
  if (::ftruncate(fd, 0) != 0) {
    int saved_errno = errno;
    ::close(fd);
    return PosixErrorToStatus(absl::StrCat("truncate ", path), saved_errno);
  }
  absl::Status written = WriteAll(fd, info, path);
  if (!written.ok()) {
    ::close(fd);
    return written;
  }
  return std::unique_ptr<StateDirLock>(new StateDirLock(std::move(path), fd));
}

StateDirLock::~StateDirLock() { ::close(fd_); }

}  // namespace tended::coordinator
