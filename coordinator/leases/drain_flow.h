// The Kubernetes side of a REBOOT lease, run by the coordinator when its `kubernetes:`
// section is enabled: after the grant it cordons the node (remembering whether it was
// cordoned already), drains it as `kubectl drain` does, and only then lets the holder
// reboot (the lease's `preparing` flag clears and BeginDisruption is allowed). When the
// node is back (new boot id from the agent and from the kubelet, Ready, the expected
// kubelet version, no blocking alert) it uncordons only a cordon of its own and releases
// the lease. A drain that fails or times out, or a lease the holder gives back while it
// is being prepared, is undone: uncordon (if ours), release, say why; no reboot.
//
// Each step is persisted in the coordinator's state (NodeDisruption) before and after it
// acts, so a restart resumes where it stopped. Kubernetes calls never run under the
// coordinator's lock: RunOnce() (on the worker thread, or a test's) takes a snapshot under
// the lock, calls the API, then commits the result under the lock again. It also keeps
// the Kubernetes facts for the gates fresh. Node marks and Kubernetes Events are best
// effort (logged when they fail). One drain at a time.
#ifndef TENDED_COORDINATOR_DISRUPTION_FLOW_H_
#define TENDED_COORDINATOR_DISRUPTION_FLOW_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/config/config.h"
#include "coordinator/kube/drainer.h"
#include "coordinator/kube/kube_client.h"
#include "coordinator/kube/node_marks.h"
#include "coordinator/gates/kube_gate_facts.h"
#include "coordinator/lease_manager.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

// What the flow needs from the coordinator. `with_leases` runs its argument with the
// coordinator's lock held; the others are called without it.
struct DisruptionFlowHooks {
  std::function<void(const std::function<void(LeaseManager&)>&)> with_leases;
  // Sends the lease to its node as lease_granted (true) or lease_revoked (false).
  std::function<void(const tended::v1::Lease&, bool granted)> send_lease;
  // The alerts for verification; nullopt when no alert source is configured.
  std::function<std::optional<AlertSnapshot>()> fresh_alerts;
  // Grants what the gates allow now (after a release, or when the facts changed).
  std::function<void()> schedule;
};

struct DisruptionFlowDependencies {
  // Null when the API cannot be used; `unusable` says why (the kubernetes gate shows it).
  kube::KubeClient* client = nullptr;
  absl::Status unusable = absl::FailedPreconditionError("no Kubernetes client");
  std::string source;  // "in-cluster" or the kubeconfig's path.
  const Clock* clock = nullptr;
  kube::Sleeper* sleeper = nullptr;
};

class DisruptionFlow {
 public:
  DisruptionFlow(const CoordinatorConfig& config, DisruptionFlowDependencies dependencies,
                 DisruptionFlowHooks hooks);
  // Stops the worker.
  ~DisruptionFlow();
  DisruptionFlow(const DisruptionFlow&) = delete;
  DisruptionFlow& operator=(const DisruptionFlow&) = delete;

  // --- Called with the coordinator's lock held.

  // After a REBOOT grant: marks the lease preparing and records its first step, in one
  // commit. Returns the lease to send. Other kinds come back unchanged.
  absl::StatusOr<tended::v1::Lease> OnGranted(LeaseManager& leases, const tended::v1::Lease& lease);
  // Leases granted while Kubernetes was off, or whose preparation was not recorded, get
  // it now, unless their disruption already began.
  void AdoptUnprepared(LeaseManager& leases);
  // Whether the holder may begin a disruptive act now: OK unless this is a REBOOT lease
  // whose node is not drained yet (UNAVAILABLE, the agent asks again later).
  absl::Status MayDisrupt(const LeaseManager& leases, const tended::v1::Lease& lease) const;
  // Whether the flow verifies and releases this lease (rather than the coordinator alone).
  bool Owns(const LeaseManager& leases, const tended::v1::Lease& lease) const;

  // --- Thread-safe, any thread (also with the coordinator's lock held).

  // Gives back a lease whose disruption has not begun: undone (uncordon if ours) and then
  // returned with `reason` by the worker.
  void Abandon(const std::string& lease_id, const std::string& reason);
  // Runs a pass soon.
  void Wake();
  KubeGateFacts GateFactsSnapshot() const;

  // --- The worker.

  // Starts a thread that calls RunOnce() when woken and every poll interval.
  void Start();
  void Stop();
  // Reads the gate facts, then moves every recorded disruption on by what it can do now
  // (a drain runs to its end or its timeout). Never call with the coordinator's lock
  // held. Calls are serialized.
  void RunOnce();

 private:
  using Record = tended::state::v1::NodeDisruption;
  struct Snapshot {
    Record record;
    std::optional<tended::v1::Lease> lease;  // Absent when the lease is gone from state.
    std::string agent_boot_id;
    bool agent_reboot_required = false;
  };

  void RefreshFacts();
  // One record, as far as it can go now.
  void Advance(Snapshot snapshot);
  bool Cleanup(const Snapshot& snapshot);
  bool StartCordon(Snapshot& snapshot);
  bool Cordon(Snapshot& snapshot, bool resumed);
  bool Drain(Snapshot& snapshot);
  bool Verify(Snapshot& snapshot);
  bool Complete(const Snapshot& snapshot);
  bool Undo(const Snapshot& snapshot);

  // Persists `record` (and, with a message, a KUBERNETES_STEP event); false when the
  // save failed or the lease changed under us.
  bool SaveRecord(const Record& record, const std::string& event_message);
  void NodeEvent(const std::string& node, const std::string& reason, const std::string& message,
                 bool warning = false);
  void SetLeaseProblem(const std::string& lease_id, const std::string& message);
  std::optional<std::string> TakeAbandon(const std::string& lease_id);
  absl::Time PreparationDeadline(const tended::v1::Lease& lease) const;

  const CoordinatorConfig& config_;
  const DisruptionFlowDependencies deps_;
  const DisruptionFlowHooks hooks_;
  const Clock& clock_;
  std::unique_ptr<kube::NodeMarker> marker_;
  // Set by Stop(): the drain clock then reads the infinite future, so a drain in progress
  // ends at its next check and stays recorded as DRAINING, to resume after a restart.
  std::atomic<bool> stop_requested_{false};
  std::unique_ptr<Clock> drain_clock_;

  absl::Mutex run_mutex_;  // Serializes RunOnce().

  mutable absl::Mutex mutex_;
  KubeGateFacts gate_facts_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string> abandoned_ ABSL_GUARDED_BY(mutex_);
  bool woken_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread worker_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_DISRUPTION_FLOW_H_
