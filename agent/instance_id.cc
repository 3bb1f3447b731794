#include "agent/instance_id.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended::agent {
namespace {

// An id is 36 characters; anything much longer is not one, and is not read whole.
constexpr size_t kMaxIdFileSize = 256;

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

bool ReadFully(int fd, uint8_t* bytes, size_t size) {
  size_t filled = 0;
  while (filled < size) {
    ssize_t n = ::read(fd, bytes + filled, size - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    filled += static_cast<size_t>(n);
  }
  return true;
}

bool FillRandom(uint8_t* bytes, size_t size) {
  size_t filled = 0;
  while (filled < size) {
    ssize_t n = ::getrandom(bytes + filled, size - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  if (filled == size) return true;
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool read = ReadFully(fd, bytes, size);
  ::close(fd);
  return read;
}

// The file's text; NOT_FOUND when it does not exist, another error when it is not a small
// regular file (a symlink, a FIFO, a folder, something huge).
absl::StatusOr<std::string> ReadSmallRegularFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int saved_errno = errno;
    ::close(fd);
    return PosixErrorToStatus(absl::StrCat("stat ", path), saved_errno);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  std::string text(kMaxIdFileSize + 1, '\0');
  size_t filled = 0;
  while (filled < text.size()) {
    ssize_t n = ::read(fd, text.data() + filled, text.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved_errno = errno;
      ::close(fd);
      return PosixErrorToStatus(absl::StrCat("read ", path), saved_errno);
    }
    if (n == 0) break;
    filled += static_cast<size_t>(n);
  }
  ::close(fd);
  if (filled > kMaxIdFileSize) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is larger than ", kMaxIdFileSize, " bytes"));
  }
  text.resize(filled);
  return text;
}

// Writes `id` beside `path` and moves it into place: over whatever is there when
// `replace`, else only if nothing is there (ALREADY_EXISTS otherwise).
absl::Status InstallId(const std::string& path, const std::string& id, bool replace) {
  const std::string temp = absl::StrCat(path, ".new.", ::getpid());
  (void)::unlink(temp.c_str());  // A leftover of a crash.
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", temp), errno);
  const std::string line = absl::StrCat(id, "\n");
  size_t written = 0;
  int failed_errno = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed_errno = n < 0 ? errno : EIO;
      break;
    }
    written += static_cast<size_t>(n);
  }
  if (failed_errno == 0 && ::fsync(fd) != 0) failed_errno = errno;
  if (::close(fd) != 0 && failed_errno == 0) failed_errno = errno;
  if (failed_errno != 0) {
    ::unlink(temp.c_str());
    return PosixErrorToStatus(absl::StrCat("write ", temp), failed_errno);
  }
  const int moved =
      replace ? ::rename(temp.c_str(), path.c_str()) : ::link(temp.c_str(), path.c_str());
  const int moved_errno = errno;
  if (!replace || moved != 0) ::unlink(temp.c_str());
  if (moved != 0) {
    return PosixErrorToStatus(absl::StrCat(replace ? "rename " : "link ", temp, " to ", path),
                              moved_errno);
  }
  const std::string folder = Dirname(path);
  int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return PosixErrorToStatus(absl::StrCat("open ", folder), errno);
  const int synced = ::fsync(dir_fd);
  const int sync_errno = errno;
  ::close(dir_fd);
  if (synced != 0) return PosixErrorToStatus(absl::StrCat("fsync ", folder), sync_errno);
  return absl::OkStatus();
}

}  // namespace

std::string NewRandomUuid() {
  uint8_t bytes[16];
  if (!FillRandom(bytes, sizeof(bytes))) {
    std::random_device device;
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(device());
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string id;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    absl::StrAppend(&id, absl::Hex(bytes[i], absl::kZeroPad2));
  }
  return id;
}

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::string> LoadOrCreateAgentInstanceId(const std::string& path) {
  // A second round only when another process created the file between our read and link.
  for (int attempt = 0; attempt < 3; ++attempt) {
    bool replace = false;
    absl::StatusOr<std::string> text = ReadSmallRegularFile(path);
    if (text.ok()) {
      absl::string_view id = absl::StripAsciiWhitespace(*text);
      if (IsUuid(id)) return absl::AsciiStrToLower(id);
      Log()->error(
          "{} holds no agent instance id ({} bytes that are not a UUID); replacing it with a "
          "new id: the coordinator will take this for a new agent on the node",
          path, text->size());
      replace = true;
    } else if (!absl::IsNotFound(text.status())) {
      Log()->error(
          "cannot read the agent instance id: {}; replacing it with a new id: the coordinator "
          "will take this for a new agent on the node",
          text.status().ToString());
      replace = true;
    }
    const std::string id = NewRandomUuid();
    absl::Status installed = InstallId(path, id, replace);
    if (installed.ok()) {
      Log()->info("agent instance id {} (new, in {})", id, path);
      return id;
    }
    if (!absl::IsAlreadyExists(installed)) {
      return absl::Status(installed.code(),
                          absl::StrCat("making the agent instance id: ", installed.message()));
    }
  }
  return absl::InternalError(absl::StrCat(path, " keeps changing while the agent reads it"));
}

}  // namespace tended::agent
