// Coordinator::AttachKubernetes: wires the drain flow to the coordinator's state, its
// changes, the gate recheck and the cached alerts.
#include "common/logging.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/kube/http_kube_client.h"
#include "coordinator/leases/reboot_lifecycle.h"

namespace tended::coordinator {

using tended::v1::Lease;

void Coordinator::AttachKubernetes(std::unique_ptr<kube::KubeClient> client, absl::Status unusable,
                                   std::string source, kube::Sleeper& sleeper, bool start_worker) {
  if (!config_.kubernetes.enabled || drain_flow_ != nullptr) return;
  kube_client_ = std::move(client);
  DrainFlowDependencies deps;
  deps.client = kube_client_.get();
  deps.unusable = kube_client_ != nullptr ? absl::OkStatus() : std::move(unusable);
  deps.source = std::move(source);
  deps.clock = &clock_;
  deps.sleeper = &sleeper;
  DrainFlowHooks hooks;
  hooks.read = [this](const std::function<void(const state::FleetState&)>& read) {
    absl::ReaderMutexLock lock(&mutex_);
    read(*state_);
  };
  hooks.change = [this](const std::function<absl::Status(LeaseContext&)>& change) {
    return RunChange(change);
  };
  hooks.recheck = [this](const std::string& lease_id) {
    absl::Status verdict = absl::OkStatus();
    absl::Status ran = RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      const Lease* lease = state_->FindLease(lease_id);
      if (lease == nullptr || !state::IsActive(*lease)) {
        verdict = absl::FailedPreconditionError(absl::StrCat("lease ", lease_id, " is not active"));
        return absl::OkStatus();
      }
      verdict = RecheckBeforeActLocked(context, *lease);
      return absl::OkStatus();
    });
    return ran.ok() ? verdict : ran;
  };
  hooks.alerts = [this]() -> std::optional<AlertSnapshot> {
    return options_.alerts ? options_.alerts() : std::nullopt;
  };
  if (kube_client_ == nullptr) {
    Logger("coordinator")
        ->warn("Kubernetes is enabled but cannot be used ({}); no node is disrupted until it can",
               deps.unusable.ToString());
  }
  drain_flow_ = std::make_unique<DrainFlow>(config_, std::move(deps), std::move(hooks));
  lifecycles_[tended::v1::LEASE_KIND_REBOOT] = std::make_unique<RebootLifecycle>(drain_flow_.get());
  lifecycles_[tended::v1::LEASE_KIND_K8S_UPGRADE] =
      std::make_unique<K8sUpgradeLifecycle>(config_, drain_flow_.get());
  if (start_worker) drain_flow_->Start();
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
