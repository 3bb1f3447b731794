// The drain flow's way back: verify the node in Kubernetes after its reboot, uncordon a
// cordon of its own and release; or undo a preparation that must not go on.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/leases/drain_flow.h"
#include "coordinator/leases/drain_flow_internal.h"
#include "coordinator/leases/k8s_rollout_plan.h"

namespace tended::coordinator {
namespace {

using namespace drain_flow_internal;  // NOLINT: the flow's own helpers.
using tended::v1::Lease;

std::shared_ptr<spdlog::logger> Log() { return Logger("kube-flow"); }

}  // namespace

bool DrainFlow::Verify(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const Lease& lease = *snapshot.lease;
  if (lease.phase() != tended::v1::LEASE_PHASE_VERIFYING) return false;  // Not back yet.
  const std::string node = record.node_name();
  const bool reboot = lease.kind() == tended::v1::LEASE_KIND_REBOOT;
  std::vector<std::string> waiting;
  if (!snapshot.agent_reported) {
    waiting.push_back("the agent has not reported since the coordinator started");
  } else if (reboot && snapshot.agent_boot_id == lease.boot_id_at_grant()) {
    waiting.push_back("the agent has not reported a new boot id");
  } else if (!reboot) {
    for (std::string& wait : K8sPackageWaits(lease, snapshot.agent_k8s)) {
      waiting.push_back(std::move(wait));
    }
  }
  if (reboot && snapshot.agent_reboot_required) {
    waiting.push_back("the agent still reports reboot-required");
  }
  std::string kube_summary;
  absl::StatusOr<kube::NodeInfo> info = deps_.client->GetNode(node);
  if (!info.ok()) {
    waiting.push_back(absl::StrCat("cannot read the node: ", info.status().message()));
  } else {
    if (reboot && !record.kube_boot_id_before().empty() &&
        info->boot_id == record.kube_boot_id_before()) {
      waiting.push_back(absl::StrCat("the kubelet still reports boot id ", info->boot_id));
    }
    if (info->ready != kube::ConditionStatus::kTrue) {
      waiting.push_back(absl::StrCat("not Ready (", kube::ConditionStatusName(info->ready),
                                     info->ready_reason.empty() ? "" : ": ", info->ready_reason,
                                     ")"));
    }
    const std::string expected = reboot ? config_.kubernetes.expected_kubelet_version
                                        : absl::StrCat("v", lease.k8s_work().target_version());
    if (!expected.empty() && info->kubelet_version != expected) {
      waiting.push_back(absl::StrCat("kubelet ", info->kubelet_version, ", expected ", expected));
    }
    kube_summary =
        absl::StrCat("boot id ", info->boot_id, ", Ready, kubelet ", info->kubelet_version);
  }
  if (std::optional<AlertSnapshot> alerts = hooks_.alerts(); alerts.has_value()) {
    GateFacts facts;
    facts.alerts = std::move(alerts);
    if (GateOutcome outcome = AlertsGate(facts, config_, clock_.Now()); !outcome.pass) {
      waiting.push_back(outcome.reason);
    }
  }
  if (!waiting.empty()) {
    // Normal while the node boots; the return deadline turns a long wait into an alarm.
    const std::string message =
        absl::StrCat("back but not verified yet: ", absl::StrJoin(waiting, "; "));
    (void)hooks_.change([&](LeaseContext& context) {
      const Lease* current = context.state().FindLease(record.lease_id());
      if (current != nullptr && state::IsActive(*current)) {
        context.SetStatus(*current, message, /*problem=*/false);
      }
      return absl::OkStatus();
    });
    return false;
  }
  if (record.cordoned_by_us()) {
    if (absl::Status uncordoned = MakeDrainer(config_.kubernetes.drain.timeout).Uncordon(node);
        !uncordoned.ok()) {
      const std::string message =
          absl::StrCat("verified, but the uncordon failed: ", uncordoned.message());
      (void)hooks_.change([&](LeaseContext& context) {
        const Lease* current = context.state().FindLease(record.lease_id());
        if (current != nullptr && state::IsActive(*current)) {
          context.SetStatus(*current, message, /*problem=*/true);
        }
        return absl::OkStatus();
      });
      return false;
    }
  }
  if (absl::Status cleared = marker_->Clear(node); !cleared.ok()) {
    Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
  }
  const std::string message =
      record.cordoned_by_us()
          ? absl::StrCat("verified in Kubernetes (", kube_summary, "); uncordoned")
          : absl::StrCat("verified in Kubernetes (", kube_summary,
                         "); left cordoned, as it was before");
  NodeEvent(node, record.cordoned_by_us() ? "TendedUncordon" : "TendedVerified", message);
  return SaveStep(snapshot, NodeDisruption::STEP_UNCORDONED, kube_summary, message);
}

bool DrainFlow::Complete(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  bool released = false;
  absl::Status saved = hooks_.change([&](LeaseContext& context) {
    const Lease* lease = context.state().FindLease(record.lease_id());
    context.txn().RemoveDisruption(record.lease_id());
    if (lease == nullptr || !state::IsActive(*lease)) return absl::OkStatus();
    context.Release(
        *lease, tended::v1::EVENT_TYPE_LEASE_RELEASED,
        lease->kind() == tended::v1::LEASE_KIND_REBOOT
            ? absl::StrCat("verified and released: new boot id ", snapshot.agent_boot_id,
                           ", no reboot required; ", record.message())
            : absl::StrCat("verified and released: the node reports the target's packages; ",
                           record.message()));
    released = true;
    return absl::OkStatus();
  });
  if (!saved.ok()) {
    Log()->error("releasing {}: {}", record.lease_id(), saved.ToString());
    return false;
  }
  if (released) {
    NodeEvent(record.node_name(), "TendedReleased",
              absl::StrCat("Verified; REBOOT lease ", record.lease_id(), " released"));
  }
  return true;
}

bool DrainFlow::Undo(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  const std::string node = record.node_name();
  if (MustUncordon(record)) {
    if (absl::Status uncordoned = MakeDrainer(config_.kubernetes.drain.timeout).Uncordon(node);
        !uncordoned.ok() && !absl::IsNotFound(uncordoned)) {
      Log()->warn("undoing {} on {}: the uncordon failed: {}; trying again", record.lease_id(),
                  node, uncordoned.ToString());
      return false;
    }
  }
  if (record.step() != NodeDisruption::STEP_PENDING) {
    if (absl::Status cleared = marker_->Clear(node); !cleared.ok() && !absl::IsNotFound(cleared)) {
      Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
    }
  }
  const std::string message = absl::StrCat(
      record.message(), "; ",
      MustUncordon(record)
          ? "uncordoned"
          : (record.was_cordoned_before() ? "left cordoned, as it was before" : "was not cordoned"),
      "; lease returned, the node was not rebooted");
  absl::Status saved = hooks_.change([&](LeaseContext& context) {
    const Lease* active = context.state().FindLease(record.lease_id());
    context.txn().RemoveDisruption(record.lease_id());
    if (active == nullptr || !state::IsActive(*active)) return absl::OkStatus();
    Lease lease = *active;
    if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED && !record.returned_unrebooted()) {
      // The disruption began after all: the agent's report verifies and releases it.
      lease.set_preparing(false);
      context.txn().PutLease(lease);
      return absl::OkStatus();
    }
    lease.set_preparing(false);
    context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, message,
                    record.undo_is_failure());
    return absl::OkStatus();
  });
  if (!saved.ok()) {
    Log()->error("returning {}: {}", record.lease_id(), saved.ToString());
    return false;
  }
  Log()->warn("{} on {}: {}", record.lease_id(), node, message);
  NodeEvent(node, "TendedLeaseReturned", message, /*warning=*/true);
  return true;
}

bool DrainFlow::Cleanup(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  const std::string node = record.node_name();
  const bool touched = record.step() != NodeDisruption::STEP_PENDING &&
                       record.step() != NodeDisruption::STEP_UNCORDONED;
  const bool uncordon = touched && MustUncordon(record);
  if (uncordon) {
    if (absl::Status uncordoned = MakeDrainer(config_.kubernetes.drain.timeout).Uncordon(node);
        !uncordoned.ok() && !absl::IsNotFound(uncordoned)) {
      Log()->warn("lease {} was released; uncordoning {} failed: {}; trying again",
                  record.lease_id(), node, uncordoned.ToString());
      return false;
    }
  }
  if (touched) {
    if (absl::Status cleared = marker_->Clear(node); !cleared.ok() && !absl::IsNotFound(cleared)) {
      Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
    }
  }
  const std::string message = absl::StrCat("lease ", record.lease_id(), " was released while ",
                                           StepName(record.step()), uncordon ? "; uncordoned" : "");
  absl::Status saved = hooks_.change([&](LeaseContext& context) {
    context.txn().RemoveDisruption(record.lease_id());
    if (touched) {
      context.txn().AddEvent(tended::v1::EVENT_TYPE_KUBERNETES_STEP,
                             context.state().FindLease(record.lease_id()), node, message);
    }
    return absl::OkStatus();
  });
  if (!saved.ok()) Log()->error("forgetting {}: {}", record.lease_id(), saved.ToString());
  if (touched) NodeEvent(node, "TendedUncordon", message);
  return true;
}

}  // namespace tended::coordinator
