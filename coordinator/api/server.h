// Serves the coordinator: the gRPC server (NodeService, OperatorService, grpc.health.v1 and
// server reflection, always on; AccessControl checks who calls the first two) on the
// callback API with a bounded work pool, and the
// ticker that grants what the gates allow as soon as they allow it. The listening port is
// bound without SO_REUSEPORT, so a second server on the same port fails to start instead
// of sharing it.
#ifndef TENDED_COORDINATOR_API_SERVER_H_
#define TENDED_COORDINATOR_API_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/api/access_control.h"
#include "coordinator/api/grpc_services.h"
#include "coordinator/api/work_pool.h"
#include "coordinator/core/coordinator.h"

namespace tended::coordinator {

class CoordinatorServer {
 public:
  struct Options {
    // Threads running unary calls (each may wait for one fsync) and calls queued at most.
    int pool_threads = 8;
    size_t max_queued_calls = 20000;
    // Requests larger than this are refused by gRPC.
    int max_message_bytes = 4 * 1024 * 1024;
    // Who may call what; the default enforces nothing (plaintext, --insecure).
    AccessControl::Options access;
  };

  // Binds `address` ("127.0.0.1:0" picks a free port). The coordinator must outlive it.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      Coordinator& coordinator, const std::string& address,
      std::shared_ptr<grpc::ServerCredentials> credentials, Options options);
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(
      Coordinator& coordinator, const std::string& address,
      std::shared_ptr<grpc::ServerCredentials> credentials) {
    return Start(coordinator, address, std::move(credentials), Options());
  }
  ~CoordinatorServer();

  int port() const { return port_; }
  // Ends streams, stops accepting, waits briefly for in-flight calls. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  CoordinatorServer(Coordinator& coordinator, Options options);
  void TickLoop();

  Coordinator& coordinator_;
  std::atomic<bool> stopping_{false};
  WorkPool pool_;
  AccessControl access_;
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

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_API_SERVER_H_
