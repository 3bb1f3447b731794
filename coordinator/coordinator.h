// The coordinator's logic behind both gRPC services: the node registry built from agent
// reports, the queue of lease requests, granting when every gate passes, verification of
// disrupted nodes and release, and the operators' controls. Requests and answers are the
// wire messages, so the gRPC layer only converts status codes; tests and the fleet
// simulation call this class directly. Thread-safe.
#ifndef TENDED_COORDINATOR_COORDINATOR_H_
#define TENDED_COORDINATOR_COORDINATOR_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alert_poller.h"
#include "coordinator/alert_source.h"
#include "coordinator/config.h"
#include "coordinator/directive_hub.h"
#include "coordinator/disruption_flow.h"
#include "coordinator/gates.h"
#include "coordinator/lease_manager.h"
#include "coordinator/os_rollout.h"
#include "coordinator/state_store.h"
#include "tended/v1/node_service.pb.h"
#include "tended/v1/operator_service.pb.h"

namespace tended::coordinator {

class Coordinator {
 public:
  // `alerts` may be null when no Prometheus is configured; the coordinator only reads its
  // last snapshot (the poller's owner starts it). The configuration is copied; the store,
  // clock and poller must outlive the coordinator.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(const CoordinatorConfig& config,
                                                             const Clock& clock, StateStore* store,
                                                             const AlertPoller* alerts);

  // NodeService.
  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request);
  absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest& request);
  absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest& request);
  absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest& request);
  absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest& request);
  absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest& request);
  // Defined in os_rollout.cc.
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request);
  // A stream's subscription; the leases the node holds are queued first.
  absl::StatusOr<std::shared_ptr<DirectiveHub::Subscription>> SubscribeDirectives(
      const std::string& node);
  void UnsubscribeDirectives(const std::string& node,
                             const std::shared_ptr<DirectiveHub::Subscription>& subscription);

  // OperatorService.
  tended::v1::ListNodesResponse ListNodes();
  tended::v1::ListLeasesResponse ListLeases(const tended::v1::ListLeasesRequest& request);
  absl::StatusOr<tended::v1::ExplainGatesResponse> ExplainGates(
      const tended::v1::ExplainGatesRequest& request);
  absl::StatusOr<tended::v1::HaltResponse> Halt(const tended::v1::HaltRequest& request);
  absl::StatusOr<tended::v1::ResumeResponse> Resume();
  absl::StatusOr<tended::v1::ForceReleaseLeaseResponse> ForceReleaseLease(
      const tended::v1::ForceReleaseLeaseRequest& request);
  absl::StatusOr<tended::v1::ListEventsResponse> ListEvents(
      const tended::v1::ListEventsRequest& request);
  absl::StatusOr<tended::v1::RemoveNodeResponse> RemoveNode(
      const tended::v1::RemoveNodeRequest& request);
  // Defined in os_rollout.cc.
  absl::StatusOr<tended::v1::ResumeRolloutResponse> ResumeRollout(
      const tended::v1::ResumeRolloutRequest& request);

  // Every event, once durable, in order; called with the coordinator's lock held, so the
  // listener must be quick and must not call back into the coordinator (queue the work).
  void SetEventListener(LeaseManager::EventListener listener);

  // Flags overdue leases and grants what the gates now allow. Returns when it next wants
  // to run: the earliest time a blocking gate could pass or a lease falls due, capped.
  absl::Time Tick();

  // Ends every directive stream (server shutdown).
  void Shutdown();

  const CoordinatorConfig& config() const { return config_; }

  // Turns on the Kubernetes steps of REBOOT leases (cordon, drain, verify, uncordon:
  // disruption_flow.h) and the Kubernetes gates, when the configuration enables them.
  // `client` null means the API cannot be used (`unusable` says why): the kubernetes gate
  // then blocks every grant. Call once, before serving; `sleeper` must outlive the
  // coordinator. Without `start_worker` the steps run only when a test calls
  // disruption_flow()->RunOnce().
  void AttachKubernetes(std::unique_ptr<kube::KubeClient> client, absl::Status unusable,
                        std::string source, kube::Sleeper& sleeper, bool start_worker);
  DisruptionFlow* disruption_flow() { return disruption_flow_.get(); }

 private:
  Coordinator(const CoordinatorConfig& config, const Clock& clock, const AlertPoller* alerts);

  GateFacts CollectGateFacts(const AlertSnapshot* alerts) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool HasPendingRequests() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The poller's last snapshot when the alerts gate is configured; never waits for it.
  std::optional<AlertSnapshot> FreshAlerts() const;
  // Grants to waiting requests, oldest first per kind, while every gate passes. Returns
  // the earliest time a blocking gate could pass.
  absl::Time GrantWhatGatesAllow(const std::optional<AlertSnapshot>& alerts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Schedule() ABSL_LOCKS_EXCLUDED(mutex_);
  // Moves a disrupted node's lease on once it reports a new boot id, and releases it
  // when the node checks out.
  void VerifyLease(const tended::v1::Lease& lease, const tended::v1::NodeFacts& facts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendLease(const tended::v1::Lease& lease, bool granted);

  // The OS rollout (os_rollout.cc).
  OsRolloutFacts CollectOsRolloutFacts() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Whether `node` holds an OS_UPGRADE lease waiting for verification (so alerts are read).
  bool AwaitsOsVerification(const std::string& node) ABSL_LOCKS_EXCLUDED(mutex_);
  // Releases a verifying OS_UPGRADE lease once its step succeeded, the node reports
  // after it, and no alert fires; vets the canary's packages.
  void VerifyOsUpgradeLease(const tended::v1::Lease& lease, const tended::v1::NodeFacts& facts,
                            const std::optional<AlertSnapshot>& alerts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void StopOsRollout(const std::string& node, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const CoordinatorConfig config_;
  const Clock& clock_;
  const AlertPoller* alerts_;
  DirectiveHub directives_;
  const absl::Time started_at_;

  mutable absl::Mutex mutex_;
  std::unique_ptr<LeaseManager> leases_ ABSL_GUARDED_BY(mutex_);
  // Not persisted: after a restart every known node gets a full deadline to report.
  std::map<std::string, absl::Time> last_report_ ABSL_GUARDED_BY(mutex_);

  // Last, so the flow's worker stops before the members it uses go away.
  std::unique_ptr<kube::KubeClient> kube_client_;
  std::unique_ptr<DisruptionFlow> disruption_flow_;  // Null unless attached.
};

// For main(): when the configuration enables Kubernetes, connects to the API (kubeconfig,
// else in-cluster) and attaches it with its worker running. When no API can be used the
// coordinator still serves, with the kubernetes gate blocking.
void AttachKubernetesFromConfig(Coordinator& coordinator);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_COORDINATOR_H_
