#include "agent/run.h"

#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/apt/engine_client.h"
#include "agent/apt/serialized_package_manager.h"
#include "agent/coordinator_client.h"
#include "agent/k8s/command_runner.h"
#include "agent/k8s/etcd_snapshotter.h"
#include "agent/k8s/step_runner.h"
#include "agent/k8s/version_check.h"
#include "agent/k8s/version_detector.h"
#include "agent/logind_rebooter.h"
#include "agent/metrics_exporter.h"
#include "agent/node_identity.h"
#include "agent/rebooter.h"
#include "agent/sentinel_watcher.h"
#include "agent/service_notifier.h"
#include "agent/simulated_rebooter.h"
#include "common/http_client.h"
#include "common/logging.h"
#include "common/schedule.h"

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
  if (!config->insecure) {
    if (absl::Status identity = CheckCertificateNamesNode(config->tls.cert_file, node_name);
        !identity.ok()) {
      log->error("{}", identity.message());
      return 2;
    }
  }

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
  std::optional<TlsFiles> tls;
  if (config->insecure) {
    log->warn(
        "INSECURE: talking to the coordinator at {} in PLAINTEXT (`insecure: true`): no "
        "certificate proves this node's identity or the coordinator's; a trusted network only",
        config->coordinator_address);
  } else {
    tls = TlsFiles{config->tls.cert_file, config->tls.key_file, config->tls.ca_file,
                   config->tls.reload_interval};
  }
  auto client = MakeGrpcCoordinatorClient(config->coordinator_address, tls, absl::Seconds(10));
  if (!client.ok()) {
    log->error("{}", client.status().message());
    return 2;
  }
  std::unique_ptr<apt::PackageManager> packages;
  if (config->apt.enabled || config->k8s.enabled) {
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
  // OS upgrades, Kubernetes steps and the version check share the one engine.
  std::unique_ptr<apt::SerializedPackageManager> serialized;
  if (packages != nullptr) {
    serialized = std::make_unique<apt::SerializedPackageManager>(packages.get());
  }
  // What the apt plans find, for /metrics.
  AptPlanStatus plan_status;
  // Observes the calls' outcomes for tended_agent_coordinator_connected.
  ConnectionTrackingClient tracked_client(client->get());
  Agent::Dependencies dependencies;
  dependencies.clock = &Clock::Real();
  dependencies.packages = config->apt.enabled ? serialized.get() : nullptr;
  dependencies.apt_plan_status = &plan_status;

  k8s::ProcessCommandRunner commands;
  k8s::DpkgInstalledK8sReader installed(root);
  CurlHttpClient http;
  std::unique_ptr<k8s::GrpcEtcdSnapshotter> snapshotter;
  std::unique_ptr<k8s::K8sStepRunner> steps;
  std::unique_ptr<k8s::VersionDetector> detector;
  std::unique_ptr<k8s::ScheduledVersionCheck> version_check;
  // Set once the agent exists; the version check's worker wakes it.
  std::atomic<Agent*> wake_target{nullptr};
  if (config->k8s.enabled) {
    k8s::EtcdSnapshotterOptions etcd;
    etcd.snapshot.endpoint = config->k8s.etcd.endpoint;
    etcd.snapshot.ca_file = config->k8s.etcd.ca_file;
    etcd.snapshot.cert_file = config->k8s.etcd.cert_file;
    etcd.snapshot.key_file = config->k8s.etcd.key_file;
    etcd.snapshot.timeout = config->k8s.etcd.timeout;
    etcd.dir = config->k8s.etcd.snapshot_dir;
    etcd.keep = static_cast<int>(config->k8s.etcd.keep);
    snapshotter = std::make_unique<k8s::GrpcEtcdSnapshotter>(etcd, root, node_name, Clock::Real());
    k8s::StepRunnerOptions step_options;
    step_options.apt_source_file = config->k8s.apt_source_file;
    step_options.repo_url_pattern = config->k8s.repo_url_pattern;
    step_options.kubeadm_timeout = config->k8s.kubeadm_timeout;
    steps = std::make_unique<k8s::K8sStepRunner>(
        k8s::K8sStepRunner::Dependencies{serialized.get(), &commands, &installed,
                                         snapshotter.get()},
        root, step_options);
    k8s::VersionDetectorOptions detect_options;
    detect_options.repo_url_pattern = config->k8s.repo_url_pattern;
    detector = std::make_unique<k8s::VersionDetector>(*serialized, http, Clock::Real(), root,
                                                      detect_options);
    auto schedule = Schedule::Parse(config->k8s.detect_schedule, config->k8s.detect_time_zone);
    if (!schedule.ok()) {
      log->error("k8s.detect_schedule: {}", schedule.status().message());
      return 2;
    }
    k8s::ScheduledVersionCheck::Options check_options;
    check_options.state_path =
        root.Resolve(absl::StrCat(config->state_dir, "/k8s-version-check.json"));
    version_check = std::make_unique<k8s::ScheduledVersionCheck>(
        [raw = detector.get()] { return raw->Detect(); }, *std::move(schedule), check_options,
        [&wake_target] {
          if (Agent* agent = wake_target.load(); agent != nullptr) agent->Wake();
        });
    dependencies.k8s_steps = steps.get();
    dependencies.k8s_installed = &installed;
    dependencies.k8s_version_check = version_check.get();
  }
  dependencies.coordinator = &tracked_client;
  dependencies.rebooter = rebooter->get();
  dependencies.notifier = &notifier;
  auto agent = Agent::Create(*config, node_name, root, dependencies);
  if (!agent.ok()) {
    log->error("{}", agent.status().message());
    return 1;
  }
  wake_target.store(agent->get());
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
      AgentMetricsEndpoint::Start(*config, root, node_name, &tracked_client,
                                  config->apt.enabled ? &plan_status : nullptr, metrics_address);
  if (!metrics.ok()) {
    log->error("{}", metrics.status().message());
    return 1;
  }
  log->info("tended-agent {} for node {} (root {}, coordinator {}, reboots {})", TENDED_VERSION,
            node_name, config->root, config->coordinator_address,
            (*rebooter)->simulated() ? "simulated" : "through logind");
  if (config->k8s.enabled) {
    log->info("Kubernetes: version check \"{}\" ({}), steps of k8s_upgrade leases run here",
              config->k8s.detect_schedule, config->k8s.detect_time_zone);
  }

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
  wake_target.store(nullptr);  // A check finishing from now on wakes nobody.
  version_check.reset();       // Waits for a check in progress.
  agent->reset();
  return 0;
}

}  // namespace tended::agent
