#include "coordinator/leases/lifecycle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;

absl::string_view PhaseName(tended::v1::LeasePhase phase) {
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

}  // namespace

Lease LeaseContext::Release(const Lease& lease, tended::v1::EventType type,
                            const std::string& message, bool failed) {
  const bool disrupted = lease.phase() != tended::v1::LEASE_PHASE_GRANTED;
  Lease released = lease;
  released.set_phase(tended::v1::LEASE_PHASE_RELEASED);
  released.set_preparing(false);
  *released.mutable_release_time() = ToProtoTimestamp(now());
  released.set_status_message(message);
  released.clear_begin_blocked_since();
  released.clear_begin_blocked_reason();
  released.clear_begin_blocked_gates();
  txn_.PutLease(released);
  txn_.AddEvent(type, &released, released.node_name(), message);
  if (const state::NodeEntry* node = state().FindNode(lease.node_name()); node != nullptr) {
    tended::state::v1::KnownNode known = node->known;
    const bool verified = type == tended::v1::EVENT_TYPE_LEASE_RELEASED;
    if (verified || (type == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED && disrupted)) {
      *known.mutable_last_disruption_end_time() = ToProtoTimestamp(now());
    }
    if (verified) {
      known.set_consecutive_returns(0);
      known.clear_backoff_until();
    } else if (failed) {
      known.set_consecutive_returns(known.consecutive_returns() + 1);
      absl::Duration wait = config_.fleet.return_backoff;
      for (uint32_t i = 1; i < known.consecutive_returns() && wait < config_.fleet.return_backoff_max;
           ++i) {
        wait *= 2;
      }
      wait = std::min(wait, config_.fleet.return_backoff_max);
      *known.mutable_backoff_until() = ToProtoTimestamp(now() + wait);
    }
    txn_.PutNode(known);
  }
  Send(released, /*granted=*/false);
  return released;
}

void LeaseContext::SetStatus(const Lease& lease, const std::string& message, bool problem) {
  if (lease.status_message() == message) return;
  Lease updated = lease;
  updated.set_status_message(message);
  txn_.PutLease(updated);
  if (problem) {
    txn_.AddEvent(tended::v1::EVENT_TYPE_LEASE_VERIFICATION_FAILED, &updated,
                  updated.node_name(), message);
  }
}

Lease LeaseContext::MarkVerifying(const Lease& lease, const std::string& message) {
  if (lease.phase() == tended::v1::LEASE_PHASE_VERIFYING) return lease;
  Lease verifying = lease;
  verifying.set_phase(tended::v1::LEASE_PHASE_VERIFYING);
  verifying.set_status_message(message);
  verifying.clear_begin_blocked_since();
  verifying.clear_begin_blocked_reason();
  verifying.clear_begin_blocked_gates();
  txn_.PutLease(verifying);
  txn_.AddEvent(tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED, &verifying, verifying.node_name(),
                absl::StrCat("VERIFYING: ", message));
  return verifying;
}

absl::StatusOr<Lease> LeaseLifecycle::OnReturn(LeaseContext& context, const Lease& lease,
                                               const std::string& reason) {
  if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease.id(), " is ", PhaseName(lease.phase()),
                     ": once a disruption began, the coordinator releases after verification"));
  }
  return context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                         absl::StrCat("returned by the holder before any disruption: ", reason));
}

void LeaseLifecycle::Abandon(LeaseContext& context, const Lease& lease, const std::string& reason) {
  context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, reason, /*failed=*/true);
}

}  // namespace tended::coordinator
