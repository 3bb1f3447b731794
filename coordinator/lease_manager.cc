#include "coordinator/lease_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

using tended::state::v1::CoordinatorState;
using tended::v1::Lease;
using tended::v1::LeaseKind;
using tended::v1::LeasePhase;

absl::string_view PhaseName(LeasePhase phase) {
  switch (phase) {
    case tended::v1::LEASE_PHASE_GRANTED:
      return "GRANTED";
    case tended::v1::LEASE_PHASE_DISRUPTING:
      return "DISRUPTING";
    case tended::v1::LEASE_PHASE_VERIFYING:
      return "VERIFYING";
    case tended::v1::LEASE_PHASE_RELEASED:
      return "RELEASED";
    default:
      return "UNSPECIFIED";
  }
}

Lease* FindLeaseById(CoordinatorState& state, absl::string_view lease_id) {
  for (Lease& lease : *state.mutable_leases()) {
    if (lease.id() == lease_id) return &lease;
  }
  return nullptr;
}

absl::StatusOr<Lease*> ActiveLeaseById(CoordinatorState& state, absl::string_view lease_id) {
  Lease* lease = FindLeaseById(state, lease_id);
  if (lease == nullptr || !IsActive(*lease)) {
    return absl::FailedPreconditionError(absl::StrCat("no active lease ", lease_id));
  }
  return lease;
}

int CountActive(const CoordinatorState& state) {
  return static_cast<int>(std::count_if(state.leases().begin(), state.leases().end(),
                                        [](const Lease& lease) { return IsActive(lease); }));
}

}  // namespace

bool IsActive(const Lease& lease) {
  return lease.phase() != tended::v1::LEASE_PHASE_RELEASED &&
         lease.phase() != tended::v1::LEASE_PHASE_UNSPECIFIED;
}

LeaseManager::LeaseManager(StateStore* store, const CoordinatorConfig& config, const Clock& clock,
                           CoordinatorState state)
    : store_(store), config_(config), clock_(clock), state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<LeaseManager>> LeaseManager::Load(StateStore* store,
                                                                 const CoordinatorConfig& config,
                                                                 const Clock& clock) {
  ASSIGN_OR_RETURN(CoordinatorState state, store->Load());
  for (const Lease& lease : state.leases()) {
    if (lease.fencing_token() > state.last_fencing_token()) {
      return absl::DataLossError(absl::StrCat("lease ", lease.id(), " has fencing token ",
                                              lease.fencing_token(), " above the counter ",
                                              state.last_fencing_token()));
    }
  }
  state.set_format_version(kCoordinatorStateFormatVersion);
  return std::unique_ptr<LeaseManager>(new LeaseManager(store, config, clock, std::move(state)));
}

absl::Status LeaseManager::Commit(const Mutation& mutation) {
  CoordinatorState next = state_;
  RETURN_IF_ERROR(mutation(next));
  TrimHistory(next);
  absl::Status saved = store_->Save(next);
  if (!saved.ok()) {
    Logger("lease")->error("could not persist coordinator state: {}", saved.ToString());
    return absl::UnavailableError(
        absl::StrCat("could not persist the coordinator's state: ", saved.message()));
  }
  const uint64_t last_announced = state_.last_event_sequence();
  state_ = std::move(next);
  if (event_listener_) {
    for (const auto& event : state_.events()) {
      if (event.sequence() > last_announced) event_listener_(event);
    }
  }
  return absl::OkStatus();
}

void LeaseManager::AppendEvent(CoordinatorState& state, tended::v1::EventType type,
                               const Lease* lease, absl::string_view node,
                               std::string message) const {
  tended::v1::Event* event = state.add_events();
  state.set_last_event_sequence(state.last_event_sequence() + 1);
  event->set_sequence(state.last_event_sequence());
  *event->mutable_time() = ToProtoTimestamp(clock_.Now());
  event->set_type(type);
  event->set_node_name(std::string(node));
  if (lease != nullptr) {
    event->set_lease_id(lease->id());
    event->set_lease_kind(lease->kind());
    event->set_fencing_token(lease->fencing_token());
    event->set_lease_phase(lease->phase());
  }
  event->set_message(std::move(message));
  event->set_disrupted_nodes(static_cast<uint32_t>(CountActive(state)));
}

void LeaseManager::TrimHistory(CoordinatorState& state) const {
  const int limit = std::max(config_.history_limit, 10);
  if (state.events_size() > limit) {
    state.mutable_events()->DeleteSubrange(0, state.events_size() - limit);
  }
  int released = 0;
  for (const Lease& lease : state.leases()) released += IsActive(lease) ? 0 : 1;
  if (released <= limit) return;
  int to_drop = released - limit;
  auto* leases = state.mutable_leases();
  for (int i = 0; i < leases->size() && to_drop > 0;) {
    if (!IsActive(leases->Get(i))) {
      leases->DeleteSubrange(i, 1);
      --to_drop;
    } else {
      ++i;
    }
  }
}

std::vector<Lease> LeaseManager::ActiveLeases() const {
  std::vector<Lease> result;
  for (const Lease& lease : state_.leases()) {
    if (IsActive(lease)) result.push_back(lease);
  }
  return result;
}

int LeaseManager::ActiveLeaseCount() const { return CountActive(state_); }

const Lease* LeaseManager::FindActiveLeaseForNode(absl::string_view node) const {
  for (const Lease& lease : state_.leases()) {
    if (IsActive(lease) && lease.node_name() == node) return &lease;
  }
  return nullptr;
}

const Lease* LeaseManager::FindLease(absl::string_view lease_id) const {
  for (const Lease& lease : state_.leases()) {
    if (lease.id() == lease_id) return &lease;
  }
  return nullptr;
}

const tended::state::v1::KnownNode* LeaseManager::FindNode(absl::string_view node) const {
  for (const auto& known : state_.nodes()) {
    if (known.node_name() == node) return &known;
  }
  return nullptr;
}

absl::StatusOr<bool> LeaseManager::RecordFacts(const tended::v1::NodeFacts& facts) {
  const tended::state::v1::KnownNode* known = FindNode(facts.node_name());
  if (known != nullptr && known->boot_id() == facts.boot_id() &&
      known->last_facts().reboot_required() == facts.reboot_required() &&
      known->last_facts().kernel_release() == facts.kernel_release() &&
      known->last_facts().os_upgrade().SerializeAsString() ==
          facts.os_upgrade().SerializeAsString()) {
    return false;  // Nothing durable changed: a heartbeat.
  }
  bool boot_changed = known != nullptr && known->boot_id() != facts.boot_id();
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    tended::state::v1::KnownNode* node = nullptr;
    for (auto& candidate : *state.mutable_nodes()) {
      if (candidate.node_name() == facts.node_name()) node = &candidate;
    }
    if (node == nullptr) {
      node = state.add_nodes();
      node->set_node_name(facts.node_name());
      *node->mutable_first_seen_time() = ToProtoTimestamp(clock_.Now());
      AppendEvent(state, tended::v1::EVENT_TYPE_NODE_REGISTERED, nullptr, facts.node_name(),
                  absl::StrCat("node registered with boot id ", facts.boot_id()));
    } else if (boot_changed) {
      AppendEvent(state, tended::v1::EVENT_TYPE_NODE_REBOOTED, nullptr, facts.node_name(),
                  absl::StrCat("boot id changed from ", node->boot_id(), " to ", facts.boot_id()));
    }
    node->set_boot_id(facts.boot_id());
    *node->mutable_last_facts() = facts;
    return absl::OkStatus();
  }));
  return boot_changed;
}

absl::Status LeaseManager::AddPendingRequest(absl::string_view node, LeaseKind kind,
                                             absl::string_view reason) {
  for (const auto& pending : state_.pending_requests()) {
    if (pending.node_name() == node && pending.kind() == kind) return absl::OkStatus();
  }
  return Commit([&](CoordinatorState& state) {
    auto* pending = state.add_pending_requests();
    pending->set_node_name(std::string(node));
    pending->set_kind(kind);
    pending->set_reason(std::string(reason));
    *pending->mutable_request_time() = ToProtoTimestamp(clock_.Now());
    AppendEvent(state, tended::v1::EVENT_TYPE_LEASE_REQUESTED, nullptr, node,
                absl::StrCat(LeaseKindConfigName(kind), " lease requested: ", reason));
    return absl::OkStatus();
  });
}

absl::Status LeaseManager::RemovePendingRequest(absl::string_view node, LeaseKind kind) {
  bool present = false;
  for (const auto& pending : state_.pending_requests()) {
    present |= pending.node_name() == node && pending.kind() == kind;
  }
  if (!present) return absl::OkStatus();
  return Commit([&](CoordinatorState& state) {
    auto* pending = state.mutable_pending_requests();
    for (int i = 0; i < pending->size(); ++i) {
      if (pending->Get(i).node_name() == node && pending->Get(i).kind() == kind) {
        pending->DeleteSubrange(i, 1);
        break;
      }
    }
    return absl::OkStatus();
  });
}

std::vector<tended::state::v1::PendingRequest> LeaseManager::PendingRequests(LeaseKind kind) const {
  std::vector<tended::state::v1::PendingRequest> result;
  for (const auto& pending : state_.pending_requests()) {
    if (pending.kind() == kind) result.push_back(pending);
  }
  std::stable_sort(result.begin(), result.end(), [](const auto& a, const auto& b) {
    return FromProtoTimestamp(a.request_time()) < FromProtoTimestamp(b.request_time());
  });
  return result;
}

absl::StatusOr<Lease> LeaseManager::Grant(absl::string_view node, LeaseKind kind,
                                          absl::string_view reason) {
  auto policy = config_.leases.find(kind);
  if (policy == config_.leases.end() || !policy->second.enabled) {
    return absl::FailedPreconditionError(
        absl::StrCat(LeaseKindConfigName(kind), " leases are not enabled in the configuration"));
  }
  if (const Lease* held = FindActiveLeaseForNode(node); held != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(node, " already holds lease ", held->id()));
  }
  int same_kind = 0;
  for (const Lease& lease : state_.leases()) {
    if (!IsActive(lease)) continue;
    if (lease.kind() == kind) {
      ++same_kind;
    } else if (!config_.allow_kind_overlap) {
      return absl::FailedPreconditionError(absl::StrCat("a ", LeaseKindConfigName(lease.kind()),
                                                        " lease is active on ", lease.node_name(),
                                                        " and kinds may not overlap"));
    }
  }
  if (same_kind >= policy->second.concurrency) {
    return absl::FailedPreconditionError(absl::StrCat("granting would exceed the ",
                                                      LeaseKindConfigName(kind), " concurrency of ",
                                                      policy->second.concurrency));
  }
  const tended::state::v1::KnownNode* known = FindNode(node);
  std::string boot_id = known != nullptr ? known->boot_id() : "";

  Lease granted;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    const uint64_t token = state.last_fencing_token() + 1;
    state.set_last_fencing_token(token);
    const absl::Time now = clock_.Now();
    Lease* lease = state.add_leases();
    lease->set_id(absl::StrCat(LeaseKindConfigName(kind), "-", node, "-", token));
    lease->set_kind(kind);
    lease->set_node_name(std::string(node));
    lease->set_fencing_token(token);
    lease->set_phase(tended::v1::LEASE_PHASE_GRANTED);
    *lease->mutable_grant_time() = ToProtoTimestamp(now);
    *lease->mutable_renew_time() = ToProtoTimestamp(now);
    *lease->mutable_expire_time() = ToProtoTimestamp(now + policy->second.renew_deadline);
    lease->set_boot_id_at_grant(boot_id);
    lease->set_reason(std::string(reason));
    auto* pending = state.mutable_pending_requests();
    for (int i = 0; i < pending->size(); ++i) {
      if (pending->Get(i).node_name() == node && pending->Get(i).kind() == kind) {
        pending->DeleteSubrange(i, 1);
        break;
      }
    }
    AppendEvent(state, tended::v1::EVENT_TYPE_LEASE_GRANTED, lease, node,
                absl::StrCat("granted with fencing token ", token));
    granted = *lease;
    return absl::OkStatus();
  }));
  Logger("lease")->info("granted {} to {} (token {})", granted.id(), node, granted.fencing_token());
  return granted;
}

namespace {

// Whether `lease` (found by `lease_id`, possibly null) is active and `token` is current.
absl::Status CheckHolder(const Lease* lease, absl::string_view lease_id, uint64_t token) {
  if (lease == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("no lease ", lease_id));
  }
  if (!IsActive(*lease)) {
    return absl::FailedPreconditionError(absl::StrCat("lease ", lease_id, " was released"));
  }
  if (lease->fencing_token() != token) {
    return absl::FailedPreconditionError(absl::StrCat("stale fencing token ", token, " for lease ",
                                                      lease_id, " (current ",
                                                      lease->fencing_token(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Lease*> LeaseManager::FindCurrentLease(CoordinatorState& state,
                                                      absl::string_view lease_id,
                                                      uint64_t token) const {
  Lease* lease = FindLeaseById(state, lease_id);
  RETURN_IF_ERROR(CheckHolder(lease, lease_id, token));
  return lease;
}

absl::StatusOr<const Lease*> LeaseManager::CurrentLease(absl::string_view lease_id,
                                                        uint64_t token) const {
  const Lease* lease = FindLease(lease_id);
  RETURN_IF_ERROR(CheckHolder(lease, lease_id, token));
  return lease;
}

const LeasePolicy& LeaseManager::PolicyFor(LeaseKind kind) const {
  // A lease of a kind since removed from the configuration keeps the default deadlines.
  static const LeasePolicy* const kDefaults = new LeasePolicy();
  auto policy = config_.leases.find(kind);
  return policy != config_.leases.end() ? policy->second : *kDefaults;
}

void LeaseManager::RecordFencingRejection(absl::string_view lease_id, std::string message) {
  const Lease* known = FindLease(lease_id);
  const std::string node = known != nullptr ? known->node_name() : "";
  // Best effort: the refusal stands whether or not the event could be saved.
  (void)Commit([&](CoordinatorState& state) {
    AppendEvent(state, tended::v1::EVENT_TYPE_FENCING_REJECTED, nullptr, node, std::move(message));
    return absl::OkStatus();
  });
}

absl::StatusOr<Lease> LeaseManager::Renew(absl::string_view lease_id, uint64_t token) {
  auto found = CurrentLease(lease_id, token);
  const Lease* known = FindLease(lease_id);
  // A holder renewing a lease that was released is how it learns of the release; only a
  // token that does not match a lease still held is worth an event.
  if (!found.ok() && known != nullptr && IsActive(*known)) {
    RecordFencingRejection(lease_id, absl::StrCat("renew refused: ", found.status().message()));
  }
  if (!found.ok()) return found.status();
  Lease renewed;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    ASSIGN_OR_RETURN(Lease * lease, FindCurrentLease(state, lease_id, token));
    const absl::Time now = clock_.Now();
    const absl::Duration deadline = PolicyFor(lease->kind()).renew_deadline;
    *lease->mutable_renew_time() = ToProtoTimestamp(now);
    // Once disrupted, the return deadline set by BeginDisruption governs: renewing does not
    // extend the time a node has to come back and verify.
    if (lease->phase() == tended::v1::LEASE_PHASE_GRANTED) {
      *lease->mutable_expire_time() = ToProtoTimestamp(now + deadline);
      lease->set_overdue(false);
    }
    renewed = *lease;
    return absl::OkStatus();
  }));
  return renewed;
}

absl::StatusOr<Lease> LeaseManager::BeginDisruption(absl::string_view lease_id, uint64_t token,
                                                    absl::string_view step) {
  auto found = CurrentLease(lease_id, token);
  if (!found.ok()) {
    RecordFencingRejection(lease_id, absl::StrCat(step, " refused: ", found.status().message()));
    return found.status();
  }
  if ((*found)->phase() == tended::v1::LEASE_PHASE_VERIFYING) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " is being verified; no new disruption under it"));
  }
  Lease result;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    ASSIGN_OR_RETURN(Lease * lease, FindCurrentLease(state, lease_id, token));
    const absl::Time now = clock_.Now();
    const absl::Duration back_by = PolicyFor(lease->kind()).return_deadline;
    bool changed = lease->phase() != tended::v1::LEASE_PHASE_DISRUPTING;
    lease->set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
    *lease->mutable_renew_time() = ToProtoTimestamp(now);
    // While disrupted the node may be unable to renew: it has until the return deadline.
    *lease->mutable_expire_time() = ToProtoTimestamp(now + back_by);
    if (changed) {
      AppendEvent(state, tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED, lease, lease->node_name(),
                  absl::StrCat("DISRUPTING: ", step));
    }
    result = *lease;
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<Lease> LeaseManager::ReleaseByHolder(absl::string_view lease_id, uint64_t token,
                                                    absl::string_view reason) {
  ASSIGN_OR_RETURN(const Lease* current, CurrentLease(lease_id, token));
  if (current->phase() != tended::v1::LEASE_PHASE_GRANTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " is ", PhaseName(current->phase()),
                     ": once a disruption began, the coordinator releases after verification"));
  }
  Lease result;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    ASSIGN_OR_RETURN(Lease * lease, FindCurrentLease(state, lease_id, token));
    ReleaseInState(state, *lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                   absl::StrCat("returned by the holder before any disruption: ", reason));
    result = *lease;
    return absl::OkStatus();
  }));
  return result;
}

void LeaseManager::ReleaseInState(CoordinatorState& state, Lease& lease, tended::v1::EventType type,
                                  std::string message) const {
  lease.set_phase(tended::v1::LEASE_PHASE_RELEASED);
  *lease.mutable_release_time() = ToProtoTimestamp(clock_.Now());
  lease.set_status_message(message);
  AppendEvent(state, type, &lease, lease.node_name(), std::move(message));
}

absl::StatusOr<Lease> LeaseManager::MarkVerifying(absl::string_view lease_id,
                                                  absl::string_view message) {
  Lease result;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    ASSIGN_OR_RETURN(Lease * lease, ActiveLeaseById(state, lease_id));
    if (lease->phase() != tended::v1::LEASE_PHASE_VERIFYING) {
      lease->set_phase(tended::v1::LEASE_PHASE_VERIFYING);
      lease->set_status_message(std::string(message));
      AppendEvent(state, tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED, lease, lease->node_name(),
                  absl::StrCat("VERIFYING: ", message));
    }
    result = *lease;
    return absl::OkStatus();
  }));
  return result;
}

absl::Status LeaseManager::SetVerificationProblem(absl::string_view lease_id,
                                                  absl::string_view message) {
  return SetStatusMessage(lease_id, message, /*is_failure=*/true);
}

absl::Status LeaseManager::SetVerificationWait(absl::string_view lease_id,
                                               absl::string_view message) {
  return SetStatusMessage(lease_id, message, /*is_failure=*/false);
}

absl::Status LeaseManager::SetStatusMessage(absl::string_view lease_id, absl::string_view message,
                                            bool is_failure) {
  const Lease* current = FindLease(lease_id);
  if (current == nullptr || !IsActive(*current)) {
    return absl::FailedPreconditionError(absl::StrCat("no active lease ", lease_id));
  }
  if (current->status_message() == message) return absl::OkStatus();
  return Commit([&](CoordinatorState& state) {
    Lease* lease = FindLeaseById(state, lease_id);
    lease->set_status_message(std::string(message));
    if (is_failure) {
      AppendEvent(state, tended::v1::EVENT_TYPE_LEASE_VERIFICATION_FAILED, lease,
                  lease->node_name(), std::string(message));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<Lease> LeaseManager::CompleteVerification(absl::string_view lease_id,
                                                         absl::string_view message) {
  Lease result;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    ASSIGN_OR_RETURN(Lease * lease, ActiveLeaseById(state, lease_id));
    ReleaseInState(state, *lease, tended::v1::EVENT_TYPE_LEASE_RELEASED,
                   absl::StrCat("verified and released: ", message));
    for (auto& node : *state.mutable_nodes()) {
      if (node.node_name() == lease->node_name()) {
        *node.mutable_last_disruption_end_time() = ToProtoTimestamp(clock_.Now());
      }
    }
    result = *lease;
    return absl::OkStatus();
  }));
  Logger("lease")->info("released {} after verification", lease_id);
  return result;
}

absl::StatusOr<Lease> LeaseManager::ForceRelease(absl::string_view lease_id,
                                                 absl::string_view reason) {
  if (reason.empty()) {
    return absl::InvalidArgumentError("a force-release needs a reason for the event log");
  }
  Lease result;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    Lease* lease = FindLeaseById(state, lease_id);
    if (lease == nullptr) return absl::NotFoundError(absl::StrCat("no lease ", lease_id));
    if (!IsActive(*lease)) {
      return absl::FailedPreconditionError(
          absl::StrCat("lease ", lease_id, " is already released"));
    }
    bool was_disrupted = lease->phase() != tended::v1::LEASE_PHASE_GRANTED;
    ReleaseInState(state, *lease, tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED,
                   absl::StrCat("force-released by an operator: ", reason));
    if (was_disrupted) {
      // The node may have been disrupted: the soak starts now, as after a verified release.
      for (auto& node : *state.mutable_nodes()) {
        if (node.node_name() == lease->node_name()) {
          *node.mutable_last_disruption_end_time() = ToProtoTimestamp(clock_.Now());
        }
      }
    }
    result = *lease;
    return absl::OkStatus();
  }));
  Logger("lease")->warn("force-released {}: {}", lease_id, reason);
  return result;
}

absl::StatusOr<std::vector<Lease>> LeaseManager::FlagOverdueLeases() {
  const absl::Time now = clock_.Now();
  std::vector<std::string> overdue_ids;
  for (const Lease& lease : state_.leases()) {
    if (IsActive(lease) && !lease.overdue() && FromProtoTimestamp(lease.expire_time()) < now) {
      overdue_ids.push_back(lease.id());
    }
  }
  std::vector<Lease> flagged;
  if (overdue_ids.empty()) return flagged;
  RETURN_IF_ERROR(Commit([&](CoordinatorState& state) {
    for (const std::string& id : overdue_ids) {
      Lease* lease = FindLeaseById(state, id);
      lease->set_overdue(true);
      std::string what = lease->phase() == tended::v1::LEASE_PHASE_GRANTED
                             ? "the holder stopped renewing"
                             : "the node has not come back and verified";
      AppendEvent(
          state, tended::v1::EVENT_TYPE_LEASE_OVERDUE, lease, lease->node_name(),
          absl::StrCat("overdue since ", absl::FormatTime(FromProtoTimestamp(lease->expire_time())),
                       ": ", what,
                       "; the lease stays held until it verifies or an "
                       "operator force-releases it"));
      flagged.push_back(*lease);
    }
    return absl::OkStatus();
  }));
  for (const Lease& lease : flagged) {
    Logger("lease")->error("lease {} on {} is overdue and stays held", lease.id(),
                           lease.node_name());
  }
  return flagged;
}

absl::Status LeaseManager::Halt(absl::string_view reason) {
  if (reason.empty()) return absl::InvalidArgumentError("a halt needs a reason");
  return Commit([&](CoordinatorState& state) {
    state.mutable_halt()->set_halted(true);
    state.mutable_halt()->set_reason(std::string(reason));
    *state.mutable_halt()->mutable_since() = ToProtoTimestamp(clock_.Now());
    AppendEvent(state, tended::v1::EVENT_TYPE_HALTED, nullptr, "",
                absl::StrCat("halted: ", reason));
    return absl::OkStatus();
  });
}

absl::Status LeaseManager::Resume() {
  if (!state_.halt().halted()) return absl::OkStatus();
  return Commit([&](CoordinatorState& state) {
    std::string previous = state.halt().reason();
    state.mutable_halt()->Clear();
    AppendEvent(state, tended::v1::EVENT_TYPE_RESUMED, nullptr, "",
                absl::StrCat("resumed (was halted: ", previous, ")"));
    return absl::OkStatus();
  });
}

absl::Status LeaseManager::RemoveNode(absl::string_view node, absl::string_view reason) {
  if (reason.empty()) return absl::InvalidArgumentError("removing a node needs a reason");
  if (FindNode(node) == nullptr) return absl::NotFoundError(absl::StrCat("no node ", node));
  if (const Lease* held = FindActiveLeaseForNode(node); held != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        node, " holds ", held->id(), ": force-release it first if the node is gone for good"));
  }
  return Commit([&](CoordinatorState& state) {
    auto* nodes = state.mutable_nodes();
    for (int i = 0; i < nodes->size(); ++i) {
      if (nodes->Get(i).node_name() == node) {
        nodes->DeleteSubrange(i, 1);
        break;
      }
    }
    auto* pending = state.mutable_pending_requests();
    for (int i = pending->size() - 1; i >= 0; --i) {
      if (pending->Get(i).node_name() == node) pending->DeleteSubrange(i, 1);
    }
    AppendEvent(state, tended::v1::EVENT_TYPE_NODE_REMOVED, nullptr, node,
                absl::StrCat("removed by an operator: ", reason));
    return absl::OkStatus();
  });
}

absl::Status LeaseManager::Mutate(
    const std::function<absl::Status(CoordinatorState&, const EventAppender&)>& mutation) {
  return Commit([&](CoordinatorState& state) {
    EventAppender append = [&](tended::v1::EventType type, const Lease* lease,
                               absl::string_view node, std::string message) {
      AppendEvent(state, type, lease, node, std::move(message));
    };
    return mutation(state, append);
  });
}

std::vector<tended::v1::Event> LeaseManager::EventsAfter(uint64_t sequence, size_t limit) const {
  std::vector<tended::v1::Event> result;
  for (const auto& event : state_.events()) {
    if (event.sequence() > sequence) result.push_back(event);
  }
  if (result.size() > limit) result.resize(limit);
  return result;
}

}  // namespace tended::coordinator
