#include "coordinator/state/transaction.h"

#include <algorithm>

#include "common/proto_time.h"
#include "common/utf8.h"

namespace tended::coordinator::state {
namespace {

bool SameTime(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}

}  // namespace

using tended::state::v1::KnownNode;
using tended::state::v1::LedgerRecord;
using tended::state::v1::NodeDisruption;
using tended::state::v1::PendingRequest;
using tended::v1::Lease;

Transaction::Transaction(FleetState& state, absl::Time now) : state_(state), now_(now) {}

Transaction::~Transaction() {
  if (!finished_) Rollback();
}

void Transaction::PutLease(const Lease& lease) {
  std::optional<Lease> before;
  if (const Lease* old = state_.FindLease(lease.id()); old != nullptr) before = *old;
  const uint64_t token_before = state_.last_fencing_token_;
  undo_.push_back([this, before, id = lease.id(), token_before] {
    if (before.has_value()) {
      state_.RawPutLease(*before);
    } else {
      state_.RawEraseLease(id);
    }
    state_.last_fencing_token_ = token_before;
  });
  state_.RawPutLease(lease);
  leases_.insert(lease.id());
  if (state_.last_fencing_token_ != token_before) token_ = true;
}

uint64_t Transaction::NextFencingToken() {
  RaiseFencingToken(state_.last_fencing_token_ + 1);
  return state_.last_fencing_token_;
}

void Transaction::RaiseFencingToken(uint64_t token) {
  if (token <= state_.last_fencing_token_) return;
  const uint64_t before = state_.last_fencing_token_;
  undo_.push_back([this, before] { state_.last_fencing_token_ = before; });
  state_.last_fencing_token_ = token;
  token_ = true;
}

void Transaction::PutNode(const KnownNode& known) {
  NodeEntry* existing = state_.FindNode(known.node_name());
  if (existing != nullptr) {
    undo_.push_back([this, name = known.node_name(), before = existing->known] {
      if (NodeEntry* entry = state_.FindNode(name); entry != nullptr) entry->known = before;
      state_.MembershipChanged();
    });
  } else {
    undo_.push_back([this, name = known.node_name()] {
      auto it = state_.nodes_.find(name);
      if (it != state_.nodes_.end()) state_.nodes_.erase(it);
      state_.MembershipChanged();
    });
  }
  // Fleet summaries read which nodes exist and when each last disruption ended, nothing
  // else of the registry entry.
  if (existing == nullptr ||
      !SameTime(existing->known.last_disruption_end_time(), known.last_disruption_end_time())) {
    state_.MembershipChanged();
  }
  NodeEntry& entry = state_.RawNode(known.node_name());
  entry.known = known;
  entry.known.clear_last_facts();
  nodes_.insert(known.node_name());
}

void Transaction::RemoveNode(const std::string& name) {
  auto it = state_.nodes_.find(name);
  if (it == state_.nodes_.end()) return;
  std::shared_ptr<NodeEntry> removed(it->second.release());
  state_.nodes_.erase(it);
  state_.MembershipChanged();
  undo_.push_back([this, name, removed] {
    auto entry = std::make_unique<NodeEntry>();
    entry->known = removed->known;
    entry->facts = removed->facts;
    entry->last_report_unix_ns.store(removed->last_report_unix_ns.load());
    state_.nodes_[name] = std::move(entry);
    state_.MembershipChanged();
  });
  nodes_.insert(name);
}

void Transaction::PutRequest(const PendingRequest& request) {
  std::optional<PendingRequest> before;
  if (const PendingRequest* old = state_.FindRequest(request.node_name(), request.kind())) {
    before = *old;
  }
  undo_.push_back([this, before, node = request.node_name(), kind = request.kind()] {
    if (before.has_value()) {
      state_.RawPutRequest(*before);
    } else {
      state_.RawEraseRequest(node, kind);
    }
  });
  state_.RawPutRequest(request);
  requests_.insert({request.node_name(), static_cast<int>(request.kind())});
}

void Transaction::RemoveRequest(const std::string& node, tended::v1::LeaseKind kind) {
  const PendingRequest* old = state_.FindRequest(node, kind);
  if (old == nullptr) return;
  undo_.push_back([this, before = *old] { state_.RawPutRequest(before); });
  state_.RawEraseRequest(node, kind);
  requests_.insert({node, static_cast<int>(kind)});
}

void Transaction::PutDisruption(const NodeDisruption& record) {
  std::optional<NodeDisruption> before;
  if (const NodeDisruption* old = state_.FindDisruption(record.lease_id())) before = *old;
  undo_.push_back([this, before, id = record.lease_id()] {
    if (before.has_value()) {
      state_.disruptions_[id] = *before;
    } else {
      state_.disruptions_.erase(id);
    }
  });
  state_.disruptions_[record.lease_id()] = record;
  disruptions_.insert(record.lease_id());
}

void Transaction::RemoveDisruption(const std::string& lease_id) {
  const NodeDisruption* old = state_.FindDisruption(lease_id);
  if (old == nullptr) return;
  undo_.push_back([this, before = *old] { state_.disruptions_[before.lease_id()] = before; });
  state_.disruptions_.erase(lease_id);
  disruptions_.insert(lease_id);
}

void Transaction::SetHalt(const tended::v1::HaltState& halt) {
  undo_.push_back([this, before = state_.halt_] { state_.halt_ = before; });
  state_.halt_ = halt;
  halt_ = true;
}

void Transaction::SetOsRollout(const tended::state::v1::OsRolloutState& rollout) {
  undo_.push_back([this, before = state_.os_rollout_] { state_.os_rollout_ = before; });
  state_.os_rollout_ = rollout;
  os_rollout_ = true;
}

void Transaction::SetK8sDetection(const tended::state::v1::K8sDetectionState& detection) {
  undo_.push_back([this, before = state_.k8s_detection_] { state_.k8s_detection_ = before; });
  state_.k8s_detection_ = detection;
  k8s_detection_ = true;
}

void Transaction::PutK8sRollout(const tended::v1::K8sRollout& rollout) {
  undo_.push_back([this, before = state_.k8s_rollouts_] { state_.k8s_rollouts_ = before; });
  UpsertK8sRollout(state_.k8s_rollouts_, rollout);
  k8s_rollouts_.insert(rollout.id());
}

void Transaction::SetRecovery(const tended::state::v1::RecoveryState& recovery) {
  undo_.push_back([this, before = state_.recovery_] { state_.recovery_ = before; });
  state_.recovery_ = recovery;
  recovery_ = true;
}

void Transaction::SetIdentity(const std::string& state_id, absl::Time created) {
  undo_.push_back([this, id = state_.state_id_, time = state_.created_time_] {
    state_.state_id_ = id;
    state_.created_time_ = time;
  });
  state_.state_id_ = state_id;
  state_.created_time_ = created;
  identity_ = true;
}

const tended::v1::Event& Transaction::AddEvent(tended::v1::EventType type, const Lease* lease,
                                               absl::string_view node, std::string message) {
  tended::v1::Event event;
  event.set_sequence(state_.last_event_sequence_ + 1);
  *event.mutable_time() = ToProtoTimestamp(now_);
  event.set_type(type);
  event.set_node_name(std::string(node));
  if (lease != nullptr) {
    event.set_lease_id(lease->id());
    event.set_lease_kind(lease->kind());
    event.set_fencing_token(lease->fencing_token());
    event.set_lease_phase(lease->phase());
  }
  event.set_message(message.size() > kMaxEventMessageBytes
                        ? ClipUtf8(message, kMaxEventMessageBytes)
                        : std::move(message));
  event.set_disrupted_nodes(static_cast<uint32_t>(state_.ActiveCount()));
  undo_.push_back([this] {
    state_.events_.pop_back();
    --state_.last_event_sequence_;
  });
  state_.last_event_sequence_ = event.sequence();
  state_.events_.push_back(event);
  events_.push_back(event);
  return state_.events_.back();
}

void Transaction::Rollback() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) (*it)();
  undo_.clear();
  finished_ = true;
}

Transaction::Outcome Transaction::Finish() {
  finished_ = true;
  undo_.clear();
  // Bound the history: the oldest released leases go first.
  int released = 0;
  for (const std::string& id : state_.released_order_) {
    const Lease* lease = state_.FindLease(id);
    if (lease != nullptr && !IsActive(*lease)) ++released;
  }
  while (released > state_.history_limit_ && !state_.released_order_.empty()) {
    std::string oldest = state_.released_order_.front();
    state_.released_order_.pop_front();
    const Lease* lease = state_.FindLease(oldest);
    if (lease == nullptr || IsActive(*lease)) continue;
    state_.RawEraseLease(oldest);
    leases_.insert(oldest);
    --released;
  }
  while (state_.events_.size() > static_cast<size_t>(state_.history_limit_)) {
    state_.events_.pop_front();
  }

  Outcome outcome;
  outcome.after_durable = std::move(after_);
  outcome.events = events_;
  const bool changed = !leases_.empty() || !nodes_.empty() || !requests_.empty() ||
                       !disruptions_.empty() || halt_ || os_rollout_ || k8s_detection_ ||
                       recovery_ || !k8s_rollouts_.empty() || identity_ || token_ ||
                       !events_.empty();
  if (!changed) return outcome;
  LedgerRecord& record = outcome.record.emplace();
  for (const std::string& id : leases_) {
    if (const Lease* lease = state_.FindLease(id); lease != nullptr) {
      *record.add_leases() = *lease;
    } else {
      record.add_removed_lease_ids(id);
    }
  }
  for (const std::string& name : nodes_) {
    if (const NodeEntry* entry = state_.FindNode(name); entry != nullptr) {
      *record.add_nodes() = entry->known;
    } else {
      record.add_removed_nodes(name);
    }
  }
  for (const auto& [node, kind] : requests_) {
    auto lease_kind = static_cast<tended::v1::LeaseKind>(kind);
    if (const PendingRequest* request = state_.FindRequest(node, lease_kind)) {
      *record.add_requests() = *request;
    } else {
      auto* key = record.add_removed_requests();
      key->set_node_name(node);
      key->set_kind(lease_kind);
    }
  }
  for (const std::string& id : disruptions_) {
    if (const NodeDisruption* disruption = state_.FindDisruption(id)) {
      *record.add_disruptions() = *disruption;
    } else {
      record.add_removed_disruption_lease_ids(id);
    }
  }
  if (halt_) *record.mutable_halt() = state_.halt_;
  if (os_rollout_) *record.mutable_os_rollout() = state_.os_rollout_;
  if (k8s_detection_) *record.mutable_k8s_detection() = state_.k8s_detection_;
  for (const std::string& id : k8s_rollouts_) {
    if (const auto* rollout = state_.FindK8sRollout(id); rollout != nullptr) {
      *record.add_k8s_rollouts() = *rollout;
    }
  }
  if (recovery_) *record.mutable_recovery() = state_.recovery_;
  if (identity_) {
    record.set_state_id(state_.state_id_);
    *record.mutable_created_time() = ToProtoTimestamp(state_.created_time_);
  }
  if (token_) record.set_last_fencing_token(state_.last_fencing_token_);
  for (const auto& event : events_) *record.add_events() = event;
  return outcome;
}

}  // namespace tended::coordinator::state
