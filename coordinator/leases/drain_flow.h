// The Kubernetes side of a REBOOT lease (and of a K8S_UPGRADE lease that drains), run by the coordinator when its `kubernetes:`
// section is enabled: after the grant it re-checks the gates, cordons the node
// (remembering whether it was cordoned already), drains it as `kubectl drain` does, and only
// then lets the holder reboot (the lease's `preparing` flag clears and BeginDisruption is
// allowed). When the node is back (new boot id from the agent and from the kubelet, Ready,
// the expected kubelet version, no blocking alert) it uncordons only a cordon of its own
// and releases the lease. A drain that fails or times out, a gate that keeps blocking, or a
// lease the holder gives back is undone: uncordon (if ours), release, say why; no reboot.
//
// Each step is a NodeDisruption record in the coordinator's state, changed in a durable
// change before and after the step acts, so a restart resumes where it stopped; a change
// made while a step runs outside the lock (an abandon) wins, because the worker saves its
// result only if the record is still at the step it started from. Kubernetes calls never
// run under the coordinator's lock. The worker also keeps the Kubernetes facts for the
// gates fresh. Node marks and Kubernetes Events are best effort. One drain at a time.
#ifndef TENDED_COORDINATOR_LEASES_DRAIN_FLOW_H_
#define TENDED_COORDINATOR_LEASES_DRAIN_FLOW_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/kube_gate_facts.h"
#include "coordinator/kube/drainer.h"
#include "coordinator/kube/kube_client.h"
#include "coordinator/kube/node_marks.h"
#include "coordinator/leases/lifecycle.h"
#include "coordinator/state/fleet_state.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

// Whether the flow cordons and drains the node before `lease`'s disruption: every REBOOT
// lease, and a K8S_UPGRADE lease whose work asks for it (the kubelet steps).
bool DrainsBeforeDisruption(const tended::v1::Lease& lease);

// What the flow needs from the coordinator; each is called without the coordinator's lock.
struct DrainFlowHooks {
  // Runs `read` with the coordinator's state, under its lock.
  std::function<void(const std::function<void(const state::FleetState&)>&)> read;
  // Runs `change` as one change under the lock and waits until it is durable; an error
  // from `change` undoes it.
  std::function<absl::Status(const std::function<absl::Status(LeaseContext&)>&)> change;
  // The gates re-checked before the node is cordoned (as before any disruptive act):
  // OK, or UNAVAILABLE with why not. Records the wait on the lease.
  std::function<absl::Status(const std::string& lease_id)> recheck;
  // The cached alerts, for verification; nullopt when no alert source is configured.
  std::function<std::optional<AlertSnapshot>()> alerts;
};

struct DrainFlowDependencies {
  // Null when the API cannot be used; `unusable` says why (the kubernetes gate shows it).
  kube::KubeClient* client = nullptr;
  absl::Status unusable = absl::FailedPreconditionError("no Kubernetes client");
  std::string source;  // "in-cluster" or the kubeconfig's path.
  const Clock* clock = nullptr;
  kube::Sleeper* sleeper = nullptr;
};

class DrainFlow {
 public:
  DrainFlow(const CoordinatorConfig& config, DrainFlowDependencies dependencies,
            DrainFlowHooks hooks);
  // Stops the worker.
  ~DrainFlow();
  DrainFlow(const DrainFlow&) = delete;
  DrainFlow& operator=(const DrainFlow&) = delete;

  // --- Under the coordinator's lock, inside a change.

  // After a REBOOT grant: marks the lease preparing and records its first step.
  void OnGranted(LeaseContext& context, tended::v1::Lease& lease);
  // A lease adopted after the coordinator lost its state: drained first when not begun;
  // otherwise recorded as drained, with its cordon left as it is (who cordoned it is lost).
  void OnAdopted(LeaseContext& context, tended::v1::Lease& lease);
  // Whether the holder may begin a disruptive act now: OK unless the node is not drained
  // yet (UNAVAILABLE: the agent asks again later).
  absl::Status MayDisrupt(const state::FleetState& state, const tended::v1::Lease& lease) const;
  // Whether the flow verifies and releases this lease (rather than the agent's report alone).
  bool Owns(const state::FleetState& state, const tended::v1::Lease& lease) const;
  // Gives back a lease whose disruption has not begun: the worker undoes the drain
  // (uncordon if ours) and then returns it with `reason`; `failed` backs the node off.
  void Abandon(LeaseContext& context, const tended::v1::Lease& lease, const std::string& reason,
               bool failed);
  // The holder gives back a begun lease under which the node did not reboot: undone and
  // returned like an abandon.
  void ReturnUnrebooted(LeaseContext& context, const tended::v1::Lease& lease,
                        const std::string& reason, bool failed);
  // Wakes the worker once the change is durable.
  void WakeAfter(LeaseContext& context);

  // --- Thread-safe, any thread.

  void Wake();
  KubeGateFacts GateFactsSnapshot() const;

  // --- The worker.

  // Starts a thread that calls RunOnce() when woken and every poll interval.
  void Start();
  void Stop();
  // Reads the gate facts, then moves every recorded disruption on by what it can do now
  // (a drain runs to its end or its timeout). Never call with the coordinator's lock held.
  // Calls are serialized.
  void RunOnce();

 private:
  using Record = tended::state::v1::NodeDisruption;
  struct Snapshot {
    Record record;
    std::optional<tended::v1::Lease> lease;  // Absent when the lease is gone from state.
    bool agent_reported = false;             // Since the coordinator started.
    std::string agent_boot_id;
    bool agent_reboot_required = false;
    tended::v1::NodeFacts agent_k8s;  // Only its k8s facts, for a K8S_UPGRADE lease.
  };

  void RefreshFacts();
  void AdoptUnprepared();
  void Advance(Snapshot snapshot);
  bool Cleanup(const Snapshot& snapshot);
  bool CheckGates(Snapshot& snapshot);
  bool StartCordon(Snapshot& snapshot);
  bool Cordon(Snapshot& snapshot, bool resumed);
  bool Drain(Snapshot& snapshot);
  bool Verify(Snapshot& snapshot);
  bool Complete(const Snapshot& snapshot);
  bool Undo(const Snapshot& snapshot);
  // Moves `record` to `next` (with `message` and an event when `event` is non-empty) if the
  // stored record is still at the step the snapshot has; updates the snapshot.
  bool SaveStep(Snapshot& snapshot, Record::Step next, const std::string& message,
                const std::string& event);
  void NodeEvent(const std::string& node, const std::string& reason, const std::string& message,
                 bool warning = false);
  absl::Time PreparationDeadline(const Snapshot& snapshot) const;
  kube::Drainer MakeDrainer(absl::Duration timeout) const;

  const CoordinatorConfig& config_;
  const DrainFlowDependencies deps_;
  const DrainFlowHooks hooks_;
  const Clock& clock_;
  std::unique_ptr<kube::NodeMarker> marker_;
  // Set by Stop(): the drain clock then reads the infinite future, so a drain in progress
  // ends at its next check and stays recorded as DRAINING, to resume after a restart.
  std::atomic<bool> stop_requested_{false};
  std::unique_ptr<Clock> drain_clock_;

  absl::Mutex run_mutex_;  // Serializes RunOnce().

  mutable absl::Mutex mutex_;
  KubeGateFacts gate_facts_ ABSL_GUARDED_BY(mutex_);
  bool woken_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread worker_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_DRAIN_FLOW_H_
