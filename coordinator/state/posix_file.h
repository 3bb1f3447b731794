// The few POSIX file calls the state journal and its lock make, as absl::Status with the
// path and the failed call in the message.
#ifndef TENDED_COORDINATOR_STATE_POSIX_FILE_H_
#define TENDED_COORDINATOR_STATE_POSIX_FILE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended::coordinator {

// Writes all of `data` at the file offset (O_APPEND files: at the end), retrying short writes.
absl::Status WriteAll(int fd, absl::string_view data, const std::string& path);

// fsync of a folder, so that files created, renamed or removed in it survive a crash.
absl::Status SyncDirectory(const std::string& dir);

// The names in a folder, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir);

// Creates `dir` (mode 0700, parents too) when it is missing; an error when it is a file.
absl::Status EnsureDirectory(const std::string& dir);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_STATE_POSIX_FILE_H_
