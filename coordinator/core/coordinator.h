// The coordinator's core behind both gRPC services: the node registry built from agent
// reports (one agent instance per node), the queue of lease requests, the granter that
// decides once per request with every gate, the lifecycle of each lease kind (leases/),
// recovery after a start on an empty state, and the operators' controls. Requests and
// answers are the wire messages, so the gRPC layer only converts status codes; tests and
// the fleet simulation call this class directly.
//
// Every change runs under one lock on the in-memory state (state/fleet_state.h) through a
// Transaction, is appended to the state ledger as one record, and is answered once that
// record is durable; directives, Kubernetes steps and notifications follow only then. No
// I/O happens under the lock: Prometheus and Kubernetes are read by their own workers and
// their last answers cached. Heartbeats that change nothing durable take a shared lock and
// write nothing. Thread-safe.
#ifndef TENDED_COORDINATOR_CORE_COORDINATOR_H_
#define TENDED_COORDINATOR_CORE_COORDINATOR_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/alerts/deprecated_api_source.h"
#include "coordinator/config/config.h"
#include "coordinator/core/directive_hub.h"
#include "coordinator/core/fencing_rejections.h"
#include "coordinator/gates/gate.h"
#include "coordinator/gates/gate_facts.h"
#include "coordinator/gates/node_gates.h"
#include "coordinator/kube/drainer.h"
#include "coordinator/kube/kube_client.h"
#include "coordinator/leases/drain_flow.h"
#include "coordinator/leases/k8s_upgrade_lifecycle.h"
#include "coordinator/leases/lifecycle.h"
#include "coordinator/state/fleet_state.h"
#include "coordinator/state/ledger.h"
#include "tended/v1/node_service.pb.h"
#include "tended/v1/operator_service.pb.h"

namespace tended::coordinator {

class Coordinator {
 public:
  struct Options {
    // The alert source's last answer (AlertPoller::Current); null when none is configured.
    // Never fetches: it is called under the coordinator's lock.
    std::function<std::optional<AlertSnapshot>()> alerts;
    // Where a minor rollout's preflight reads the deprecated APIs in use; null when no
    // Prometheus is configured (the check then says it was skipped). Asked before the lock
    // is taken, never under it.
    std::shared_ptr<DeprecatedApiSource> deprecated_apis;
    // Started with --recover-state: after a start on an empty state, the coordinator may
    // rebuild a lost state from what the agents report (and grant again once it has).
    bool recover_state = false;
  };

  // The ledger, clock and whatever `options` refers to must outlive the coordinator. Fails
  // when what the ledger recovered is inconsistent.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(const CoordinatorConfig& config,
                                                             const Clock& clock,
                                                             state::StateLedger* ledger,
                                                             Options options);
  ~Coordinator();

  // NodeService.
  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request);
  // ReportFacts when the report is a heartbeat and the state can be read without waiting for
  // the lock; nullopt when it needs ReportFacts (so the caller may run this on a thread that
  // must never block).
  std::optional<tended::v1::ReportFactsResponse> TryHeartbeat(
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
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request);
  // A stream's subscription; the leases the node holds are queued first.
  // The node a lease (active or released) belongs to; nullopt for an unknown id. For the
  // API's check that an agent acts only on its own node's leases.
  std::optional<std::string> LeaseNodeName(const std::string& lease_id) const;

  absl::StatusOr<std::shared_ptr<DirectiveHub::Subscription>> SubscribeDirectives(
      const tended::v1::WatchDirectivesRequest& request);
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
  absl::StatusOr<tended::v1::ResumeRolloutResponse> ResumeRollout(
      const tended::v1::ResumeRolloutRequest& request);
  // Kubernetes version rollouts (leases/k8s_upgrade_lifecycle.h, k8s_rollout_calls.cc).
  absl::StatusOr<tended::v1::StartK8sRolloutResponse> StartK8sRollout(
      const tended::v1::StartK8sRolloutRequest& request);
  absl::StatusOr<tended::v1::GetK8sRolloutResponse> GetK8sRollout(
      const tended::v1::GetK8sRolloutRequest& request);
  absl::StatusOr<tended::v1::ListK8sRolloutsResponse> ListK8sRollouts(
      const tended::v1::ListK8sRolloutsRequest& request);
  absl::StatusOr<tended::v1::CancelK8sRolloutResponse> CancelK8sRollout(
      const tended::v1::CancelK8sRolloutRequest& request);

  // Every event once it is durable, in order, on the ledger's thread; the listener must be
  // quick and must not call back into the coordinator (queue the work).
  using EventListener = std::function<void(const tended::v1::Event&)>;
  void SetEventListener(EventListener listener);

  // Flags overdue leases, returns leases whose act a gate blocked too long, summarises
  // refused fencing tokens, moves recovery on, grants what the gates allow, then runs
  // detection (DetectK8sUpgrades). Returns when
  // it next wants to run: the earliest time a blocking gate could pass or a lease falls
  // due, capped.
  absl::Time Tick();

  // Announces each Kubernetes target the version checks newly found (an
  // EVENT_TYPE_K8S_UPGRADE_AVAILABLE event, which the notifier sends) and, with
  // leases.k8s_upgrade.auto_start, starts the rollout leases/k8s_detection.h chooses through
  // the same Start as an operator's (started_by "detection"), reading the deprecated APIs
  // first, outside the lock. Does nothing when nothing is new. Tick calls it.
  void DetectK8sUpgrades();

  // Ends every directive stream (server shutdown).
  void Shutdown();

  const CoordinatorConfig& config() const { return config_; }
  // OK, or why the state can no longer be written (then every change is refused and the
  // process must restart from what is on disk).
  absl::Status health() const { return ledger_->health(); }

  struct Stats {
    uint64_t fencing_rejections = 0;
    uint64_t identity_conflicts = 0;  // Nodes with two agents now.
    bool recovering = false;
    size_t directive_streams = 0;
  };
  Stats stats() const;

  // Turns on the Kubernetes steps of REBOOT leases (cordon, drain, verify, uncordon:
  // leases/drain_flow.h) and the Kubernetes gates, when the configuration enables them.
  // `client` null means the API cannot be used (`unusable` says why): the kubernetes gate
  // then blocks every grant. Call once, before serving; `sleeper` must outlive the
  // coordinator. Without `start_worker` the steps run only when a test calls
  // drain_flow()->RunOnce().
  void AttachKubernetes(std::unique_ptr<kube::KubeClient> client, absl::Status unusable,
                        std::string source, kube::Sleeper& sleeper, bool start_worker);
  DrainFlow* drain_flow() { return drain_flow_.get(); }

 private:
  Coordinator(const CoordinatorConfig& config, const Clock& clock, state::StateLedger* ledger,
              Options options);

  // kDurableIfChanged waits only when this change appended a record: for answers that
  // reveal nothing a crash could take back (the caller waits itself when they do).
  enum class Wait { kDurable, kDurableIfChanged, kNone };
  // Runs `change` under the lock in one transaction, then grants what the gates allow (when
  // `grant` and something waits), appends the record and waits for it as `wait` says. An
  // error from `change` undoes it.
  absl::Status RunChange(const std::function<absl::Status(LeaseContext&)>& change,
                         Wait wait = Wait::kDurable, bool grant = true);
  // Appends what `txn` changed; returns the sequence to wait for (everything appended so
  // far), or 0 once the ledger failed; `recorded` says whether `txn` appended a record.
  uint64_t CommitLocked(state::Transaction& txn, bool* recorded = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Waits until everything appended so far is durable: what a read shows is never lost.
  absl::Status ReadBarrier();
  void SendLease(const tended::v1::Lease& lease, bool granted);

  // The granter (granter.cc).
  struct Decision {
    std::vector<GateOutcome> outcomes;
    std::optional<std::string> chosen;
  };
  // The last decision the grant loop made for a kind and the facts it went by.
  struct KindVerdict {
    GateFacts facts;
    Decision decision;
  };
  GateFacts CollectGateFacts(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // What fleet health and soak read from every node, computed once and reused while nothing
  // it depends on changed: no node or lease changed (membership_version), no node came back
  // from silence (returns_from_silence_), and no node counted as reporting can have gone
  // silent since (the oldest such report is still within the deadline). One pass over the
  // nodes per change instead of one per decision.
  struct FleetSummary {
    uint64_t membership_version = 0;
    uint64_t returns_from_silence = 0;
    absl::Time computed_at = absl::InfinitePast();
    absl::Time oldest_report_counted = absl::InfiniteFuture();
    FleetHealthFacts fleet;
    std::string last_disruption_node;
    absl::Time last_disruption_end = absl::InfinitePast();
  };
  FleetSummary SummarizeFleet(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Whether a report from `node` at `now` may bring it back from silence as far as a
  // FleetSummary is concerned (not reported since the start, or silent for more than half the
  // deadline); such a report never takes the heartbeat path. Half the deadline leaves room
  // for a heartbeat that read the clock before a summary did.
  bool MayReturnFromSilence(const state::NodeEntry& node, absl::Time now) const;
  NodeGateFacts CollectNodeGateFacts(const std::string& node, const GateFacts& facts) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  std::vector<GateOutcome> NodeGatesFor(tended::v1::LeaseKind kind, const std::string& node,
                                        const GateFacts& facts, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  Decision Decide(tended::v1::LeaseKind kind, const GateFacts& facts, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Grants to waiting requests, oldest eligible first per kind, while the gates allow. The
  // decision that ended each kind's loop without a grant goes to `verdicts` when given.
  void GrantWhatGatesAllow(LeaseContext& context,
                           std::map<tended::v1::LeaseKind, KindVerdict>* verdicts = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  tended::v1::Lease Grant(LeaseContext& context, const std::string& node,
                          tended::v1::LeaseKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The gates re-checked right before a disruptive act under `lease`: OK, or UNAVAILABLE
  // with why not (the wait is recorded on the lease).
  absl::Status RecheckBeforeActLocked(LeaseContext& context, const tended::v1::Lease& lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Holder calls (node_calls.cc): the active lease `lease_id` if `token` and the agent
  // instance match; otherwise the refusal (counted).
  absl::StatusOr<const tended::v1::Lease*> HeldLease(const std::string& lease_id, uint64_t token,
                                                     const std::string& instance,
                                                     absl::string_view call)
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // ReportFacts' slow path: registration, identity, durable facts, adoption, verification.
  absl::Status RecordReport(LeaseContext& context, const tended::v1::ReportFactsRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // ReportFacts' answer if `request` is a heartbeat (the node marked as reported), else nullopt.
  std::optional<tended::v1::ReportFactsResponse> HeartbeatLocked(
      const tended::v1::ReportFactsRequest& request, absl::Time now)
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  // Whether a report can take the fast path (nothing durable changes).
  bool IsHeartbeat(const state::NodeEntry& node, const tended::v1::ReportFactsRequest& request,
                   absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mutex_);

  // Recovery after an empty start (recovery.cc).
  void BeginRecovery(LeaseContext& context) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void AdoptClaims(LeaseContext& context, const tended::v1::ReportFactsRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // What recovery still waits for; nullopt once it may end.
  std::optional<std::string> RecoveryWait(absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);
  void AdvanceRecovery(LeaseContext& context) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // The deprecated-API source's answer for a rollout of `kind` (read now, outside the lock);
  // nullopt for a patch or when no source is configured.
  std::optional<DeprecatedApiReading> ReadDeprecatedApis(tended::v1::K8sUpgradeKind kind);

  LeaseLifecycle* LifecycleFor(tended::v1::LeaseKind kind) const;
  // The K8S_UPGRADE lifecycle (owned by lifecycles_), which also runs the rollouts.
  K8sUpgradeLifecycle* k8s_lifecycle() const;

  const CoordinatorConfig config_;
  const Clock& clock_;
  state::StateLedger* ledger_;
  const Options options_;
  const absl::Time started_at_;
  DirectiveHub directives_;
  FencingRejections rejections_;

  mutable absl::Mutex mutex_;
  std::unique_ptr<state::FleetState> state_ ABSL_GUARDED_BY(mutex_);
  std::map<tended::v1::LeaseKind, std::unique_ptr<LeaseLifecycle>> lifecycles_;

  // The earliest time a blocking gate said it could pass, from the last grant pass.
  absl::Time next_gate_check_ ABSL_GUARDED_BY(mutex_) = absl::InfiniteFuture();
  absl::Time last_rejection_summary_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  uint64_t returns_from_silence_ ABSL_GUARDED_BY(mutex_) = 0;
  mutable absl::Mutex summary_mutex_ ABSL_ACQUIRED_AFTER(mutex_);
  mutable std::optional<FleetSummary> summary_ ABSL_GUARDED_BY(summary_mutex_);
  // Nodes already warned about for reporting another coordinator's state id.
  std::map<std::string, std::string> foreign_state_warned_ ABSL_GUARDED_BY(mutex_);

  absl::Mutex listener_mutex_;
  EventListener listener_ ABSL_GUARDED_BY(listener_mutex_);

  // Last, so the flow's worker stops before the members it uses go away.
  std::unique_ptr<kube::KubeClient> kube_client_;
  std::unique_ptr<DrainFlow> drain_flow_;  // Null unless attached.
};

// A new random state id (32 hex digits).
std::string NewStateId();

// For main(): when the configuration enables Kubernetes, connects to the API (kubeconfig,
// else in-cluster) and attaches it with its worker running. When no API can be used the
// coordinator still serves, with the kubernetes gate blocking.
void AttachKubernetesFromConfig(Coordinator& coordinator);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CORE_COORDINATOR_H_
