#include "coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "coordinator/alert_poller.h"
#include "coordinator/observability.h"
#include "coordinator/prometheus_alert_source.h"
#include "coordinator/state_store.h"

namespace tended::coordinator {

CoordinatorServer::CoordinatorServer(Coordinator& coordinator)
    : coordinator_(coordinator),
      node_service_(coordinator, stopping_),
      operator_service_(coordinator),
      health_service_(stopping_) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator& coordinator, const std::string& address,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(coordinator));
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, std::move(credentials), &server->port_);
  builder.RegisterService(&server->node_service_);
  builder.RegisterService(&server->operator_service_);
  builder.RegisterService(&server->health_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
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
    // The coordinator's clock decides when; wait in real time for at most that long.
    absl::Duration wait = std::clamp(next - absl::Now(), absl::Milliseconds(50), absl::Seconds(15));
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
  coordinator_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(3));
}

void CoordinatorServer::Wait() {
  server_->Wait();
  if (ticker_.joinable()) ticker_.join();
}

int RunCoordinator(const CoordinatorOptions& options) {
  auto log = Logger("coordinator");
  if (options.config_path.empty()) {
    log->error("--config is required");
    return 2;
  }
  auto config = LoadCoordinatorConfig(options.config_path);
  if (!config.ok()) {
    log->error("{}", config.status().message());
    return 2;
  }
  if (!options.insecure) {
    log->error(
        "mTLS is not available yet: pass --insecure to serve plaintext gRPC (only on a "
        "trusted network)");
    return 2;
  }
  std::string address =
      options.listen_override.empty() ? config->listen_address : options.listen_override;

  // Block the stop signals before any thread starts, then wait for them on one thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  FileStateStore store(config->state_file);
  std::unique_ptr<AlertPoller> alerts;
  if (!config->alerts.prometheus_url.empty()) {
    alerts = std::make_unique<AlertPoller>(
        std::make_unique<PrometheusAlertSource>(config->alerts.prometheus_url,
                                                config->alerts.timeout, Clock::Real()),
        Clock::Real(), config->alerts.poll_interval);
    alerts->Start();
  }
  auto coordinator = Coordinator::Create(*config, Clock::Real(), &store, alerts.get());
  if (!coordinator.ok()) {
    log->error("cannot load state from {}: {}", config->state_file, coordinator.status().message());
    return 1;
  }
  AttachKubernetesFromConfig(**coordinator);
  std::string metrics_address = options.metrics_listen_override.empty()
                                    ? config->metrics_listen
                                    : options.metrics_listen_override;
  auto observability =
      CoordinatorObservability::Start(**coordinator, Clock::Real(), metrics_address);
  if (!observability.ok()) {
    log->error("{}", observability.status().message());
    return 1;
  }
  auto server = CoordinatorServer::Start(**coordinator, address, grpc::InsecureServerCredentials());
  if (!server.ok()) {
    log->error("{}", server.status().message());
    return 1;
  }
  log->info("serving tended.v1 on port {} (plaintext; reflection and health on)",
            (*server)->port());

  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log->info("signal {}: shutting down", signal_number);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  signal_waiter.join();
  return 0;
}

}  // namespace tended::coordinator
