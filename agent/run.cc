#include "agent/run.h"

#include <signal.h>

#include <atomic>
#include <thread>

#include "agent/agent.h"
#include "agent/apt/engine_client.h"
#include "agent/coordinator_client.h"
#include "agent/logind_rebooter.h"
#include "agent/metrics_exporter.h"
#include "agent/rebooter.h"
#include "agent/sentinel_watcher.h"
#include "agent/service_notifier.h"
#include "agent/simulated_rebooter.h"
#include "common/logging.h"

namespace tended::agent {

absl::StatusOr<std::unique_ptr<Rebooter>> ChooseRebooter(const AgentConfig& config,
                                                         const RootPath& root, const Clock& clock) {
  switch (config.reboot.method) {
    case RebootMethod::kLogind:
      return std::make_unique<LogindRebooter>(root);
    case RebootMethod::kSimulate: {
      auto rebooter = SimulatedRebooter::Create(root, clock);
      if (!rebooter.ok()) return rebooter.status();
      return std::unique_ptr<Rebooter>(std::move(rebooter).value());
    }
  }
  return absl::InvalidArgumentError("unknown reboot method");
}

int RunAgent(const AgentOptions& options) {
  auto log = Logger("agent");
  if (options.config_path.empty()) {
    log->error("--config is required");
    return 2;
  }
  auto config = LoadAgentConfig(options.config_path);
  if (!config.ok()) {
    log->error("{}", config.status().message());
    return 2;
  }
  if (!options.root_override.empty()) config->root = options.root_override;
  std::string node_name = !options.node_name_override.empty() ? options.node_name_override
                          : !config->node_name.empty()        ? config->node_name
                                                              : DefaultNodeName();
  RootPath root(config->root);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  SystemdServiceNotifier notifier;
  auto rebooter = ChooseRebooter(*config, root, Clock::Real());
  if (!rebooter.ok()) {
    log->error("{}", rebooter.status().message());
    return 2;
  }
  auto client =
      MakeGrpcCoordinatorClient(config->coordinator_address, config->insecure, absl::Seconds(10));
  if (!client.ok()) {
    log->error("{}", client.status().message());
    return 2;
  }
  std::unique_ptr<apt::PackageManager> packages;
  if (config->apt.enabled) {
    apt::AptOptions apt_options;
    apt_options.root = config->root;
    apt_options.policy = config->apt.policy;
    apt_options.lock_timeout = config->apt.lock_timeout;
    apt_options.clock = &Clock::Real();
    auto engine = apt::EngineBesideThisProgram();
    if (!engine.ok()) {
      log->error("apt: {}", engine.status().message());
      return 1;
    }
    auto created = apt::CreateEngineProcessPackageManager(apt_options, *engine);
    if (!created.ok()) {
      log->error("apt: {}", created.status().message());
      return 1;
    }
    packages = *std::move(created);
  }
  // Observes the calls' outcomes for tended_agent_coordinator_connected.
  ConnectionTrackingClient tracked_client(client->get());
  Agent::Dependencies dependencies;
  dependencies.clock = &Clock::Real();
  dependencies.packages = packages.get();
  dependencies.coordinator = &tracked_client;
  dependencies.rebooter = rebooter->get();
  dependencies.notifier = &notifier;
  auto agent = Agent::Create(*config, node_name, root, dependencies);
  if (!agent.ok()) {
    log->error("{}", agent.status().message());
    return 1;
  }
  auto watcher = SentinelWatcher::Create(root.Resolve(config->reboot.sentinel),
                                         [raw = agent->get()](bool) { raw->Wake(); });
  if (!watcher.ok()) {
    log->error("{}", watcher.status().message());
    return 1;
  }
  if (absl::Status started = (*watcher)->Start(); !started.ok()) {
    log->error("{}", started.message());
    return 1;
  }
  std::string metrics_address = options.metrics_listen_override.empty()
                                    ? config->metrics_listen
                                    : options.metrics_listen_override;
  auto metrics =
      AgentMetricsEndpoint::Start(*config, root, node_name, &tracked_client, metrics_address);
  if (!metrics.ok()) {
    log->error("{}", metrics.status().message());
    return 1;
  }
  log->info("tended-agent {} for node {} (root {}, coordinator {}, reboots {})", TENDED_VERSION,
            node_name, config->root, config->coordinator_address,
            (*rebooter)->simulated() ? "simulated" : "through logind");

  std::atomic<bool> stop{false};
  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log->info("signal {}: stopping", signal_number);
    stop.store(true);
    (*agent)->Wake();
  });
  (*agent)->Run(stop);
  signal_waiter.join();
  (*watcher)->Stop();
  return 0;
}

}  // namespace tended::agent
