#include "coordinator/leases/reboot_lifecycle.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"

namespace tended::coordinator {

using tended::v1::Lease;

bool RebootLifecycle::FlowOwns(const LeaseContext& context, const Lease& lease) const {
  return flow_ != nullptr && flow_->Owns(context.state(), lease);
}

void RebootLifecycle::OnGranted(LeaseContext& context, Lease& lease) {
  if (flow_ != nullptr) flow_->OnGranted(context, lease);
}

absl::Status RebootLifecycle::OnBegin(LeaseContext& context, Lease& lease,
                                      const tended::v1::BeginDisruptionRequest& request) {
  if (flow_ == nullptr) return absl::OkStatus();
  return flow_->MayDisrupt(context.state(), lease);
}

void RebootLifecycle::OnFacts(LeaseContext& context, const Lease& lease,
                              const state::NodeEntry& node) {
  const tended::v1::NodeFacts& facts = node.facts;
  if (facts.boot_id() == lease.boot_id_at_grant()) return;  // Not rebooted yet.
  const bool flow_owns = FlowOwns(context, lease);
  if (flow_owns && lease.phase() == tended::v1::LEASE_PHASE_GRANTED &&
      (lease.preparing() || facts.reboot_required())) {
    // Booted again while being drained (or drained and still needing its reboot): undo the
    // cordon first, then the lease goes back and the agent asks again.
    flow_->Abandon(context, lease,
                   absl::StrCat("the node booted again (boot id ", facts.boot_id(),
                                ") before its reboot"),
                   /*failed=*/false);
    return;
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && facts.reboot_required()) {
    // The node booted again before any disruption under this lease began (the grant went
    // by facts older than that boot, or it went down on its own) and still needs its
    // reboot. Its agent never acts on a lease from another boot, so verifying would wait
    // forever: give the lease back and queue the request again, for a grant on this boot.
    context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                    absl::StrCat("the node booted again (boot id ", facts.boot_id(),
                                 ") before any disruption under the lease began; asking again"));
    tended::state::v1::PendingRequest again;
    again.set_node_name(lease.node_name());
    again.set_kind(lease.kind());
    again.set_reason(lease.reason());
    *again.mutable_request_time() = ToProtoTimestamp(context.now());
    context.txn().PutRequest(again);
    return;
  }
  const Lease verifying =
      context.MarkVerifying(lease, absl::StrCat("new boot id ", facts.boot_id()));
  if (facts.reboot_required()) {
    context.SetStatus(verifying,
                      absl::StrCat("rebooted (boot id ", facts.boot_id(),
                                   ") but still reports reboot-required: ",
                                   absl::StrJoin(facts.reboot_required_reasons(), ", ")),
                      /*problem=*/true);
    return;
  }
  if (flow_owns) {
    flow_->WakeAfter(context);  // It checks Kubernetes, uncordons, then releases.
    return;
  }
  context.Release(verifying, tended::v1::EVENT_TYPE_LEASE_RELEASED,
                  absl::StrCat("verified and released: new boot id ", facts.boot_id(),
                               ", no reboot required"));
}

absl::StatusOr<Lease> RebootLifecycle::OnReturn(LeaseContext& context, const Lease& lease,
                                                const std::string& reason) {
  const state::NodeEntry* node = context.state().FindNode(lease.node_name());
  const bool not_rebooted = node != nullptr && node->reported_since_start() &&
                            node->facts.boot_id() == lease.boot_id_at_grant();
  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING && not_rebooted) {
    // Begun, but the node never rebooted under it (its agent lost its journal after the
    // fence check and no longer needs the reboot): nothing to verify.
    const std::string message = absl::StrCat(
        "returned by the holder: the node did not reboot under it (boot id ",
        lease.boot_id_at_grant(), " unchanged): ", reason);
    if (FlowOwns(context, lease)) {
      flow_->ReturnUnrebooted(context, lease, message, /*failed=*/false);
      return *context.state().FindLease(lease.id());
    }
    return context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, message);
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && FlowOwns(context, lease)) {
    // The node may be cordoned for it: the flow uncordons, then returns the lease.
    flow_->Abandon(context, lease, absl::StrCat("returned by the holder: ", reason),
                   /*failed=*/false);
    return *context.state().FindLease(lease.id());
  }
  return LeaseLifecycle::OnReturn(context, lease, reason);
}

void RebootLifecycle::Abandon(LeaseContext& context, const Lease& lease,
                              const std::string& reason) {
  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
    // Begun, but the node did not reboot (the coordinator checks that before it abandons).
    if (FlowOwns(context, lease)) {
      flow_->ReturnUnrebooted(context, lease, reason, /*failed=*/true);
    } else {
      context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, reason, /*failed=*/true);
    }
    return;
  }
  if (FlowOwns(context, lease)) {
    flow_->Abandon(context, lease, reason, /*failed=*/true);
    return;
  }
  LeaseLifecycle::Abandon(context, lease, reason);
}

void RebootLifecycle::OnForceReleased(LeaseContext& context, const Lease& lease) {
  if (flow_ != nullptr) flow_->WakeAfter(context);  // Uncordons, if ours.
}

void RebootLifecycle::OnAdopted(LeaseContext& context, Lease& lease) {
  if (flow_ != nullptr) flow_->OnAdopted(context, lease);
}

}  // namespace tended::coordinator
