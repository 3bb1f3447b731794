#include "coordinator/core/coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/gates/window.h"
#include "coordinator/leases/os_upgrade_lifecycle.h"
#include "coordinator/leases/reboot_lifecycle.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;

constexpr absl::Duration kMaxTickInterval = absl::Seconds(15);
constexpr absl::Duration kRejectionSummaryEvery = absl::Seconds(10);

std::shared_ptr<spdlog::logger> Log() { return Logger("coordinator"); }

}  // namespace

Coordinator::Coordinator(const CoordinatorConfig& config, const Clock& clock,
                         state::StateLedger* ledger, Options options)
    : config_(config),
      clock_(clock),
      ledger_(ledger),
      options_(std::move(options)),
      started_at_(clock.Now()) {}

Coordinator::~Coordinator() {
  if (drain_flow_ != nullptr) drain_flow_->Stop();
  // What waits on the ledger (directives, events) calls into this object: let it run first.
  // A failed ledger drops its callbacks, so the wait ends with its health too.
  absl::Notification drained;
  ledger_->AfterDurable(ledger_->last_sequence(), [&drained] { drained.Notify(); });
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (!drained.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
    if (!ledger_->health().ok()) break;
    if (absl::Now() > give_up) {
      Log()->critical("the state ledger did not run its callbacks within a minute of stopping");
      break;
    }
  }
  directives_.CloseAll();
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorConfig& config,
                                                                 const Clock& clock,
                                                                 state::StateLedger* ledger,
                                                                 Options options) {
  if (ledger == nullptr) return absl::InvalidArgumentError("the coordinator needs a state ledger");
  RETURN_IF_ERROR(ledger->health());
  std::unique_ptr<Coordinator> coordinator(
      new Coordinator(config, clock, ledger, std::move(options)));
  ASSIGN_OR_RETURN(std::unique_ptr<state::FleetState> state,
                   state::FleetState::Load(ledger->recovered(), config.history_limit));
  coordinator->lifecycles_[tended::v1::LEASE_KIND_REBOOT] =
      std::make_unique<RebootLifecycle>(nullptr);
  coordinator->lifecycles_[tended::v1::LEASE_KIND_OS_UPGRADE] =
      std::make_unique<OsUpgradeLifecycle>(coordinator->config_);
  coordinator->lifecycles_[tended::v1::LEASE_KIND_K8S_UPGRADE] =
      std::make_unique<K8sUpgradeLifecycle>(coordinator->config_, nullptr);
  {
    absl::MutexLock lock(&coordinator->mutex_);
    coordinator->state_ = std::move(state);
  }
  for (const std::string& note : ledger->recovery_notes()) Log()->warn("state: {}", note);
  Coordinator* raw = coordinator.get();
  absl::Status started = coordinator->RunChange(
      [&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        const state::FleetState& state = context.state();
        if (ledger->recovered_empty() && state.state_id().empty()) {
          raw->BeginRecovery(context);
        } else if (state.state_id().empty()) {
          // A state from before state ids (imported): it gets one; nothing was lost.
          context.txn().SetIdentity(NewStateId(), context.now());
        }
        if (state.recovery().active() &&
            state.recovery().recovery_allowed() != raw->options_.recover_state) {
          tended::state::v1::RecoveryState recovery = state.recovery();
          recovery.set_recovery_allowed(raw->options_.recover_state);
          context.txn().SetRecovery(recovery);
        }
        return absl::OkStatus();
      },
      Wait::kDurable, /*grant=*/false);
  RETURN_IF_ERROR(started);
  {
    absl::ReaderMutexLock lock(&coordinator->mutex_);
    const state::FleetState& state = *coordinator->state_;
    Log()->info("state {} loaded: {} known nodes, {} active leases, fencing token {}{}",
                state.state_id(), state.nodes().size(), state.ActiveCount(),
                state.last_fencing_token(),
                state.recovery().active() ? "; recovering after a start on an empty state" : "");
  }
  return coordinator;
}

K8sUpgradeLifecycle* Coordinator::k8s_lifecycle() const {
  return static_cast<K8sUpgradeLifecycle*>(LifecycleFor(tended::v1::LEASE_KIND_K8S_UPGRADE));
}

LeaseLifecycle* Coordinator::LifecycleFor(tended::v1::LeaseKind kind) const {
  auto it = lifecycles_.find(kind);
  return it == lifecycles_.end() ? nullptr : it->second.get();
}

absl::Status Coordinator::RunChange(const std::function<absl::Status(LeaseContext&)>& change,
                                    Wait wait, bool grant) {
  uint64_t sequence = 0;
  bool recorded = false;
  {
    absl::MutexLock lock(&mutex_);
    RETURN_IF_ERROR(ledger_->health());
    state::Transaction txn(*state_, clock_.Now());
    LeaseContext context(config_, txn, options_.alerts ? options_.alerts() : std::nullopt,
                         [this, &txn](const Lease& lease, bool granted) {
                           txn.AfterDurable([this, lease, granted] { SendLease(lease, granted); });
                         });
    if (absl::Status changed = change(context); !changed.ok()) {
      txn.Rollback();
      return changed;
    }
    if (state_->ActiveK8sRollout() != nullptr) {
      k8s_lifecycle()->Advance(context, CollectGateFacts(context.now()));
    }
    if (grant && state_->waiting_total() > 0) GrantWhatGatesAllow(context);
    sequence = CommitLocked(txn, &recorded);
  }
  if (absl::Status health = ledger_->health(); !health.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the coordinator's state cannot be written: ", health.message()));
  }
  if (wait == Wait::kNone || (wait == Wait::kDurableIfChanged && !recorded)) {
    return absl::OkStatus();
  }
  if (absl::Status durable = ledger_->WaitDurable(sequence); !durable.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the change could not be made durable: ", durable.message()));
  }
  return absl::OkStatus();
}

uint64_t Coordinator::CommitLocked(state::Transaction& txn, bool* recorded) {
  state::Transaction::Outcome outcome = txn.Finish();
  uint64_t sequence = ledger_->last_sequence();
  if (recorded != nullptr) *recorded = outcome.record.has_value();
  if (outcome.record.has_value()) {
    sequence = ledger_->Append(*std::move(outcome.record));
    if (sequence == 0) {
      Log()->critical("the state ledger failed: {}; every change is refused until a restart",
                      ledger_->health().ToString());
      return 0;
    }
  }
  for (auto& after : outcome.after_durable) ledger_->AfterDurable(sequence, std::move(after));
  if (!outcome.events.empty()) {
    ledger_->AfterDurable(sequence, [this, events = std::move(outcome.events)] {
      absl::MutexLock lock(&listener_mutex_);
      if (!listener_) return;
      for (const auto& event : events) listener_(event);
    });
  }
  return sequence;
}

absl::Status Coordinator::ReadBarrier() {
  uint64_t sequence = ledger_->last_sequence();
  if (absl::Status durable = ledger_->WaitDurable(sequence); !durable.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the coordinator's state cannot be written: ", durable.message()));
  }
  return absl::OkStatus();
}

void Coordinator::SendLease(const Lease& lease, bool granted) {
  tended::v1::Directive directive;
  if (granted) {
    *directive.mutable_lease_granted() = lease;
  } else {
    *directive.mutable_lease_revoked() = lease;
  }
  directives_.Send(lease.node_name(), directive);
}

void Coordinator::SetEventListener(EventListener listener) {
  absl::MutexLock lock(&listener_mutex_);
  listener_ = std::move(listener);
}

absl::Time Coordinator::Tick() {
  const absl::Time now = clock_.Now();
  absl::Time next = now + kMaxTickInterval;
  absl::Status ticked = RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (const Lease* active : state_->ActiveLeases()) {
      Lease lease = *active;
      const LeasePolicy* policy = nullptr;
      if (auto it = config_.leases.find(lease.kind()); it != config_.leases.end()) {
        policy = &it->second;
      }
      // A gate kept blocking the act past begin_wait: give the lease back.
      // Only while nothing happened on the node yet: granted, or begun with the node still
      // on the boot it was granted on (a reboot that did happen is verified, never returned).
      const state::NodeEntry* node = state_->FindNode(lease.node_name());
      const bool untouched =
          lease.phase() == tended::v1::LEASE_PHASE_GRANTED ||
          (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING && node != nullptr &&
           node->reported_since_start() && node->facts.boot_id() == lease.boot_id_at_grant());
      if (lease.has_begin_blocked_since() && policy != nullptr && untouched &&
          now - FromProtoTimestamp(lease.begin_blocked_since()) >= policy->begin_wait) {
        if (LeaseLifecycle* lifecycle = LifecycleFor(lease.kind()); lifecycle != nullptr) {
          lifecycle->Abandon(
              context, lease,
              absl::StrCat("a gate blocked the disruptive act for ",
                           FormatDurationForPeople(policy->begin_wait), " after the grant (",
                           lease.begin_blocked_reason(), "); the lease is given back"));
          continue;
        }
      }
      if (!lease.overdue() && FromProtoTimestamp(lease.expire_time()) < now) {
        lease.set_overdue(true);
        context.txn().PutLease(lease);
        const std::string what = lease.phase() == tended::v1::LEASE_PHASE_GRANTED
                                     ? "the holder stopped renewing"
                                     : "the node has not come back and verified";
        context.txn().AddEvent(
            tended::v1::EVENT_TYPE_LEASE_OVERDUE, &lease, lease.node_name(),
            absl::StrCat("overdue since ",
                         absl::FormatTime(FromProtoTimestamp(lease.expire_time())), ": ", what,
                         "; the lease stays held until it verifies or an operator "
                         "force-releases it"));
        Log()->error("lease {} on {} is overdue and stays held", lease.id(), lease.node_name());
      }
    }
    // Two agents for one node: the conflict ends once the second has been silent a while.
    for (const auto& [name, entry] : state_->nodes()) {
      if (!entry->known.has_conflict()) continue;
      const absl::Time other_seen = FromProtoTimestamp(entry->known.conflict().other_last_seen());
      if (now - other_seen <= config_.fleet.report_deadline) continue;
      tended::state::v1::KnownNode known = entry->known;
      const std::string other = known.conflict().other_instance_id();
      known.clear_conflict();
      context.txn().PutNode(known);
      context.txn().AddEvent(tended::v1::EVENT_TYPE_AGENT_CONFLICT, nullptr, name,
                             absl::StrCat("the second agent (instance ", other,
                                          ") has been silent since ", FormatUtcTime(other_seen),
                                          "; ", name, " is no longer blocked"));
    }
    if (rejections_.pending() && now - last_rejection_summary_ >= kRejectionSummaryEvery) {
      for (const FencingRejections::Summary& summary : rejections_.Take()) {
        std::string what =
            summary.lease_id.empty()
                ? absl::StrCat(summary.count, " more refused calls for other leases")
                : absl::StrCat(summary.count, summary.count == 1 ? " call" : " calls",
                               " under lease ", summary.lease_id, " refused");
        context.txn().AddEvent(
            tended::v1::EVENT_TYPE_FENCING_REJECTED, nullptr, summary.node,
            absl::StrCat(what, " between ", FormatUtcTime(summary.first), " and ",
                         FormatUtcTime(summary.last), "; the last: ", summary.last_reason));
      }
      last_rejection_summary_ = now;
    }
    if (state_->recovery().active()) AdvanceRecovery(context);
    return absl::OkStatus();
  });
  if (!ticked.ok()) Log()->error("tick: {}", ticked.ToString());
  DetectK8sUpgrades();
  absl::ReaderMutexLock lock(&mutex_);
  for (const Lease* lease : state_->ActiveLeases()) {
    if (!lease->overdue()) next = std::min(next, FromProtoTimestamp(lease->expire_time()));
    if (lease->has_begin_blocked_since()) {
      if (auto it = config_.leases.find(lease->kind()); it != config_.leases.end()) {
        next = std::min(next, FromProtoTimestamp(lease->begin_blocked_since()) +
                                  it->second.begin_wait);
      }
    }
  }
  next = std::min(next, next_gate_check_);
  if (rejections_.pending()) next = std::min(next, now + kRejectionSummaryEvery);
  return std::max(next, now + absl::Milliseconds(10));
}

void Coordinator::Shutdown() { directives_.CloseAll(); }

Coordinator::Stats Coordinator::stats() const {
  Stats stats;
  stats.fencing_rejections = rejections_.total();
  stats.directive_streams = directives_.connected();
  absl::ReaderMutexLock lock(&mutex_);
  stats.recovering = state_->recovery().active();
  for (const auto& [name, entry] : state_->nodes()) {
    if (entry->known.has_conflict()) ++stats.identity_conflicts;
  }
  return stats;
}

}  // namespace tended::coordinator
