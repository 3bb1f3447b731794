// What the apt engine reads from dpkg's database without libapt-pkg (status stanzas, the
// updates journal, holds), dpkg's fcntl locks, and the reboot-required sentinel files.
#ifndef TENDED_AGENT_APT_ENGINE_DPKG_STATE_H_
#define TENDED_AGENT_APT_ENGINE_DPKG_STATE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/root_path.h"

namespace tended::agent::apt {

struct DpkgStatusEntry {
  std::string package;
  std::string architecture;
  std::string version;
  std::string want;    // install, hold, deinstall, purge, unknown
  std::string eflag;   // ok, reinstreq
  std::string status;  // installed, unpacked, half-configured, ...
};

std::vector<DpkgStatusEntry> ParseDpkgStatus(absl::string_view contents);
absl::StatusOr<std::vector<DpkgStatusEntry>> ReadDpkgStatus(const std::string& status_path);

// An interrupted dpkg leaves journal files in <admindir>/updates/ or packages in a state
// other than installed, not-installed or config-files.
struct DpkgInterruption {
  std::vector<std::string> journal_files;
  std::vector<std::string> unfinished;  // "pkg (half-configured)".
  bool interrupted() const { return !journal_files.empty() || !unfinished.empty(); }
};
absl::StatusOr<DpkgInterruption> InspectDpkg(const std::string& admindir);

// Installed packages whose selection is "hold", sorted.
std::vector<std::string> HeldPackages(const std::vector<DpkgStatusEntry>& entries);

// The pid of another process holding an fcntl write lock on `path`, or 0 when free (or
// when the file does not exist).
absl::StatusOr<pid_t> LockHolder(const std::string& path);

// An fcntl lock on one of dpkg's lock files, released when destroyed. Remember that fcntl
// locks belong to the process: never take one on a file this process already locks.
class DpkgLockFile {
 public:
  // UNAVAILABLE naming the holder when another process has it.
  static absl::StatusOr<DpkgLockFile> TryAcquire(const std::string& path);
  DpkgLockFile(DpkgLockFile&& other) noexcept;
  DpkgLockFile& operator=(DpkgLockFile&&) = delete;
  ~DpkgLockFile();

 private:
  explicit DpkgLockFile(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// At most this much of reboot-required.pkgs is read; the rest is ignored, with a warning.
inline constexpr size_t kRebootPackagesMaxBytes = 64 * 1024;

// <root>/var/run/reboot-required and its .pkgs list.
struct RebootSentinel {
  bool exists = false;
  std::vector<std::string> packages;
};
// Both read as node files (common/node_file.h): inside the root, never blocking. A list
// that is not a regular file is ignored with a warning.
absl::StatusOr<RebootSentinel> ReadRebootSentinel(const RootPath& root);
// Creates the sentinel if missing and adds the packages not yet listed in .pkgs.
absl::Status WriteRebootSentinel(const RootPath& root, const std::vector<std::string>& packages);

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_DPKG_STATE_H_
