// Reads the node's own small files (boot id, kernel release, /proc/stat, os-release, the
// reboot sentinel and its package list) under the agent's root without trusting them: the
// path is resolved as if the root were "/" (an absolute symlink starts again at the root,
// ".." stops there, /proc magic links are refused), so nothing outside the root is ever
// opened; the file is opened non-blocking and must be a regular file (a FIFO, device,
// socket or directory is an error, never a hang); and at most a given number of bytes is
// read.
//
// Resolution uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) when the kernel has it
// (Linux 5.6+), else a walk of one component at a time with O_NOFOLLOW that follows each
// symlink itself with the same rules (a /proc magic link is then followed by its text,
// inside the root, where openat2 refuses it). A symlink pointing out of the root is thus
// never refused but never leaves it either: a root mounted from a host (/host, whose
// var/run links to /run) reads the host's /run under /host, and a link to /etc/passwd
// reads <root>/etc/passwd or nothing.
#ifndef TENDED_COMMON_NODE_FILE_H_
#define TENDED_COMMON_NODE_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/root_path.h"

namespace tended {

struct NodeFilePrefix {
  std::string contents;
  bool truncated = false;  // The file is longer than the cap; `contents` is its first part.
};

// The first `max_bytes` of `path` (as seen from the root, e.g. "/var/run/reboot-required.pkgs").
// NOT_FOUND when it does not exist, FAILED_PRECONDITION ("... is a FIFO, not a regular
// file") when it is not a regular file, other codes from the system calls.
absl::StatusOr<NodeFilePrefix> ReadNodeFilePrefix(const RootPath& root, absl::string_view path,
                                                  size_t max_bytes);

// The whole of `path`; OUT_OF_RANGE when it is longer than `max_bytes`.
absl::StatusOr<std::string> ReadNodeFile(const RootPath& root, absl::string_view path,
                                         size_t max_bytes);

// Whether `path` exists under the root, resolved the same way. Like lstat, a last component
// that is a symlink exists. False as well when the lookup fails for another reason.
bool NodeFileExists(const RootPath& root, absl::string_view path);

enum class NodeFileResolution { kAuto, kWalk };
// kWalk: never use openat2, so tests cover the walk on kernels that have openat2.
void SetNodeFileResolutionForTest(NodeFileResolution resolution);

}  // namespace tended

#endif  // TENDED_COMMON_NODE_FILE_H_
