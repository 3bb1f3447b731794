// Small file helpers returning absl::Status: whole-file reads and crash-safe writes.
#ifndef TENDED_COMMON_FILE_UTIL_H_
#define TENDED_COMMON_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended {

absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// The folder part of `path`: "/a/b" -> "/a", "/a" -> "/", "a" -> ".".
std::string Dirname(const std::string& path);

// Writes `contents` so that a crash at any moment leaves either the old or the new file:
// a temporary file beside it, fsync, rename over the target, fsync of the folder.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 int mode = 0644);

bool PathExists(const std::string& path);

// What tells one version of a file from another without reading it (stat, symlinks
// followed): watchers compare stamps to know when to read again.
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool regular = false;  // A regular file (not a folder, device or socket).
  bool operator==(const FileStamp& other) const = default;
};
// The error names the path, as stat reported it (NOT_FOUND, PERMISSION_DENIED, ...).
absl::StatusOr<FileStamp> StampFile(const std::string& path);

// mkdir -p.
absl::Status MakeDirectories(const std::string& path, int mode = 0755);

absl::Status RemoveFileIfExists(const std::string& path);

// PERMISSION_DENIED naming `path` when the file (symlinks followed) is writable by every user,
// or by a group other than root's: whoever can change a root daemon's configuration or key
// owns the node. NOT_FOUND and the like as stat says.
absl::Status CheckNotWritableByOthers(const std::string& path);

// MakeDirectories(path, 0700), then the last folder's mode narrowed to 0700 if it was wider
// (a state folder made by hand or by an older version).
absl::Status MakePrivateDirectory(const std::string& path);

}  // namespace tended

#endif  // TENDED_COMMON_FILE_UTIL_H_
