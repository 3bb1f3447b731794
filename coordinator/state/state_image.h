// The coordinator's persisted state as the ledger sees it: every durable entity by key, so
// that journal records (whole entities upserted or removed by key) apply in order. Recovery
// builds one from the latest snapshot and the records after it; the embedded ledger keeps
// one in step with what is durable and writes it out as the next snapshot.
// Thread-compatible.
#ifndef TENDED_COORDINATOR_STATE_STATE_IMAGE_H_
#define TENDED_COORDINATOR_STATE_STATE_IMAGE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tended/state/v1/state.pb.h"

namespace tended::coordinator::state {

class StateImage {
 public:
  // Keeps the last `event_limit` events (at least 1).
  explicit StateImage(size_t event_limit = 1000) : event_limit_(event_limit) {}
  // Fails on what a record could not have produced (duplicate keys).
  static absl::StatusOr<StateImage> FromProto(const tended::state::v1::CoordinatorState& proto,
                                              size_t event_limit = 1000);

  // Applies one record. DATA_LOSS when its sequence does not follow the last one applied.
  absl::Status Apply(const tended::state::v1::LedgerRecord& record);

  tended::state::v1::CoordinatorState ToProto() const;

  uint64_t sequence() const { return sequence_; }
  // Nothing was ever recorded: no state id and no entity.
  bool empty() const;

 private:
  using RequestKey = std::pair<std::string, int>;

  uint64_t sequence_ = 0;
  std::string state_id_;
  google::protobuf::Timestamp created_time_;
  uint64_t last_fencing_token_ = 0;
  uint64_t last_event_sequence_ = 0;
  tended::v1::HaltState halt_;
  tended::state::v1::OsRolloutState os_rollout_;
  tended::state::v1::K8sDetectionState k8s_detection_;
  tended::state::v1::RecoveryState recovery_;
  std::vector<tended::v1::K8sRollout> k8s_rollouts_;
  std::map<std::string, tended::v1::Lease> leases_;
  std::map<std::string, tended::state::v1::KnownNode> nodes_;
  std::map<RequestKey, tended::state::v1::PendingRequest> requests_;
  std::map<std::string, tended::state::v1::NodeDisruption> disruptions_;
  std::deque<tended::v1::Event> events_;
  size_t event_limit_;
};

}  // namespace tended::coordinator::state

#endif  // TENDED_COORDINATOR_STATE_STATE_IMAGE_H_
