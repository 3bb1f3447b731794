#include "coordinator/state/state_image.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/state/fleet_state.h"

namespace tended::coordinator::state {

using tended::state::v1::CoordinatorState;
using tended::state::v1::LedgerRecord;

absl::StatusOr<StateImage> StateImage::FromProto(const CoordinatorState& proto,
                                                 size_t event_limit) {
  StateImage image(event_limit);
  image.sequence_ = proto.ledger_sequence();
  image.state_id_ = proto.state_id();
  image.created_time_ = proto.created_time();
  image.last_fencing_token_ = proto.last_fencing_token();
  image.last_event_sequence_ = proto.last_event_sequence();
  image.halt_ = proto.halt();
  image.os_rollout_ = proto.os_rollout();
  image.k8s_detection_ = proto.k8s_detection();
  image.recovery_ = proto.recovery();
  for (const auto& rollout : proto.k8s_rollouts()) UpsertK8sRollout(image.k8s_rollouts_, rollout);
  for (const auto& lease : proto.leases()) {
    if (!image.leases_.emplace(lease.id(), lease).second) {
      return absl::DataLossError(absl::StrCat("the state holds lease ", lease.id(), " twice"));
    }
  }
  for (const auto& node : proto.nodes()) {
    if (!image.nodes_.emplace(node.node_name(), node).second) {
      return absl::DataLossError(absl::StrCat("the state holds node ", node.node_name(), " twice"));
    }
  }
  for (const auto& request : proto.pending_requests()) {
    image.requests_[{request.node_name(), request.kind()}] = request;
  }
  for (const auto& record : proto.disruptions()) image.disruptions_[record.lease_id()] = record;
  for (const auto& event : proto.events()) image.events_.push_back(event);
  while (image.events_.size() > std::max<size_t>(image.event_limit_, 1)) {
    image.events_.pop_front();
  }
  return image;
}

absl::Status StateImage::Apply(const LedgerRecord& record) {
  if (record.sequence() != sequence_ + 1) {
    return absl::DataLossError(absl::StrCat("ledger record ", record.sequence(),
                                            " does not follow record ", sequence_));
  }
  sequence_ = record.sequence();
  if (!record.state_id().empty()) {
    state_id_ = record.state_id();
    created_time_ = record.created_time();
  }
  if (record.has_last_fencing_token()) {
    last_fencing_token_ = std::max(last_fencing_token_, record.last_fencing_token());
  }
  if (record.has_halt()) halt_ = record.halt();
  if (record.has_os_rollout()) os_rollout_ = record.os_rollout();
  if (record.has_k8s_detection()) k8s_detection_ = record.k8s_detection();
  if (record.has_recovery()) recovery_ = record.recovery();
  for (const auto& rollout : record.k8s_rollouts()) UpsertK8sRollout(k8s_rollouts_, rollout);
  for (const auto& id : record.removed_lease_ids()) leases_.erase(id);
  for (const auto& lease : record.leases()) leases_[lease.id()] = lease;
  for (const auto& name : record.removed_nodes()) nodes_.erase(name);
  for (const auto& node : record.nodes()) nodes_[node.node_name()] = node;
  for (const auto& key : record.removed_requests()) requests_.erase({key.node_name(), key.kind()});
  for (const auto& request : record.requests()) {
    requests_[{request.node_name(), request.kind()}] = request;
  }
  for (const auto& id : record.removed_disruption_lease_ids()) disruptions_.erase(id);
  for (const auto& disruption : record.disruptions()) {
    disruptions_[disruption.lease_id()] = disruption;
  }
  for (const auto& event : record.events()) {
    last_event_sequence_ = std::max(last_event_sequence_, event.sequence());
    events_.push_back(event);
  }
  while (events_.size() > std::max<size_t>(event_limit_, 1)) events_.pop_front();
  return absl::OkStatus();
}

CoordinatorState StateImage::ToProto() const {
  CoordinatorState proto;
  proto.set_format_version(2);
  proto.set_ledger_sequence(sequence_);
  proto.set_state_id(state_id_);
  *proto.mutable_created_time() = created_time_;
  proto.set_last_fencing_token(last_fencing_token_);
  proto.set_last_event_sequence(last_event_sequence_);
  *proto.mutable_halt() = halt_;
  *proto.mutable_os_rollout() = os_rollout_;
  *proto.mutable_k8s_detection() = k8s_detection_;
  *proto.mutable_recovery() = recovery_;
  for (const auto& rollout : k8s_rollouts_) *proto.add_k8s_rollouts() = rollout;
  for (const auto& [id, lease] : leases_) *proto.add_leases() = lease;
  for (const auto& [name, node] : nodes_) *proto.add_nodes() = node;
  for (const auto& [key, request] : requests_) *proto.add_pending_requests() = request;
  for (const auto& [id, disruption] : disruptions_) *proto.add_disruptions() = disruption;
  for (const auto& event : events_) *proto.add_events() = event;
  return proto;
}

bool StateImage::empty() const {
  return state_id_.empty() && leases_.empty() && nodes_.empty() && requests_.empty() &&
         disruptions_.empty() && events_.empty() && k8s_rollouts_.empty() &&
         last_fencing_token_ == 0;
}

}  // namespace tended::coordinator::state
