// One lifecycle per lease kind, behind one interface: what happens at the grant, before
// the disruptive act, when the holder's node reports, when the holder gives the lease
// back, and how the lease is verified and released. The coordinator core owns the
// protocol around them (validation, fencing, identity, gates, the ledger); a kind plugs
// in here without touching the others. A kind without a lifecycle is never granted.
//
// Every method runs under the coordinator's lock with the change's Transaction; what must
// wait until the change is durable goes through LeaseContext::Send or
// Transaction::AfterDurable.
#ifndef TENDED_COORDINATOR_LEASES_LIFECYCLE_H_
#define TENDED_COORDINATOR_LEASES_LIFECYCLE_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate.h"
#include "coordinator/state/fleet_state.h"
#include "coordinator/state/transaction.h"
#include "tended/v1/node_service.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

// What a lifecycle may use during one change.
class LeaseContext {
 public:
  LeaseContext(const CoordinatorConfig& config, state::Transaction& txn,
               std::optional<AlertSnapshot> alerts,
               std::function<void(const tended::v1::Lease&, bool granted)> send)
      : config_(config), txn_(txn), alerts_(std::move(alerts)), send_(std::move(send)) {}

  const CoordinatorConfig& config() const { return config_; }
  state::Transaction& txn() { return txn_; }
  const state::FleetState& state() const { return txn_.state(); }
  absl::Time now() const { return txn_.now(); }
  // The cached Prometheus answer; nullopt when no alert source is configured.
  const std::optional<AlertSnapshot>& alerts() const { return alerts_; }
  // Tells the lease's node, once the change is durable: lease_granted or lease_revoked.
  void Send(const tended::v1::Lease& lease, bool granted) { send_(lease, granted); }

  // Releases `lease` (phase RELEASED, `type` event) in this change. A verified release
  // (LEASE_RELEASED) or the end of a disruption that began starts the node's soak and
  // clears its backoff; a return without disruption counts towards the backoff when
  // `failed` (a drain that failed, a gate that kept blocking). Tells the node.
  tended::v1::Lease Release(const tended::v1::Lease& lease, tended::v1::EventType type,
                            const std::string& message, bool failed = false);
  // Records why a lease is still held: shown on the lease; an event the first time the
  // message changes when `problem` (verification failed), none for a plain wait.
  void SetStatus(const tended::v1::Lease& lease, const std::string& message, bool problem);
  // Moves the lease to VERIFYING (an event), unless it is already there.
  tended::v1::Lease MarkVerifying(const tended::v1::Lease& lease, const std::string& message);

 private:
  const CoordinatorConfig& config_;
  state::Transaction& txn_;
  std::optional<AlertSnapshot> alerts_;
  std::function<void(const tended::v1::Lease&, bool granted)> send_;
};

class LeaseLifecycle {
 public:
  virtual ~LeaseLifecycle() = default;
  virtual tended::v1::LeaseKind kind() const = 0;

  // Gates of the whole kind beyond the fleet-wide ones (the OS rollout's canary), for the
  // decision and ExplainGates. `waiting` is the queue, oldest first.
  virtual void AppendKindGates(const state::FleetState& state,
                               const std::vector<std::string>& waiting, absl::Time now,
                               std::vector<GateOutcome>& outcomes) const {}
  // Gates of one waiting node beyond node_gates.h (may the canary let it go?).
  virtual std::vector<GateOutcome> NodeGates(const state::FleetState& state,
                                             const std::string& node, absl::Time now) const {
    return {};
  }

  // In the grant's change, after the lease was created.
  virtual void OnGranted(LeaseContext& context, tended::v1::Lease& lease) {}

  // BeginDisruption after the fencing check and the gate recheck passed. OK lets the act
  // start (the core then moves the lease to DISRUPTING); UNAVAILABLE makes the holder wait;
  // other errors refuse. May change `lease` (the approved packages).
  virtual absl::Status OnBegin(LeaseContext& context, tended::v1::Lease& lease,
                               const tended::v1::BeginDisruptionRequest& request) {
    return absl::OkStatus();
  }

  // The holder's node reported (from the lease's agent instance): moves verification on.
  virtual void OnFacts(LeaseContext& context, const tended::v1::Lease& lease,
                       const state::NodeEntry& node) = 0;

  // A step report under the lease; kinds without steps refuse.
  virtual absl::StatusOr<tended::v1::Lease> OnStepReport(
      LeaseContext& context, const tended::v1::Lease& lease,
      const tended::v1::ReportStepRequest& request) {
    return absl::FailedPreconditionError(
        "only os_upgrade leases report steps; this lease's kind has none");
  }

  // The holder gives the lease back. The default allows it before any disruption began.
  // Returns the lease as it is now (released, or still held while something is undone).
  virtual absl::StatusOr<tended::v1::Lease> OnReturn(LeaseContext& context,
                                                     const tended::v1::Lease& lease,
                                                     const std::string& reason);

  // The lease is to be given back by the coordinator (a gate kept blocking the act past
  // the kind's begin_wait): undo what the grant did, then release with `reason`.
  virtual void Abandon(LeaseContext& context, const tended::v1::Lease& lease,
                       const std::string& reason);

  // An operator released the lease without verification.
  virtual void OnForceReleased(LeaseContext& context, const tended::v1::Lease& lease) {}

  // An adopted lease (recovery after an empty start) needs what its grant would have set.
  virtual void OnAdopted(LeaseContext& context, tended::v1::Lease& lease) {}
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_LIFECYCLE_H_
