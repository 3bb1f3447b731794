// Coordinator::AttachKubernetes: wires the disruption flow to the coordinator's lock,
// lease manager, directives, alerts and scheduling.
#include "common/logging.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/kube/http_kube_client.h"

namespace tended::coordinator {

void Coordinator::AttachKubernetes(std::unique_ptr<kube::KubeClient> client, absl::Status unusable,
                                   std::string source, kube::Sleeper& sleeper, bool start_worker) {
  if (!config_.kubernetes.enabled || disruption_flow_ != nullptr) return;
  kube_client_ = std::move(client);
  DisruptionFlowDependencies dependencies;
  dependencies.client = kube_client_.get();
  dependencies.unusable = kube_client_ != nullptr ? absl::OkStatus() : std::move(unusable);
  dependencies.source = std::move(source);
  dependencies.clock = &clock_;
  dependencies.sleeper = &sleeper;
  DisruptionFlowHooks hooks;
  hooks.with_leases = [this](const std::function<void(LeaseManager&)>& fn) {
    absl::MutexLock lock(&mutex_);
    fn(*leases_);
  };
  hooks.send_lease = [this](const tended::v1::Lease& lease, bool granted) {
    SendLease(lease, granted);
  };
  hooks.fresh_alerts = [this] { return FreshAlerts(); };
  hooks.schedule = [this] { Schedule(); };
  if (kube_client_ == nullptr) {
    Logger("coordinator")
        ->warn("Kubernetes is enabled but cannot be used ({}); no node is disrupted until it can",
               dependencies.unusable.ToString());
  }
  disruption_flow_ =
      std::make_unique<DisruptionFlow>(config_, std::move(dependencies), std::move(hooks));
  if (start_worker) disruption_flow_->Start();
}

void AttachKubernetesFromConfig(Coordinator& coordinator) {
  const KubernetesConfig& config = coordinator.config().kubernetes;
  if (!config.enabled) return;
  kube::KubeClientOptions options;
  options.kubeconfig_path = config.kubeconfig;
  options.kubeconfig_context = config.context;
  options.environment = kube::KubeEnvironmentFromProcess();
  absl::StatusOr<std::unique_ptr<kube::HttpKubeClient>> client =
      kube::HttpKubeClient::Create(options);
  if (!client.ok()) {
    coordinator.AttachKubernetes(nullptr, client.status(),
                                 config.kubeconfig.empty() ? "in-cluster" : config.kubeconfig,
                                 kube::Sleeper::Real(), /*start_worker=*/true);
    return;
  }
  Logger("coordinator")
      ->info("Kubernetes API at {} ({})", (*client)->connection().server,
             (*client)->connection().source);
  std::string source = (*client)->connection().source;
  coordinator.AttachKubernetes(*std::move(client), absl::OkStatus(), std::move(source),
                               kube::Sleeper::Real(), /*start_worker=*/true);
}

}  // namespace tended::coordinator
