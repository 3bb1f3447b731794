// Builds a throwaway node filesystem for an agent under test: a boot id, /proc/stat with a
// boot time, a kernel release, and empty /run and /var/run.
#ifndef TENDED_TESTS_FAKES_NODE_ROOT_H_
#define TENDED_TESTS_FAKES_NODE_ROOT_H_

#include <string>

#include "absl/status/status.h"

namespace tended::testing {

absl::Status PrepareNodeRoot(const std::string& root, const std::string& boot_id);

// Creates <root>/var/run/reboot-required and its .pkgs list, as a package's postinst would.
absl::Status MarkRebootRequired(const std::string& root, const std::string& package);

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_NODE_ROOT_H_
