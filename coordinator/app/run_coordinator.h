// tended-coordinator's composition root: the configuration, the state ledger (the state
// folder is locked before the port is bound, so a second coordinator on the same state
// stops there), the Prometheus poller, Kubernetes, observability and the gRPC server, then
// serving until SIGTERM or SIGINT. When the ledger fails the process ends with exit code 70
// so that its supervisor restarts it from what is on disk.
#ifndef TENDED_COORDINATOR_APP_RUN_COORDINATOR_H_
#define TENDED_COORDINATOR_APP_RUN_COORDINATOR_H_

#include <string>

namespace tended::coordinator {

struct CoordinatorOptions {
  std::string config_path;
  std::string listen_override;          // Empty: the configuration's listen address.
  std::string metrics_listen_override;  // Empty: the configuration's metrics_listen.
  bool insecure = false;
  // Start on an empty state although the folder was used before, and rebuild the state
  // from what the agents report (recovery, see core/recovery.cc).
  bool recover_state = false;
};

inline constexpr int kExitStateFailed = 70;

// Returns the process exit code.
int RunCoordinator(const CoordinatorOptions& options);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_APP_RUN_COORDINATOR_H_
