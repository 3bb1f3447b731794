// Resolves the absolute paths the agent and coordinator touch (/var/run/reboot-required,
// /var/lib/dpkg, ...) under a configurable root, so tests work in a throwaway tree.
//
// A resolved path never leaves the root by its spelling: Resolve() normalises the path
// lexically and a ".." component stops at the root, as it would in a chroot. Configured
// paths with a ".." are refused outright where they are read (HasDotDotComponent), so the
// clamp is the backstop every caller gets without asking. Symlinks are not looked at here:
// reading a node's files through symlinks that might point out of the root is what
// common/node_file.h is for.
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
  // paths are taken as relative to the root too. Empty and "." components are dropped and
  // ".." removes the component before it, never more than there are: Resolve("/../etc")
  // is "<root>/etc". A trailing slash is kept.
  std::string Resolve(absl::string_view path) const;

  const std::string& root() const { return root_; }
  bool is_host_root() const { return root_.empty(); }

  // True when a component of `path` is "..". Configuration refuses such paths.
  static bool HasDotDotComponent(absl::string_view path);

 private:
  std::string root_;  // Empty for "/".
};

}  // namespace tended

#endif  // TENDED_COMMON_ROOT_PATH_H_
