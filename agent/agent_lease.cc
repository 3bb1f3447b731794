// Acting under a held lease, whatever its kind: the kind's step, the fence right before a
// disruptive act (BeginDisruption), renewals, and giving a lease back without dropping one
// the coordinator still holds.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace tended::agent {
namespace {

using tended::v1::Lease;

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

}  // namespace

absl::Duration Agent::RenewEvery(const Lease& lease) const {
  if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED) {
    // Once disrupted the renewal is how the agent learns of the release.
    return report_interval_;
  }
  absl::Duration deadline =
      FromProtoTimestamp(lease.expire_time()) - FromProtoTimestamp(lease.renew_time());
  return std::max(deadline / 3, absl::Seconds(1));
}

absl::Time Agent::HandleLease(const std::string& boot_id, bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  const Lease& held = journal_.lease();
  absl::Time step_next = absl::InfiniteFuture();
  if (held.kind() == tended::v1::LEASE_KIND_OS_UPGRADE && os_ != nullptr) {
    step_next = HandleOsUpgradeLease();
  } else if (held.kind() == tended::v1::LEASE_KIND_REBOOT) {
    step_next = HandleRebootLease(boot_id, reboot_needed);
  } else if (held.kind() == tended::v1::LEASE_KIND_K8S_UPGRADE) {
    step_next = HandleK8sUpgradeLease();
  } else {
    // Other kinds are acted on by their own steps; keep the lease alive meanwhile.
    SetStatus(absl::StrCat("holding ", held.id()));
  }
  // The lease may have ended, the coordinator be unreachable, or the host be going down.
  if (!journal_.has_lease() || !connected_ || awaiting_host_reboot_) return step_next;

  if (now >= next_renew_) {
    const Lease& lease = journal_.lease();
    tended::v1::RenewLeaseRequest renew;
    renew.set_lease_id(lease.id());
    renew.set_fencing_token(lease.fencing_token());
    renew.set_agent_instance_id(instance_id_);
    auto renewed = deps_.coordinator->RenewLease(renew);
    if (renewed.ok() && renewed->lease().phase() != tended::v1::LEASE_PHASE_RELEASED) {
      *journal_.mutable_lease() = renewed->lease();
      (void)SaveJournal();
    } else if (renewed.ok()) {
      ClearLease(renewed->lease().status_message());
      return now;
    } else if (absl::IsFailedPrecondition(renewed.status())) {
      ClearLease(renewed.status().message());
      return now;
    } else {
      Disconnected(renewed.status());
      return next_connect_attempt_;
    }
    next_renew_ = now + RenewEvery(journal_.lease());
  }
  return std::min(next_renew_, step_next);
}

Agent::Fence Agent::BeginDisruption(
    absl::string_view step,
    const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& packages) {
  const Lease& lease = journal_.lease();
  tended::v1::BeginDisruptionRequest begin;
  begin.set_lease_id(lease.id());
  begin.set_fencing_token(lease.fencing_token());
  begin.set_step(std::string(step));
  begin.set_agent_instance_id(instance_id_);
  *begin.mutable_packages() = packages;
  auto begun = deps_.coordinator->BeginDisruption(begin);
  if (begun.ok()) {
    *journal_.mutable_lease() = begun->lease();
    NoteFencingToken(begun->lease().fencing_token());
    next_lease_act_ = absl::InfinitePast();
    return Fence::kGo;
  }
  if (absl::IsFailedPrecondition(begun.status())) {
    Log()->error("not starting {} under {}: {}", step, lease.id(), begun.status().message());
    ClearLease(begun.status().message());
    return Fence::kLost;
  }
  if (absl::IsUnavailable(begun.status()) || absl::IsInvalidArgument(begun.status())) {
    // Not now (a gate blocks again, the node is still being prepared): the lease stays
    // ours, and the coordinator returns it if the wait grows too long.
    next_lease_act_ = deps_.clock->Now() + ActRetryDelay();
    SetStatus(absl::StrCat("holding ", lease.id(), "; ", step,
                           " not begun yet: ", begun.status().message(), " (asking again in ",
                           absl::FormatDuration(ActRetryDelay()), ")"));
    return Fence::kWait;
  }
  Disconnected(begun.status());
  return Fence::kUnreachable;
}

std::optional<absl::Time> Agent::WakeUnlessGo(Fence fence) const {
  switch (fence) {
    case Fence::kGo:
      return std::nullopt;
    case Fence::kWait:
      return next_lease_act_;
    case Fence::kLost:
      return deps_.clock->Now();
    case Fence::kUnreachable:
      return next_connect_attempt_;
  }
  return deps_.clock->Now();
}

absl::Time Agent::ReturnLease(const std::string& reason) {
  const absl::Time now = deps_.clock->Now();
  if (now < next_lease_act_) return next_lease_act_;
  const Lease lease = journal_.lease();
  tended::v1::ReleaseLeaseRequest release;
  release.set_lease_id(lease.id());
  release.set_fencing_token(lease.fencing_token());
  release.set_reason(reason);
  release.set_agent_instance_id(instance_id_);
  auto released = deps_.coordinator->ReleaseLease(release);
  if (released.ok()) {
    ClearLease(reason);
    return now;
  }
  if (!absl::IsFailedPrecondition(released.status())) {
    Disconnected(released.status());
    return next_connect_attempt_;
  }
  // Refused. The lease may be gone, or the coordinator may still hold it (it refuses some
  // releases, e.g. once a disruption began): only a refused renewal proves it gone.
  tended::v1::RenewLeaseRequest renew;
  renew.set_lease_id(lease.id());
  renew.set_fencing_token(lease.fencing_token());
  renew.set_agent_instance_id(instance_id_);
  auto renewed = deps_.coordinator->RenewLease(renew);
  if (renewed.ok() && renewed->lease().phase() != tended::v1::LEASE_PHASE_RELEASED) {
    *journal_.mutable_lease() = renewed->lease();
    (void)SaveJournal();
    next_renew_ = now + RenewEvery(journal_.lease());
    next_lease_act_ = now + ActRetryDelay();
    Log()->warn("the coordinator refused to take back {} ({}) but still holds it", lease.id(),
                released.status().message());
    SetStatus(absl::StrCat("holding ", lease.id(), ": the coordinator refused to take it back (",
                           released.status().message(), "); renewing it and asking again in ",
                           absl::FormatDuration(ActRetryDelay())));
    return std::min(next_renew_, next_lease_act_);
  }
  if (renewed.ok()) {
    ClearLease(renewed->lease().status_message());
    return now;
  }
  if (absl::IsFailedPrecondition(renewed.status())) {
    ClearLease(renewed.status().message());
    return now;
  }
  Disconnected(renewed.status());
  return next_connect_attempt_;
}

}  // namespace tended::agent
