#include "coordinator/app/run_coordinator.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "coordinator/alerts/alert_poller.h"
#include "coordinator/alerts/prometheus_alert_source.h"
#include "coordinator/alerts/prometheus_deprecated_api_source.h"
#include "coordinator/api/server.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/observability/observability.h"
#include "coordinator/state/embedded_ledger.h"

namespace tended::coordinator {

int RunCoordinator(const CoordinatorOptions& options) {
#ifdef NDEBUG
  // Debian's Abseil checks every lock order at run time: costly at thousands of calls a
  // second, and the build's tests run the checks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
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
  const std::string address =
      options.listen_override.empty() ? config->listen_address : options.listen_override;

  // Block the stop signals before any thread starts, then wait for them on one thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // One owner per state: the folder is locked before anything else happens.
  std::atomic<bool> state_failed{false};
  state::EmbeddedLedger::Options ledger_options;
  ledger_options.dir = config->state_dir;
  ledger_options.holder_description = absl::StrCat("serving on ", address);
  ledger_options.event_limit = static_cast<size_t>(config->history_limit);
  ledger_options.legacy_state_file = config->legacy_state_file;
  ledger_options.on_failure = [&state_failed, log](const absl::Status& why) {
    log->critical("the state ledger failed ({}); stopping, to restart from what is on disk",
                  why.ToString());
    state_failed.store(true);
    ::kill(::getpid(), SIGTERM);
  };
  auto ledger = state::EmbeddedLedger::Open(ledger_options);
  if (!ledger.ok()) {
    log->error("cannot open the state in {}: {}", config->state_dir, ledger.status().message());
    return 1;
  }
  for (const std::string& note : (*ledger)->recovery_notes()) log->warn("state: {}", note);
  if ((*ledger)->recovered_empty() && (*ledger)->previously_used() && !options.recover_state) {
    log->error(
        "the state in {} is empty, but a coordinator used this folder before (its LOCK file "
        "is there): the state was lost. Restore it, or start with --recover-state to rebuild "
        "it from what the agents report (nothing is granted until every node has reported)",
        config->state_dir);
    return 1;
  }

  std::unique_ptr<AlertPoller> alerts;
  if (!config->alerts.prometheus_url.empty()) {
    alerts = std::make_unique<AlertPoller>(
        std::make_unique<PrometheusAlertSource>(config->alerts.prometheus_url,
                                                config->alerts.timeout, Clock::Real()),
        Clock::Real(), config->alerts.poll_interval);
    alerts->Start();
  }
  Coordinator::Options coordinator_options;
  if (alerts != nullptr) {
    coordinator_options.alerts = [poller = alerts.get()] { return poller->Current(); };
  }
  if (!config->alerts.prometheus_url.empty()) {
    coordinator_options.deprecated_apis = std::make_shared<PrometheusDeprecatedApiSource>(
        config->alerts.prometheus_url, config->alerts.timeout, Clock::Real());
  }
  coordinator_options.recover_state = options.recover_state;
  auto coordinator =
      Coordinator::Create(*config, Clock::Real(), ledger->get(), std::move(coordinator_options));
  if (!coordinator.ok()) {
    log->error("cannot load the state in {}: {}", config->state_dir,
               coordinator.status().message());
    return 1;
  }
  AttachKubernetesFromConfig(**coordinator);
  const std::string metrics_address = options.metrics_listen_override.empty()
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
  if (alerts != nullptr) alerts->Stop();
  return state_failed.load() ? kExitStateFailed : 0;
}

}  // namespace tended::coordinator
