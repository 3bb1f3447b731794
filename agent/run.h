// main() for the tended-agent daemon: wires the real seams (gRPC client, logind or
// simulated rebooter, inotify sentinel watcher, systemd notifier) around the Agent core.
#ifndef TENDED_AGENT_RUN_H_
#define TENDED_AGENT_RUN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "agent/rebooter.h"
#include "common/clock.h"
#include "common/root_path.h"

namespace tended::agent {

struct AgentOptions {
  std::string config_path;
  std::string node_name_override;
  std::string root_override;
  std::string metrics_listen_override;  // Empty: the configuration's metrics_listen.
};

// The rebooter config.reboot.method names: logind (which connects to nothing until
// Reboot()) or the simulated one (which refuses the host root, "/").
absl::StatusOr<std::unique_ptr<Rebooter>> ChooseRebooter(const AgentConfig& config,
                                                         const RootPath& root, const Clock& clock);

// Runs until SIGTERM or SIGINT; returns the process exit code.
int RunAgent(const AgentOptions& options);

}  // namespace tended::agent

#endif  // TENDED_AGENT_RUN_H_
