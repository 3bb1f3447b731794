// Reads the facts an agent reports about its node (boot id, boot time, kernel, whether a
// reboot is required and why) from files under the agent's root, so a test tree or a
// simulated reboot can change them. Every file is read through common/node_file.h: resolved
// inside the root, never blocking on a FIFO, and capped.
#ifndef TENDED_AGENT_NODE_FACTS_H_
#define TENDED_AGENT_NODE_FACTS_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "common/root_path.h"
#include "tended/v1/types.pb.h"

namespace tended::agent {

inline constexpr char kBootIdPath[] = "/proc/sys/kernel/random/boot_id";
inline constexpr char kKernelReleasePath[] = "/proc/sys/kernel/osrelease";
inline constexpr char kProcStatPath[] = "/proc/stat";
// Packages named from reboot-required.pkgs; more are summed up as "and N more".
inline constexpr int kMaxRebootReasons = 100;

// How much of each node file is read (common/node_file.h). A boot id or kernel release
// longer than its cap is an error; /proc/stat and the package list are read up to their
// cap and the rest is left unread (the package list then says so in its last reason).
inline constexpr size_t kBootIdMaxBytes = 4 * 1024;
inline constexpr size_t kKernelReleaseMaxBytes = 4 * 1024;
inline constexpr size_t kProcStatMaxBytes = 1024 * 1024;
inline constexpr size_t kRebootPackagesMaxBytes = 64 * 1024;

class NodeFactsReader {
 public:
  NodeFactsReader(const RootPath& root, const AgentConfig& config, std::string node_name);

  // The boot id is required; everything else is best effort (empty when unreadable).
  absl::StatusOr<tended::v1::NodeFacts> Read() const;
  absl::StatusOr<std::string> ReadBootId() const;
  // True when the reboot-required sentinel exists (inside the root, as lstat sees it).
  bool RebootRequired() const;

 private:
  const RootPath& root_;
  const AgentConfig& config_;
  std::string node_name_;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_NODE_FACTS_H_
