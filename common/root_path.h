// Resolves the absolute paths the agent and coordinator touch (/var/run/reboot-required,
// /var/lib/dpkg, ...) under a configurable root, so tests work in a throwaway tree.
#ifndef TENDED_COMMON_ROOT_PATH_H_
#define TENDED_COMMON_ROOT_PATH_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tended {

class RootPath {
 public:
  // `root` is "/" on a real node. Trailing slashes are dropped.
  explicit RootPath(std::string root = "/");

  // Resolve("/var/run/reboot-required") is "<root>/var/run/reboot-required". Relative
  // paths are taken as relative to the root too.
  std::string Resolve(absl::string_view path) const;

  const std::string& root() const { return root_; }
  bool is_host_root() const { return root_.empty(); }

 private:
  std::string root_;  // Empty for "/".
};

}  // namespace tended

#endif  // TENDED_COMMON_ROOT_PATH_H_
