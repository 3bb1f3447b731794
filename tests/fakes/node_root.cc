#include "tests/fakes/node_root.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace tended::testing {

absl::Status PrepareNodeRoot(const std::string& root, const std::string& boot_id) {
  RETURN_IF_ERROR(MakeDirectories(root + "/proc/sys/kernel/random"));
  RETURN_IF_ERROR(MakeDirectories(root + "/var/run"));
  RETURN_IF_ERROR(MakeDirectories(root + "/run"));
  RETURN_IF_ERROR(WriteFileAtomically(root + "/proc/sys/kernel/random/boot_id", boot_id + "\n"));
  RETURN_IF_ERROR(WriteFileAtomically(root + "/proc/sys/kernel/osrelease", "6.1.0-26-amd64\n"));
  return WriteFileAtomically(root + "/proc/stat", "cpu  1 2 3 4\nbtime 1767225600\n");
}

absl::Status MarkRebootRequired(const std::string& root, const std::string& package) {
  RETURN_IF_ERROR(MakeDirectories(root + "/var/run"));
  RETURN_IF_ERROR(WriteFileAtomically(root + "/var/run/reboot-required.pkgs", package + "\n"));
  return WriteFileAtomically(root + "/var/run/reboot-required", "*** System restart required ***\n");
}

}  // namespace tended::testing
