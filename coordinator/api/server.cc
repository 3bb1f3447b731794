#include "coordinator/api/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace tended::coordinator {

CoordinatorServer::CoordinatorServer(Coordinator& coordinator, Options options)
    : coordinator_(coordinator),
      pool_(options.pool_threads, options.max_queued_calls),
      access_(std::move(options.access)),
      node_service_(coordinator, pool_, stopping_, access_),
      operator_service_(coordinator, pool_, access_),
      health_service_(stopping_) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator& coordinator, const std::string& address,
    std::shared_ptr<grpc::ServerCredentials> credentials, Options options) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(coordinator, options));
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A second coordinator must not share the port (Linux would balance connections
  // between the two).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // Dead agents' streams are found and dropped.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddListeningPort(address, std::move(credentials), &server->port_);
  builder.RegisterService(&server->node_service_);
  builder.RegisterService(&server->operator_service_);
  builder.RegisterService(&server->health_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", address, " (is another coordinator or program using the port?)"));
  }
  server->ticker_ = std::thread([raw = server.get()] { raw->TickLoop(); });
  return server;
}

CoordinatorServer::~CoordinatorServer() {
  Shutdown();
  if (ticker_.joinable()) ticker_.join();
}

void CoordinatorServer::TickLoop() {
  absl::MutexLock lock(&mutex_);
  while (!stop_ticker_) {
    mutex_.Unlock();
    absl::Time next = coordinator_.Tick();
    mutex_.Lock();
    // The coordinator's clock decides when; wait in real time for at most that long. At
    // most a second: a change after this Tick (a release starting a soak, a report) can
    // make a gate pass sooner than `next`, and the recovery wait's end is not in `next`.
    absl::Duration wait = std::clamp(next - absl::Now(), absl::Milliseconds(50), absl::Seconds(1));
    mutex_.AwaitWithTimeout(absl::Condition(&stop_ticker_), wait);
  }
}

void CoordinatorServer::Shutdown() {
  {
    absl::MutexLock lock(&mutex_);
    if (shut_down_) return;
    shut_down_ = true;
    stop_ticker_ = true;
  }
  stopping_.store(true);
  // Never started (Start could not bind the port): nothing to stop, and no stream of the
  // coordinator's is ours to end.
  if (server_ == nullptr) return;
  health_service_.Shutdown();
  coordinator_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
}

void CoordinatorServer::Wait() {
  if (server_ != nullptr) server_->Wait();
  if (ticker_.joinable()) ticker_.join();
}

}  // namespace tended::coordinator
