// The coordinator's state in memory, typed and indexed: leases (active by id and by node,
// counted per kind, and a bounded history), the fencing counter, known nodes, the queue of
// waiting requests per kind, the Kubernetes steps in flight, the operators' halt, the OS
// rollout, recovery after an empty start, and the tail of the event log. Reads are direct;
// every change goes through a Transaction (transaction.h), which records it for the ledger
// and can undo it. What only this process knows about a node (its last facts, when it last
// reported) lives beside the durable part and is never persisted.
//
// Thread-compatible: the Coordinator guards it with its mutex. A node's last-report time is
// atomic so that heartbeats can store it under a shared lock.
#ifndef TENDED_COORDINATOR_STATE_FLEET_STATE_H_
#define TENDED_COORDINATOR_STATE_FLEET_STATE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tended/state/v1/state.pb.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator::state {

class Transaction;

// Rollouts kept in the state; the oldest finished ones go first.
inline constexpr size_t kK8sRolloutHistory = 50;

// Puts `rollout` into `rollouts` by id (appended when new), then trims the oldest finished
// ones beyond kK8sRolloutHistory. Shared by the state and the ledger's image so both keep
// the same list.
void UpsertK8sRollout(std::vector<tended::v1::K8sRollout>& rollouts,
                      const tended::v1::K8sRollout& rollout);
bool IsK8sRolloutActive(const tended::v1::K8sRollout& rollout);

bool IsActive(const tended::v1::Lease& lease);

struct NodeEntry {
  // What is persisted.
  tended::state::v1::KnownNode known;
  // What only this process knows: the last facts reported to it, and when (InfinitePast
  // until the node has reported since the coordinator started).
  tended::v1::NodeFacts facts;
  // `facts` serialized: a report that sends the same bytes changes nothing.
  std::string facts_bytes;
  std::atomic<int64_t> last_report_unix_ns{INT64_MIN};

  absl::Time last_report() const;
  bool reported_since_start() const { return last_report_unix_ns.load() != INT64_MIN; }
  void MarkReported(absl::Time at) { last_report_unix_ns.store(absl::ToUnixNanos(at)); }
};

class FleetState {
 public:
  // `history_limit` released leases and events are kept (at least 10).
  explicit FleetState(int history_limit);
  // Rebuilds the state from what the ledger recovered.
  static absl::StatusOr<std::unique_ptr<FleetState>> Load(
      const tended::state::v1::CoordinatorState& persisted, int history_limit);

  // Leases.
  const tended::v1::Lease* FindLease(absl::string_view id) const;
  const tended::v1::Lease* ActiveLeaseForNode(absl::string_view node) const;
  std::vector<const tended::v1::Lease*> ActiveLeases() const;
  int ActiveCount() const { return active_total_; }
  int ActiveCount(tended::v1::LeaseKind kind) const;
  // Released leases kept in the history, oldest release first.
  std::vector<const tended::v1::Lease*> ReleasedLeases() const;
  uint64_t last_fencing_token() const { return last_fencing_token_; }

  // Nodes.
  const NodeEntry* FindNode(absl::string_view name) const;
  NodeEntry* FindNode(absl::string_view name);
  const std::map<std::string, std::unique_ptr<NodeEntry>, std::less<>>& nodes() const {
    return nodes_;
  }
  // Changes whenever a node is added or removed or the end of its last disruption changes,
  // and whenever a lease is put or erased: what is derived from nodes, holders and
  // disruption ends (the fleet-health summary) is still valid while this stays the same.
  // Reports and other changes of a node's registry entry do not change it.
  uint64_t membership_version() const { return membership_version_; }

  // Waiting requests, oldest first per kind.
  const tended::state::v1::PendingRequest* FindRequest(absl::string_view node,
                                                       tended::v1::LeaseKind kind) const;
  std::vector<const tended::state::v1::PendingRequest*> Waiting(tended::v1::LeaseKind kind) const;
  size_t waiting_total() const { return requests_.size(); }
  // 1-based position of the node's request in its kind's queue; 0 when it waits for none.
  size_t QueuePosition(absl::string_view node, tended::v1::LeaseKind kind) const;

  // The Kubernetes steps in flight, by lease id.
  const tended::state::v1::NodeDisruption* FindDisruption(absl::string_view lease_id) const;
  const std::map<std::string, tended::state::v1::NodeDisruption, std::less<>>& disruptions()
      const {
    return disruptions_;
  }

  const tended::v1::HaltState& halt() const { return halt_; }
  const tended::state::v1::OsRolloutState& os_rollout() const { return os_rollout_; }
  const tended::state::v1::RecoveryState& recovery() const { return recovery_; }
  // Kubernetes version rollouts, oldest first (at most kK8sRolloutHistory).
  const std::vector<tended::v1::K8sRollout>& k8s_rollouts() const { return k8s_rollouts_; }
  const tended::v1::K8sRollout* FindK8sRollout(absl::string_view id) const;
  // The rollout that is running or cancelling, if any (at most one).
  const tended::v1::K8sRollout* ActiveK8sRollout() const;
  // The Kubernetes targets detection found and what it did with them.
  const tended::state::v1::K8sDetectionState& k8s_detection() const { return k8s_detection_; }
  const std::string& state_id() const { return state_id_; }
  absl::Time created_time() const { return created_time_; }

  // The event log's tail.
  std::vector<tended::v1::Event> EventsAfter(uint64_t sequence, size_t limit) const;
  uint64_t last_event_sequence() const { return last_event_sequence_; }

  // The whole durable state, for tests and `dump`.
  tended::state::v1::CoordinatorState ToProto() const;

 private:
  friend class Transaction;
  using RequestKey = std::pair<std::string, int>;
  using QueueKey = std::tuple<int64_t, std::string>;  // Request time, node.

  void RawPutLease(const tended::v1::Lease& lease);
  void RawEraseLease(const std::string& id);
  void Unindex(const tended::v1::Lease& lease);
  void RawPutRequest(const tended::state::v1::PendingRequest& request);
  void RawEraseRequest(const std::string& node, tended::v1::LeaseKind kind);
  NodeEntry& RawNode(const std::string& name);
  void MembershipChanged() { ++membership_version_; }

  int history_limit_;
  std::map<std::string, tended::v1::Lease, std::less<>> leases_;
  std::map<std::string, std::string, std::less<>> active_by_node_;
  std::array<int, 4> active_per_kind_{};
  int active_total_ = 0;
  std::deque<std::string> released_order_;
  uint64_t last_fencing_token_ = 0;

  std::map<std::string, std::unique_ptr<NodeEntry>, std::less<>> nodes_;
  uint64_t membership_version_ = 0;
  std::map<RequestKey, tended::state::v1::PendingRequest> requests_;
  std::array<std::set<QueueKey>, 4> queues_;
  std::map<std::string, tended::state::v1::NodeDisruption, std::less<>> disruptions_;

  tended::v1::HaltState halt_;
  tended::state::v1::OsRolloutState os_rollout_;
  tended::state::v1::RecoveryState recovery_;
  std::vector<tended::v1::K8sRollout> k8s_rollouts_;
  tended::state::v1::K8sDetectionState k8s_detection_;
  std::string state_id_;
  absl::Time created_time_ = absl::InfinitePast();

  std::deque<tended::v1::Event> events_;
  uint64_t last_event_sequence_ = 0;
};

}  // namespace tended::coordinator::state

#endif  // TENDED_COORDINATOR_STATE_FLEET_STATE_H_
