#include "coordinator/state/fleet_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace tended::coordinator::state {
namespace {

using tended::state::v1::CoordinatorState;
using tended::state::v1::PendingRequest;
using tended::v1::Lease;
using tended::v1::LeaseKind;

size_t KindIndex(LeaseKind kind) {
  const int value = static_cast<int>(kind);
  return value >= 0 && value < 4 ? static_cast<size_t>(value) : 0;
}

int64_t QueueTime(const PendingRequest& request) {
  return absl::ToUnixNanos(FromProtoTimestamp(request.request_time()));
}

}  // namespace

bool IsActive(const Lease& lease) {
  return lease.phase() != tended::v1::LEASE_PHASE_RELEASED &&
         lease.phase() != tended::v1::LEASE_PHASE_UNSPECIFIED;
}

absl::Time NodeEntry::last_report() const {
  const int64_t ns = last_report_unix_ns.load();
  return ns == INT64_MIN ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

FleetState::FleetState(int history_limit) : history_limit_(std::max(history_limit, 10)) {}

absl::StatusOr<std::unique_ptr<FleetState>> FleetState::Load(const CoordinatorState& persisted,
                                                             int history_limit) {
  auto state = std::make_unique<FleetState>(history_limit);
  state->last_fencing_token_ = persisted.last_fencing_token();
  std::vector<const Lease*> released;
  for (const Lease& lease : persisted.leases()) {
    if (lease.id().empty() || state->leases_.count(lease.id()) > 0) {
      return absl::DataLossError(absl::StrCat("the state holds lease \"", lease.id(),
                                              "\" twice or without an id"));
    }
    if (lease.fencing_token() > state->last_fencing_token_) {
      return absl::DataLossError(absl::StrCat("lease ", lease.id(), " has fencing token ",
                                              lease.fencing_token(), " above the counter ",
                                              state->last_fencing_token_));
    }
    if (IsActive(lease)) {
      if (const Lease* other = state->ActiveLeaseForNode(lease.node_name()); other != nullptr) {
        return absl::DataLossError(absl::StrCat("node ", lease.node_name(),
                                                " holds two active leases: ", other->id(),
                                                " and ", lease.id()));
      }
    }
    state->RawPutLease(lease);
  }
  for (const auto& [id, lease] : state->leases_) {
    if (!IsActive(lease)) released.push_back(&lease);
  }
  std::sort(released.begin(), released.end(), [](const Lease* a, const Lease* b) {
    return FromProtoTimestamp(a->release_time()) < FromProtoTimestamp(b->release_time());
  });
  state->released_order_.clear();
  for (const Lease* lease : released) state->released_order_.push_back(lease->id());
  for (const auto& known : persisted.nodes()) {
    NodeEntry& entry = state->RawNode(known.node_name());
    entry.known = known;
    entry.known.clear_last_facts();
  }
  for (const auto& request : persisted.pending_requests()) state->RawPutRequest(request);
  for (const auto& record : persisted.disruptions()) {
    state->disruptions_[record.lease_id()] = record;
  }
  state->halt_ = persisted.halt();
  state->os_rollout_ = persisted.os_rollout();
  state->k8s_detection_ = persisted.k8s_detection();
  state->recovery_ = persisted.recovery();
  for (const auto& rollout : persisted.k8s_rollouts()) {
    UpsertK8sRollout(state->k8s_rollouts_, rollout);
  }
  state->state_id_ = persisted.state_id();
  state->created_time_ = FromProtoTimestamp(persisted.created_time());
  for (const auto& event : persisted.events()) state->events_.push_back(event);
  state->last_event_sequence_ = persisted.last_event_sequence();
  for (const auto& event : persisted.events()) {
    state->last_event_sequence_ = std::max(state->last_event_sequence_, event.sequence());
  }
  return state;
}

bool IsK8sRolloutActive(const tended::v1::K8sRollout& rollout) {
  return rollout.state() == tended::v1::K8S_ROLLOUT_STATE_RUNNING ||
         rollout.state() == tended::v1::K8S_ROLLOUT_STATE_CANCELLING;
}

void UpsertK8sRollout(std::vector<tended::v1::K8sRollout>& rollouts,
                      const tended::v1::K8sRollout& rollout) {
  auto it = std::find_if(rollouts.begin(), rollouts.end(),
                         [&](const auto& r) { return r.id() == rollout.id(); });
  if (it != rollouts.end()) {
    *it = rollout;
    return;
  }
  rollouts.push_back(rollout);
  while (rollouts.size() > kK8sRolloutHistory) {
    auto finished = std::find_if(rollouts.begin(), rollouts.end(),
                                 [](const auto& r) { return !IsK8sRolloutActive(r); });
    if (finished == rollouts.end()) break;
    rollouts.erase(finished);
  }
}

const tended::v1::K8sRollout* FleetState::FindK8sRollout(absl::string_view id) const {
  for (const auto& rollout : k8s_rollouts_) {
    if (rollout.id() == id) return &rollout;
  }
  return nullptr;
}

const tended::v1::K8sRollout* FleetState::ActiveK8sRollout() const {
  for (const auto& rollout : k8s_rollouts_) {
    if (IsK8sRolloutActive(rollout)) return &rollout;
  }
  return nullptr;
}

const Lease* FleetState::FindLease(absl::string_view id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

const Lease* FleetState::ActiveLeaseForNode(absl::string_view node) const {
  auto it = active_by_node_.find(node);
  return it == active_by_node_.end() ? nullptr : FindLease(it->second);
}

std::vector<const Lease*> FleetState::ActiveLeases() const {
  std::vector<const Lease*> active;
  active.reserve(static_cast<size_t>(active_total_));
  for (const auto& [node, id] : active_by_node_) active.push_back(FindLease(id));
  return active;
}

int FleetState::ActiveCount(LeaseKind kind) const { return active_per_kind_[KindIndex(kind)]; }

std::vector<const Lease*> FleetState::ReleasedLeases() const {
  std::vector<const Lease*> released;
  for (const std::string& id : released_order_) {
    const Lease* lease = FindLease(id);
    if (lease != nullptr && !IsActive(*lease) &&
        std::find(released.begin(), released.end(), lease) == released.end()) {
      released.push_back(lease);
    }
  }
  return released;
}

const NodeEntry* FleetState::FindNode(absl::string_view name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

NodeEntry* FleetState::FindNode(absl::string_view name) {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

const PendingRequest* FleetState::FindRequest(absl::string_view node, LeaseKind kind) const {
  auto it = requests_.find({std::string(node), static_cast<int>(kind)});
  return it == requests_.end() ? nullptr : &it->second;
}

std::vector<const PendingRequest*> FleetState::Waiting(LeaseKind kind) const {
  std::vector<const PendingRequest*> waiting;
  for (const auto& [time, node] : queues_[KindIndex(kind)]) {
    if (const PendingRequest* request = FindRequest(node, kind); request != nullptr) {
      waiting.push_back(request);
    }
  }
  return waiting;
}

size_t FleetState::QueuePosition(absl::string_view node, LeaseKind kind) const {
  size_t position = 0;
  for (const auto& [time, name] : queues_[KindIndex(kind)]) {
    ++position;
    if (name == node) return position;
  }
  return 0;
}

const tended::state::v1::NodeDisruption* FleetState::FindDisruption(
    absl::string_view lease_id) const {
  auto it = disruptions_.find(lease_id);
  return it == disruptions_.end() ? nullptr : &it->second;
}

std::vector<tended::v1::Event> FleetState::EventsAfter(uint64_t sequence, size_t limit) const {
  std::vector<tended::v1::Event> result;
  auto first = std::upper_bound(
      events_.begin(), events_.end(), sequence,
      [](uint64_t value, const tended::v1::Event& event) { return value < event.sequence(); });
  for (auto it = first; it != events_.end() && result.size() < limit; ++it) {
    result.push_back(*it);
  }
  return result;
}

CoordinatorState FleetState::ToProto() const {
  CoordinatorState proto;
  proto.set_format_version(2);
  proto.set_last_fencing_token(last_fencing_token_);
  proto.set_last_event_sequence(last_event_sequence_);
  *proto.mutable_halt() = halt_;
  for (const auto& [id, lease] : leases_) *proto.add_leases() = lease;
  for (const auto& [name, entry] : nodes_) *proto.add_nodes() = entry->known;
  for (const auto& [key, request] : requests_) *proto.add_pending_requests() = request;
  for (const auto& event : events_) *proto.add_events() = event;
  for (const auto& [id, record] : disruptions_) *proto.add_disruptions() = record;
  *proto.mutable_os_rollout() = os_rollout_;
  *proto.mutable_k8s_detection() = k8s_detection_;
  proto.set_state_id(state_id_);
  if (created_time_ != absl::InfinitePast()) {
    *proto.mutable_created_time() = ToProtoTimestamp(created_time_);
  }
  *proto.mutable_recovery() = recovery_;
  for (const auto& rollout : k8s_rollouts_) *proto.add_k8s_rollouts() = rollout;
  return proto;
}

void FleetState::Unindex(const Lease& lease) {
  if (!IsActive(lease)) return;
  auto by_node = active_by_node_.find(lease.node_name());
  if (by_node != active_by_node_.end() && by_node->second == lease.id()) {
    active_by_node_.erase(by_node);
  }
  --active_per_kind_[KindIndex(lease.kind())];
  --active_total_;
}

void FleetState::RawPutLease(const Lease& lease) {
  MembershipChanged();
  auto it = leases_.find(lease.id());
  const bool was_active = it != leases_.end() && IsActive(it->second);
  if (it != leases_.end()) {
    Unindex(it->second);
    it->second = lease;
  } else {
    it = leases_.emplace(lease.id(), lease).first;
  }
  if (IsActive(lease)) {
    active_by_node_[lease.node_name()] = lease.id();
    ++active_per_kind_[KindIndex(lease.kind())];
    ++active_total_;
  } else if (was_active || std::find(released_order_.begin(), released_order_.end(),
                                     lease.id()) == released_order_.end()) {
    released_order_.push_back(lease.id());
  }
  last_fencing_token_ = std::max(last_fencing_token_, lease.fencing_token());
}

void FleetState::RawEraseLease(const std::string& id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  MembershipChanged();
  Unindex(it->second);
  leases_.erase(it);
}

void FleetState::RawPutRequest(const PendingRequest& request) {
  RawEraseRequest(request.node_name(), request.kind());
  requests_[{request.node_name(), static_cast<int>(request.kind())}] = request;
  queues_[KindIndex(request.kind())].insert({QueueTime(request), request.node_name()});
}

void FleetState::RawEraseRequest(const std::string& node, LeaseKind kind) {
  auto it = requests_.find({node, static_cast<int>(kind)});
  if (it == requests_.end()) return;
  queues_[KindIndex(kind)].erase({QueueTime(it->second), node});
  requests_.erase(it);
}

NodeEntry& FleetState::RawNode(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) it = nodes_.emplace(name, std::make_unique<NodeEntry>()).first;
  return *it->second;
}

}  // namespace tended::coordinator::state
