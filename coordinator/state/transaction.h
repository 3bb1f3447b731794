// One change to the FleetState: applied to memory at once (so the rest of the change sees
// it), remembered so that it can be undone if the change fails half-way, and turned into
// one ledger record when it ends. Every durable change in the coordinator goes through a
// Transaction; what must wait for durability (directives, Kubernetes steps, notifications)
// is attached with AfterDurable. Not thread-safe: used under the Coordinator's lock.
#ifndef TENDED_COORDINATOR_STATE_TRANSACTION_H_
#define TENDED_COORDINATOR_STATE_TRANSACTION_H_

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/state/fleet_state.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator::state {

// Events carry text from outside (alert names, operator reasons); none grows the log past this.
inline constexpr size_t kMaxEventMessageBytes = 4096;

class Transaction {
 public:
  Transaction(FleetState& state, absl::Time now);
  // Undoes everything unless Finish() was called.
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const FleetState& state() const { return state_; }
  absl::Time now() const { return now_; }

  // Leases: a lease put released moves to the history (bounded when the change ends).
  void PutLease(const tended::v1::Lease& lease);
  uint64_t NextFencingToken();
  // Fencing continues above `token` (adoption, recovery).
  void RaiseFencingToken(uint64_t token);

  // The persisted part of a node (created when new). Its last_facts are never persisted.
  void PutNode(const tended::state::v1::KnownNode& known);
  void RemoveNode(const std::string& name);

  void PutRequest(const tended::state::v1::PendingRequest& request);
  void RemoveRequest(const std::string& node, tended::v1::LeaseKind kind);

  void PutDisruption(const tended::state::v1::NodeDisruption& record);
  void RemoveDisruption(const std::string& lease_id);

  void SetHalt(const tended::v1::HaltState& halt);
  void SetOsRollout(const tended::state::v1::OsRolloutState& rollout);
  void SetK8sDetection(const tended::state::v1::K8sDetectionState& detection);
  // Puts a Kubernetes rollout, whole, by id.
  void PutK8sRollout(const tended::v1::K8sRollout& rollout);
  void SetRecovery(const tended::state::v1::RecoveryState& recovery);
  void SetIdentity(const std::string& state_id, absl::Time created);

  // Appends an event (sequence, time and the count of disrupted nodes filled in). A message
  // over kMaxEventMessageBytes is clipped.
  const tended::v1::Event& AddEvent(tended::v1::EventType type, const tended::v1::Lease* lease,
                                    absl::string_view node, std::string message);

  // Runs after the record is durable (or at once after the change, when it changed nothing
  // durable, once everything appended before it is durable).
  void AfterDurable(std::function<void()> fn) { after_.push_back(std::move(fn)); }

  struct Outcome {
    std::optional<tended::state::v1::LedgerRecord> record;  // Without a sequence yet.
    std::vector<std::function<void()>> after_durable;
    std::vector<tended::v1::Event> events;
  };
  // Ends the change: trims the history, builds the record. The state keeps the change.
  Outcome Finish();
  // Undoes every change made through this transaction.
  void Rollback();

 private:
  FleetState& state_;
  const absl::Time now_;
  bool finished_ = false;
  std::vector<std::function<void()>> undo_;
  std::set<std::string> leases_;
  std::set<std::string> nodes_;
  std::set<std::pair<std::string, int>> requests_;
  std::set<std::string> disruptions_;
  bool halt_ = false;
  bool os_rollout_ = false;
  bool k8s_detection_ = false;
  std::set<std::string> k8s_rollouts_;
  bool recovery_ = false;
  bool identity_ = false;
  bool token_ = false;
  std::vector<tended::v1::Event> events_;
  std::vector<std::function<void()>> after_;
};

}  // namespace tended::coordinator::state

#endif  // TENDED_COORDINATOR_STATE_TRANSACTION_H_
