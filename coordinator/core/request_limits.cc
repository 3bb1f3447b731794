#include "coordinator/core/request_limits.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/node_name.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

using L = RequestLimits;

absl::Status Text(absl::string_view field, const std::string& value, size_t limit) {
  if (value.size() > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", limit, " bytes (got ", value.size(), ")"));
  }
  return absl::OkStatus();
}

template <typename List>
absl::Status Count(absl::string_view field, const List& list, int limit) {
  if (list.size() > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", limit, " entries (got ", list.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status Required(absl::string_view field, const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  return absl::OkStatus();
}

absl::Status InstanceId(const std::string& id) {
  RETURN_IF_ERROR(Required("agent_instance_id", id));
  RETURN_IF_ERROR(Text("agent_instance_id", id, L::kInstanceId));
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return absl::InvalidArgumentError(
          "agent_instance_id: letters, digits and '-' only (the agent's <state_dir>/agent-id)");
    }
  }
  return absl::OkStatus();
}

absl::Status LeaseRef(const std::string& lease_id, uint64_t token, const std::string& instance) {
  RETURN_IF_ERROR(ValidateLeaseId("lease_id", lease_id));
  if (token == 0) return absl::InvalidArgumentError("fencing_token: required (never 0)");
  return InstanceId(instance);
}

template <typename Packages>
absl::Status PackageList(absl::string_view field, const Packages& packages) {
  RETURN_IF_ERROR(Count(field, packages, L::kPackages));
  for (const auto& package : packages) {
    RETURN_IF_ERROR(Text(absl::StrCat(field, ".name"), package.name(), L::kShortText));
  }
  return absl::OkStatus();
}

absl::Status Changes(absl::string_view field,
                     const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& list) {
  RETURN_IF_ERROR(PackageList(field, list));
  for (const auto& change : list) {
    RETURN_IF_ERROR(
        Text(absl::StrCat(field, ".from_version"), change.from_version(), L::kShortText));
    RETURN_IF_ERROR(Text(absl::StrCat(field, ".to_version"), change.to_version(), L::kShortText));
  }
  return absl::OkStatus();
}

absl::Status Step(absl::string_view field, const tended::v1::StepReport& report) {
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".lease_id"), report.lease_id(), L::kLeaseId));
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".step"), report.step(), L::kShortText));
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".message"), report.message(), L::kMessage));
  if (!tended::v1::K8sStepKind_IsValid(report.k8s_step())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".k8s_step: not a known step"));
  }
  const tended::v1::EtcdSnapshotRecord& snapshot = report.snapshot();
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".snapshot.path"), snapshot.path(), L::kMessage));
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".snapshot.sha256"), snapshot.sha256(), 64));
  RETURN_IF_ERROR(
      Text(absl::StrCat(field, ".snapshot.etcd_version"), snapshot.etcd_version(), L::kShortText));
  RETURN_IF_ERROR(Text(absl::StrCat(field, ".snapshot.node_name"), snapshot.node_name(), 253));
  return Changes(absl::StrCat(field, ".packages"), report.packages());
}

absl::Status K8sFacts(const tended::v1::K8sNodeFacts& k8s) {
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string*>{"kubeadm_version", &k8s.kubeadm_version()},
        {"kubelet_version", &k8s.kubelet_version()},
        {"kubectl_version", &k8s.kubectl_version()},
        {"containerd_version", &k8s.containerd_version()},
        {"next_minor", &k8s.next_minor()}}) {
    RETURN_IF_ERROR(Text(absl::StrCat("facts.k8s.", field), *value, L::kShortText));
  }
  RETURN_IF_ERROR(Text("facts.k8s.check_error", k8s.check_error(), L::kMessage));
  RETURN_IF_ERROR(Count("facts.k8s.kubeadm_candidates", k8s.kubeadm_candidates(), 200));
  for (const std::string& candidate : k8s.kubeadm_candidates()) {
    RETURN_IF_ERROR(Text("facts.k8s.kubeadm_candidates", candidate, L::kShortText));
  }
  const tended::v1::EtcdSnapshotRecord& snapshot = k8s.last_snapshot();
  RETURN_IF_ERROR(Text("facts.k8s.last_snapshot.path", snapshot.path(), L::kMessage));
  RETURN_IF_ERROR(Text("facts.k8s.last_snapshot.sha256", snapshot.sha256(), 64));
  return Text("facts.k8s.last_snapshot.etcd_version", snapshot.etcd_version(), L::kShortText);
}

absl::Status LeaseClaim(const tended::v1::Lease& lease) {
  RETURN_IF_ERROR(Text("held_lease.id", lease.id(), L::kLeaseId));
  RETURN_IF_ERROR(Text("held_lease.node_name", lease.node_name(), 253));
  RETURN_IF_ERROR(Text("held_lease.boot_id_at_grant", lease.boot_id_at_grant(), L::kShortText));
  RETURN_IF_ERROR(Text("held_lease.reason", lease.reason(), L::kReason));
  RETURN_IF_ERROR(Text("held_lease.status_message", lease.status_message(), L::kMessage));
  RETURN_IF_ERROR(Text("held_lease.agent_instance_id", lease.agent_instance_id(), L::kInstanceId));
  RETURN_IF_ERROR(
      Text("held_lease.begin_blocked_reason", lease.begin_blocked_reason(), L::kMessage));
  RETURN_IF_ERROR(Count("held_lease.k8s_work.steps", lease.k8s_work().steps(), 16));
  RETURN_IF_ERROR(Count("held_lease.k8s_steps_done", lease.k8s_steps_done(), 16));
  RETURN_IF_ERROR(
      Text("held_lease.k8s_work.rollout_id", lease.k8s_work().rollout_id(), L::kShortText));
  return Changes("held_lease.approved_packages", lease.approved_packages());
}

}  // namespace

absl::Status ValidateNodeName(absl::string_view field, absl::string_view name) {
  if (!IsDns1123Subdomain(name)) {
    std::string shown(name.substr(0, 64));
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ": must be a node name (lowercase letters, digits, '-' and '.', at most 253 "
                     "characters), got \"",
                     shown, name.size() > 64 ? "...\"" : "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateLeaseId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (id.size() > L::kLeaseId) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", L::kLeaseId, " bytes (got ", id.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateKind(absl::string_view field, tended::v1::LeaseKind kind) {
  if (kind == tended::v1::LEASE_KIND_UNSPECIFIED || !tended::v1::LeaseKind_IsValid(kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be LEASE_KIND_REBOOT, LEASE_KIND_OS_UPGRADE or LEASE_KIND_K8S_UPGRADE"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOperatorReason(const std::string& reason) {
  if (absl::StripAsciiWhitespace(reason).empty()) {
    return absl::InvalidArgumentError("reason: required; it is recorded in the event log");
  }
  return Text("reason", reason, L::kReason);
}

absl::Status ValidateReportFacts(const tended::v1::ReportFactsRequest& request) {
  const tended::v1::NodeFacts& facts = request.facts();
  RETURN_IF_ERROR(ValidateNodeName("facts.node_name", facts.node_name()));
  RETURN_IF_ERROR(Required("facts.boot_id", facts.boot_id()));
  RETURN_IF_ERROR(Text("facts.boot_id", facts.boot_id(), L::kShortText));
  RETURN_IF_ERROR(InstanceId(request.agent_instance_id()));
  RETURN_IF_ERROR(Text("facts.kernel_release", facts.kernel_release(), L::kShortText));
  RETURN_IF_ERROR(Text("facts.kubelet_version", facts.kubelet_version(), L::kShortText));
  RETURN_IF_ERROR(Text("facts.agent_version", facts.agent_version(), L::kShortText));
  RETURN_IF_ERROR(
      Count("facts.reboot_required_reasons", facts.reboot_required_reasons(), L::kRebootReasons));
  for (const std::string& reason : facts.reboot_required_reasons()) {
    RETURN_IF_ERROR(Text("facts.reboot_required_reasons", reason, L::kShortText));
  }
  RETURN_IF_ERROR(PackageList("facts.package_versions", facts.package_versions()));
  for (const auto& version : facts.package_versions()) {
    RETURN_IF_ERROR(Text("facts.package_versions.version", version.version(), L::kShortText));
  }
  const tended::v1::OsUpgradeFacts& os = facts.os_upgrade();
  RETURN_IF_ERROR(Text("facts.os_upgrade.plan_digest", os.plan_digest(), L::kShortText));
  RETURN_IF_ERROR(Text("facts.os_upgrade.plan_error", os.plan_error(), L::kMessage));
  RETURN_IF_ERROR(
      Count("facts.os_upgrade.planned_upgrades", os.planned_upgrades(), L::kPlannedUpgrades));
  for (const auto& version : os.planned_upgrades()) {
    RETURN_IF_ERROR(Text("facts.os_upgrade.planned_upgrades.name", version.name(), L::kShortText));
    RETURN_IF_ERROR(
        Text("facts.os_upgrade.planned_upgrades.version", version.version(), L::kShortText));
  }
  RETURN_IF_ERROR(Step("facts.os_upgrade.last_step", os.last_step()));
  RETURN_IF_ERROR(K8sFacts(facts.k8s()));
  RETURN_IF_ERROR(LeaseClaim(request.held_lease()));
  return Text("coordinator_state_id", request.coordinator_state_id(), L::kInstanceId);
}

absl::Status ValidateAcquireLease(const tended::v1::AcquireLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateNodeName("node_name", request.node_name()));
  RETURN_IF_ERROR(ValidateKind("kind", request.kind()));
  RETURN_IF_ERROR(Text("reason", request.reason(), L::kReason));
  return InstanceId(request.agent_instance_id());
}

absl::Status ValidateRenewLease(const tended::v1::RenewLeaseRequest& request) {
  return LeaseRef(request.lease_id(), request.fencing_token(), request.agent_instance_id());
}

absl::Status ValidateBeginDisruption(const tended::v1::BeginDisruptionRequest& request) {
  RETURN_IF_ERROR(
      LeaseRef(request.lease_id(), request.fencing_token(), request.agent_instance_id()));
  RETURN_IF_ERROR(Required("step", request.step()));
  RETURN_IF_ERROR(Text("step", request.step(), L::kShortText));
  return Changes("packages", request.packages());
}

absl::Status ValidateReleaseLease(const tended::v1::ReleaseLeaseRequest& request) {
  RETURN_IF_ERROR(
      LeaseRef(request.lease_id(), request.fencing_token(), request.agent_instance_id()));
  return Text("reason", request.reason(), L::kReason);
}

absl::Status ValidateCancelLeaseRequest(const tended::v1::CancelLeaseRequestRequest& request) {
  RETURN_IF_ERROR(ValidateNodeName("node_name", request.node_name()));
  RETURN_IF_ERROR(ValidateKind("kind", request.kind()));
  return InstanceId(request.agent_instance_id());
}

absl::Status ValidateReportStep(const tended::v1::ReportStepRequest& request) {
  RETURN_IF_ERROR(
      LeaseRef(request.lease_id(), request.fencing_token(), request.agent_instance_id()));
  const tended::v1::StepReport& report = request.report();
  RETURN_IF_ERROR(Required("report.step", report.step()));
  if (report.state() == tended::v1::STEP_STATE_UNSPECIFIED ||
      !tended::v1::StepState_IsValid(report.state())) {
    return absl::InvalidArgumentError(
        "report.state: must be STEP_STATE_RUNNING, _SUCCEEDED, _FAILED or _INTERRUPTED");
  }
  if (!report.lease_id().empty() && report.lease_id() != request.lease_id()) {
    return absl::InvalidArgumentError("report.lease_id: differs from lease_id");
  }
  if (report.percent() > 100) return absl::InvalidArgumentError("report.percent: at most 100");
  return Step("report", report);
}

absl::Status ValidateWatchDirectives(const tended::v1::WatchDirectivesRequest& request) {
  RETURN_IF_ERROR(ValidateNodeName("node_name", request.node_name()));
  return InstanceId(request.agent_instance_id());
}

}  // namespace tended::coordinator
