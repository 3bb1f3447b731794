#include "coordinator/app/run_coordinator.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/crl_set.h"
#include "common/file_util.h"
#include "common/grpc_tls.h"
#include "common/logging.h"
#include "common/metrics.h"
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
  if (!options.insecure && !config->tls.has_value()) {
    log->error(
        "{}: no `tls:` section (cert_file, key_file, client_ca_file): the coordinator serves "
        "mTLS only; pass --insecure to serve plaintext gRPC on a trusted network",
        options.config_path);
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.insecure) {
    TlsFiles files;
    files.cert_file = config->tls->cert_file;
    files.key_file = config->tls->key_file;
    files.ca_file = config->tls->client_ca_file;
    files.refresh_interval = config->tls->reload_interval;
    files.crl_directory = config->tls->crl_directory;
    auto tls = MakeServerTlsCredentials(files);
    if (!tls.ok()) {
      log->error("{}", tls.status().message());
      return 2;
    }
    credentials = *std::move(tls);
  }
  // The handshake reads a CRL file once and keeps it (OpenSSL's hashed-folder lookup inside
  // gRPC); the services check this set too, which follows the folder's changes.
  std::shared_ptr<CrlSet> crls;
  if (!options.insecure && !config->tls->crl_directory.empty()) {
    CrlSet::Options crl_options;
    crl_options.directory = config->tls->crl_directory;
    crl_options.ca_file = config->tls->client_ca_file;
    crl_options.refresh_interval = config->tls->reload_interval;
    auto loaded = CrlSet::Create(std::move(crl_options), Clock::Real());
    if (!loaded.ok()) {
      log->error("{}", loaded.status().message());
      return 2;
    }
    crls = *std::move(loaded);
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
  metrics::Registry& registry = (*observability)->registry();
  registry
      .AddGauge("tended_insecure_transport",
                "1 when the coordinator serves plaintext gRPC (--insecure): no identities.")
      .Set(options.insecure ? 1 : 0);
  metrics::Counter& denied = registry.AddCounter(
      "tended_permission_denied_total",
      "Calls refused because the caller's certificate does not allow them.", {"service", "method"});
  metrics::Counter& revoked = registry.AddCounter(
      "tended_revoked_certificate_calls_total",
      "Calls refused because a CRL in tls.crl_directory revokes the caller's certificate.",
      {"service", "method"});
  if (crls != nullptr) {
    registry.AddCollector(
        {{"tended_crl_files_loaded",
          "Files of tls.crl_directory whose CRLs are in force.",
          metrics::MetricType::kGauge,
          {}},
         {"tended_crl_files_rejected",
          "Files of tls.crl_directory that did not load at the last reload (see the log).",
          metrics::MetricType::kGauge,
          {}},
         {"tended_crl_revoked_serials",
          "Certificate serials revoked by the CRLs in force.",
          metrics::MetricType::kGauge,
          {}},
         {"tended_crl_expired",
          "Issuers whose newest CRL is past its nextUpdate (still applied; publish a new one).",
          metrics::MetricType::kGauge,
          {}},
         {"tended_crl_last_reload_timestamp_seconds",
          "Unix time the CRL folder was last loaded after a change.",
          metrics::MetricType::kGauge,
          {}}},
        [crls](metrics::Collection& out) {
          const CrlSet::Stats stats = crls->stats();
          out.Add("tended_crl_files_loaded", {}, stats.files_loaded);
          out.Add("tended_crl_files_rejected", {}, static_cast<double>(stats.rejected.size()));
          out.Add("tended_crl_revoked_serials", {}, stats.revoked_serials);
          out.Add("tended_crl_expired", {}, stats.expired);
          out.Add("tended_crl_last_reload_timestamp_seconds", {},
                  absl::ToDoubleSeconds(stats.last_reload - absl::UnixEpoch()));
        });
  }
  CoordinatorServer::Options server_options;
  server_options.access.enforce = !options.insecure;
  server_options.access.crls = crls;
  server_options.access.on_revoked = [&revoked](absl::string_view service,
                                                absl::string_view method) {
    revoked.Increment({std::string(service), std::string(method)});
  };
  server_options.access.operators = config->operators;
  server_options.access.on_denied = [&denied](absl::string_view service, absl::string_view method) {
    denied.Increment({std::string(service), std::string(method)});
  };
  auto server = CoordinatorServer::Start(**coordinator, address, credentials, server_options);
  if (!server.ok()) {
    log->error("{}", server.status().message());
    return 1;
  }
  if (options.insecure) {
    log->warn(
        "INSECURE: serving tended.v1 on port {} in PLAINTEXT (--insecure): anyone who reaches "
        "the port can act for any node and halt, resume or remove; use only on a trusted "
        "network (reflection and health on)",
        (*server)->port());
  } else {
    log->info(
        "serving tended.v1 on port {} over mTLS (certificate {}, client CA {}, re-read every "
        "{}; {}; reflection and health on)",
        (*server)->port(), config->tls->cert_file, config->tls->client_ca_file,
        absl::FormatDuration(config->tls->reload_interval),
        config->tls->crl_directory.empty()
            ? std::string("no CRLs")
            : absl::StrCat("CRLs from ", config->tls->crl_directory));
  }

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
