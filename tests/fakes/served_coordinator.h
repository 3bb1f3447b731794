// A coordinator served in the test's process as tended-coordinator serves it: the
// embedded ledger in a folder with its writer thread (group commit, as in production),
// the Coordinator on the real clock and the CoordinatorServer (callback API, work pool,
// ticker) on 127.0.0.1, port 0 unless told. Stopping it shuts the server down, then
// destroys the coordinator and the ledger, which frees the folder's lock: a restart on
// the same folder is a new ServedCoordinator.
#ifndef TENDED_TESTS_FAKES_SERVED_COORDINATOR_H_
#define TENDED_TESTS_FAKES_SERVED_COORDINATOR_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/api/server.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/state/embedded_ledger.h"

namespace tended::testing {

class ServedCoordinator {
 public:
  struct Options {
    int port = 0;
    bool recover_state = false;
    coordinator::CoordinatorServer::Options server;
    // Null: plaintext (as with --insecure).
    std::shared_ptr<grpc::ServerCredentials> credentials;
    // The alert source's last answer (Coordinator::Options::alerts); null: none.
    std::function<std::optional<coordinator::AlertSnapshot>()> alerts;
    // Runs after the coordinator is created and before the server binds (attach
    // Kubernetes here).
    std::function<void(coordinator::Coordinator&)> before_serving;
  };

  // `config.state_dir` (and its legacy_state_file) say where the state lives.
  static absl::StatusOr<std::unique_ptr<ServedCoordinator>> Start(
      const coordinator::CoordinatorConfig& config, Options options);
  static absl::StatusOr<std::unique_ptr<ServedCoordinator>> Start(
      const coordinator::CoordinatorConfig& config) {
    return Start(config, Options());
  }
  ~ServedCoordinator();

  coordinator::Coordinator& core() { return *coordinator_; }
  coordinator::CoordinatorServer& server() { return *server_; }
  coordinator::state::EmbeddedLedger& ledger() { return *ledger_; }
  int port() const { return server_->port(); }
  std::string address() const;
  // A new channel to the server.
  std::shared_ptr<grpc::Channel> NewChannel() const;

 private:
  ServedCoordinator() = default;

  std::unique_ptr<coordinator::state::EmbeddedLedger> ledger_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
};

// A coordinator configuration for tests on loopback: `state_dir`, reports every 200 ms
// with a 2 s deadline (so the recovery wait after an empty start is short), and a REBOOT
// lease policy with concurrency 1 and the given soak.
coordinator::CoordinatorConfig LoopbackCoordinatorConfig(const std::string& state_dir,
                                                         absl::Duration soak);

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_SERVED_COORDINATOR_H_
