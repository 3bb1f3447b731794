// The lease manager: the persisted record of who may disrupt which node. It hands out
// fencing tokens that only grow, moves leases through GRANTED -> DISRUPTING -> VERIFYING ->
// RELEASED, keeps the queue of waiting requests, the halt flag, the known nodes and the
// event log, and persists every change (durably) before it returns. A failed save leaves
// the in-memory state as it was. It never lets a timeout hand a held slot to another node.
//
// It enforces the concurrency of each kind itself, as a last line of defence behind the
// gates. Thread-compatible: the Coordinator serializes calls.
#ifndef TENDED_COORDINATOR_LEASE_MANAGER_H_
#define TENDED_COORDINATOR_LEASE_MANAGER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "coordinator/config.h"
#include "coordinator/state_store.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

class LeaseManager {
 public:
  // Loads what the store holds. Fails when the store is unreadable.
  static absl::StatusOr<std::unique_ptr<LeaseManager>> Load(StateStore* store,
                                                            const CoordinatorConfig& config,
                                                            const Clock& clock);

  const tended::state::v1::CoordinatorState& state() const { return state_; }

  std::vector<tended::v1::Lease> ActiveLeases() const;
  int ActiveLeaseCount() const;
  // The node's unreleased lease, if any.
  const tended::v1::Lease* FindActiveLeaseForNode(absl::string_view node) const;
  const tended::v1::Lease* FindLease(absl::string_view lease_id) const;
  const tended::state::v1::KnownNode* FindNode(absl::string_view node) const;

  // Registers a node on its first report and records a changed boot id. Persists only
  // when something durable changed. Returns true when the boot id changed.
  absl::StatusOr<bool> RecordFacts(const tended::v1::NodeFacts& facts);

  // Queue of waiting requests, oldest first per kind.
  absl::Status AddPendingRequest(absl::string_view node, tended::v1::LeaseKind kind,
                                 absl::string_view reason);
  absl::Status RemovePendingRequest(absl::string_view node, tended::v1::LeaseKind kind);
  std::vector<tended::state::v1::PendingRequest> PendingRequests(tended::v1::LeaseKind kind) const;

  // Grants a lease with the next fencing token. FAILED_PRECONDITION when the node already
  // holds one, the kind is not configured, or the grant would exceed the kind's concurrency
  // (or overlap another kind when overlap is off), whatever the gates said.
  absl::StatusOr<tended::v1::Lease> Grant(absl::string_view node, tended::v1::LeaseKind kind,
                                          absl::string_view reason);

  // The holder's calls: each checks the lease is active and the token current, else
  // FAILED_PRECONDITION (and a FENCING_REJECTED event).
  absl::StatusOr<tended::v1::Lease> Renew(absl::string_view lease_id, uint64_t token);
  absl::StatusOr<tended::v1::Lease> BeginDisruption(absl::string_view lease_id, uint64_t token,
                                                    absl::string_view step);
  // Only before the disruption began.
  absl::StatusOr<tended::v1::Lease> ReleaseByHolder(absl::string_view lease_id, uint64_t token,
                                                    absl::string_view reason);

  // The coordinator's calls during verification.
  absl::StatusOr<tended::v1::Lease> MarkVerifying(absl::string_view lease_id,
                                                  absl::string_view message);
  // Records why a lease is still held; an event the first time the message changes.
  absl::Status SetVerificationProblem(absl::string_view lease_id, absl::string_view message);
  // Records what verification still waits for (a node still booting, not Ready yet): shown
  // on the lease, no event. If it lasts past the return deadline the lease goes overdue.
  absl::Status SetVerificationWait(absl::string_view lease_id, absl::string_view message);
  // Releases after verification and starts the node's soak.
  absl::StatusOr<tended::v1::Lease> CompleteVerification(absl::string_view lease_id,
                                                         absl::string_view message);

  // An operator releases a lease without verification.
  absl::StatusOr<tended::v1::Lease> ForceRelease(absl::string_view lease_id,
                                                 absl::string_view reason);

  // Flags leases whose holder stopped renewing, or whose node did not come back in time.
  // They stay held. Returns the leases newly flagged.
  absl::StatusOr<std::vector<tended::v1::Lease>> FlagOverdueLeases();

  absl::Status Halt(absl::string_view reason);
  absl::Status Resume();

  std::vector<tended::v1::Event> EventsAfter(uint64_t sequence, size_t limit) const;

  // Called with every event once it is durable, in order, on the caller's thread (so with
  // the Coordinator's lock held: the listener must not call back into it).
  using EventListener = std::function<void(const tended::v1::Event&)>;
  void SetEventListener(EventListener listener) { event_listener_ = std::move(listener); }

  // Forgets a node that holds no lease (decommissioned): it no longer counts for fleet
  // health. FAILED_PRECONDITION while it holds a lease; NOT_FOUND when unknown.
  absl::Status RemoveNode(absl::string_view node, absl::string_view reason);

  // Changes state kept for other parts of the coordinator (the OS rollout) with the same
  // durability as every other change; `mutation` records events through `append`.
  using EventAppender =
      std::function<void(tended::v1::EventType type, const tended::v1::Lease* lease,
                         absl::string_view node, std::string message)>;
  absl::Status Mutate(const std::function<absl::Status(tended::state::v1::CoordinatorState&,
                                                       const EventAppender& append)>& mutation);

 private:
  LeaseManager(StateStore* store, const CoordinatorConfig& config, const Clock& clock,
               tended::state::v1::CoordinatorState state);

  using Mutation = std::function<absl::Status(tended::state::v1::CoordinatorState&)>;
  // Applies `mutation` to a copy, saves it, then makes it current.
  absl::Status Commit(const Mutation& mutation);

  // The active lease `lease_id` if `token` is current: in the current state, or in `state`.
  absl::StatusOr<const tended::v1::Lease*> CurrentLease(absl::string_view lease_id,
                                                        uint64_t token) const;
  absl::StatusOr<tended::v1::Lease*> FindCurrentLease(tended::state::v1::CoordinatorState& state,
                                                      absl::string_view lease_id,
                                                      uint64_t token) const;
  void AppendEvent(tended::state::v1::CoordinatorState& state, tended::v1::EventType type,
                   const tended::v1::Lease* lease, absl::string_view node,
                   std::string message) const;
  void TrimHistory(tended::state::v1::CoordinatorState& state) const;
  absl::Status SetStatusMessage(absl::string_view lease_id, absl::string_view message,
                                bool is_failure);
  // The configured policy of `kind`, or the defaults for a kind no longer configured.
  const LeasePolicy& PolicyFor(tended::v1::LeaseKind kind) const;
  // Records a refused holder call as a FENCING_REJECTED event.
  void RecordFencingRejection(absl::string_view lease_id, std::string message);
  void ReleaseInState(tended::state::v1::CoordinatorState& state, tended::v1::Lease& lease,
                      tended::v1::EventType type, std::string message) const;

  StateStore* store_;
  const CoordinatorConfig& config_;
  const Clock& clock_;
  tended::state::v1::CoordinatorState state_;
  EventListener event_listener_;
};

bool IsActive(const tended::v1::Lease& lease);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASE_MANAGER_H_
