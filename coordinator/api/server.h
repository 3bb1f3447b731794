// Runs the coordinator: the gRPC server (NodeService, OperatorService, grpc.health.v1 and
// server reflection, always on) and the ticker that grants what the gates allow as soon as
// they allow it.
#ifndef TENDED_COORDINATOR_SERVER_H_
#define TENDED_COORDINATOR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/api/grpc_services.h"

namespace tended::coordinator {

class CoordinatorServer {
 public:
  // Binds `address` ("127.0.0.1:0" picks a free port). The coordinator must outlive it.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      Coordinator& coordinator, const std::string& address,
      std::shared_ptr<grpc::ServerCredentials> credentials);
  ~CoordinatorServer();

  int port() const { return port_; }
  // Ends streams, stops accepting, waits briefly for in-flight calls. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  explicit CoordinatorServer(Coordinator& coordinator);
  void TickLoop();

  Coordinator& coordinator_;
  std::atomic<bool> stopping_{false};
  NodeServiceImpl node_service_;
  OperatorServiceImpl operator_service_;
  HealthServiceImpl health_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mutex_;
  bool stop_ticker_ ABSL_GUARDED_BY(mutex_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread ticker_;
};

struct CoordinatorOptions {
  std::string config_path;
  std::string listen_override;  // Empty: the configuration's listen address.
  std::string metrics_listen_override;  // Empty: the configuration's metrics_listen.
  bool insecure = false;
};

// main() for tended-coordinator: loads the configuration and state, serves until SIGTERM
// or SIGINT. Returns the process exit code.
int RunCoordinator(const CoordinatorOptions& options);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_SERVER_H_
