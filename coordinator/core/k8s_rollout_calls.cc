// OperatorService's Kubernetes rollout calls: start (or dry-run), get, list, cancel. The
// rollout itself is run by the K8S_UPGRADE lifecycle (leases/k8s_upgrade_lifecycle.h) in
// every change while it is active.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/kube_version.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/request_limits.h"
#include "coordinator/gates/evaluate.h"
#include "coordinator/leases/k8s_detection.h"
#include "coordinator/leases/k8s_rollout_plan.h"

namespace tended::coordinator {
namespace {

absl::Status ValidateStart(const tended::v1::StartK8sRolloutRequest& request) {
  if (absl::StatusOr<KubeVersion> target = ParseTargetVersion(request.target_version());
      !target.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("target_version: ", target.status().message()));
  }
  if (request.kind() != tended::v1::K8S_UPGRADE_KIND_PATCH &&
      request.kind() != tended::v1::K8S_UPGRADE_KIND_MINOR) {
    return absl::InvalidArgumentError(
        "kind: must be K8S_UPGRADE_KIND_PATCH or K8S_UPGRADE_KIND_MINOR");
  }
  if (request.stages_size() > 16) {
    return absl::InvalidArgumentError("stages: at most 16 entries");
  }
  for (int stage : request.stages()) {
    if (stage == tended::v1::K8S_ROLLOUT_STAGE_UNSPECIFIED ||
        !tended::v1::K8sRolloutStage_IsValid(stage)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stages: ", stage, " is not a stage (K8S_ROLLOUT_STAGE_PREFLIGHT ... _POSTFLIGHT)"));
    }
  }
  return ValidateOperatorReason(request.reason());
}

absl::Status ValidateRolloutId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("rollout_id: required");
  if (id.size() > 128) return absl::InvalidArgumentError("rollout_id: at most 128 bytes");
  return absl::OkStatus();
}

std::string Announcement(const K8sUpgradeTarget& target) {
  return absl::StrCat("Kubernetes ", target.target.ToString(), " is available (",
                      K8sUpgradeKindName(target.kind), "; the cluster runs ",
                      target.running.ToString(), "; ", target.evidence, ")");
}

}  // namespace

std::optional<DeprecatedApiReading> Coordinator::ReadDeprecatedApis(
    tended::v1::K8sUpgradeKind kind) {
  if (kind != tended::v1::K8S_UPGRADE_KIND_MINOR || options_.deprecated_apis == nullptr) {
    return std::nullopt;
  }
  return options_.deprecated_apis->Fetch();
}

void Coordinator::DetectK8sUpgrades() {
  std::optional<tended::v1::K8sUpgradeKind> start_kind;
  {
    absl::ReaderMutexLock lock(&mutex_);
    K8sDetectionPlan plan = PlanK8sDetection(*state_, config_);
    if (plan.announce.empty() && !plan.start.has_value()) return;
    if (plan.start.has_value()) start_kind = plan.start->kind;
  }
  std::optional<DeprecatedApiReading> deprecated;
  if (start_kind.has_value()) deprecated = ReadDeprecatedApis(*start_kind);
  absl::Status ran = RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // Planned again under the lock: the state may have moved while Prometheus answered.
    K8sDetectionPlan plan = PlanK8sDetection(context.state(), config_);
    tended::state::v1::K8sDetectionState detection = context.state().k8s_detection();
    const absl::Time now = context.now();
    auto entry_for = [&](const K8sUpgradeTarget& target) {
      for (auto& entry : *detection.mutable_targets()) {
        if (entry.kind() == target.kind && entry.target_version() == target.target.ToString()) {
          return &entry;
        }
      }
      tended::state::v1::K8sDetectedTarget* entry = detection.add_targets();
      entry->set_kind(target.kind);
      entry->set_target_version(target.target.ToString());
      entry->set_running_version(target.running.ToString());
      *entry->mutable_detected_time() = ToProtoTimestamp(now);
      return entry;
    };
    std::string started_what;
    // A minor needs the deprecated-API reading taken for it; otherwise the next tick starts it.
    if (plan.start.has_value() && start_kind == plan.start->kind) {
      const K8sUpgradeTarget& target = *plan.start;
      tended::v1::StartK8sRolloutRequest request;
      request.set_target_version(target.target.ToString());
      request.set_kind(target.kind);
      request.set_reason(absl::StrCat("detection: ", target.evidence));
      const std::vector<GateOutcome> gates = EvaluateFleetGates(
          tended::v1::LEASE_KIND_K8S_UPGRADE, CollectGateFacts(now), config_, now);
      absl::StatusOr<tended::v1::K8sRollout> started = k8s_lifecycle()->Start(
          context, request, "detection", gates, deprecated.has_value() ? &*deprecated : nullptr);
      tended::state::v1::K8sDetectedTarget* entry = entry_for(target);
      if (started.ok()) {
        entry->set_rollout_id(started->id());
        started_what =
            absl::StrCat("rollout ", started->id(),
                         " started by detection: ", K8sRolloutStateName(started->state()), ", ",
                         started->message());
      } else {
        entry->set_start_error(std::string(started.status().message()));
        started_what = absl::StrCat("detection could not start it: ", started.status().message());
      }
      Logger("k8s-detection")
          ->info("{} {}: {}", K8sUpgradeKindName(target.kind), target.target.ToString(),
                 started_what);
    }
    // A start of a target announced before (a minor that waited for a patch) is announced
    // with what became of it.
    if (!started_what.empty() &&
        std::none_of(plan.announce.begin(), plan.announce.end(), [&](const K8sUpgradeTarget& t) {
          return t.kind == plan.start->kind && t.target == plan.start->target;
        })) {
      context.txn().AddEvent(tended::v1::EVENT_TYPE_K8S_UPGRADE_AVAILABLE, nullptr, "",
                             absl::StrCat(Announcement(*plan.start), ": ", started_what));
    }
    for (const K8sUpgradeTarget& target : plan.announce) {
      entry_for(target);
      std::string what;
      if (plan.start.has_value() && plan.start->kind == target.kind && !started_what.empty()) {
        what = started_what;
      } else if (target.kind == tended::v1::K8S_UPGRADE_KIND_MINOR && plan.patch_pending) {
        what = "not started: the pending patch goes first";
      } else {
        what =
            absl::StrCat("not started",
                         plan.not_started.empty() ? "" : absl::StrCat(" (", plan.not_started, ")"),
                         "; to roll it out: tendedctl k8s-rollout start --kind ",
                         K8sUpgradeKindName(target.kind), " ", target.target.ToString(), " REASON");
      }
      context.txn().AddEvent(tended::v1::EVENT_TYPE_K8S_UPGRADE_AVAILABLE, nullptr, "",
                             absl::StrCat(Announcement(target), ": ", what));
    }
    while (detection.targets_size() > kK8sDetectedTargetsKept) {
      detection.mutable_targets()->DeleteSubrange(0, 1);
    }
    if (detection.SerializeAsString() != context.state().k8s_detection().SerializeAsString()) {
      context.txn().SetK8sDetection(detection);
    }
    return absl::OkStatus();
  });
  if (!ran.ok()) Logger("k8s-detection")->error("detection: {}", ran.ToString());
}

absl::StatusOr<tended::v1::StartK8sRolloutResponse> Coordinator::StartK8sRollout(
    const tended::v1::StartK8sRolloutRequest& request) {
  RETURN_IF_ERROR(ValidateStart(request));
  // Prometheus is asked before the lock is taken: a slow answer delays this call only.
  const std::optional<DeprecatedApiReading> deprecated = ReadDeprecatedApis(request.kind());
  tended::v1::StartK8sRolloutResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const absl::Time now = context.now();
    const std::vector<GateOutcome> gates =
        EvaluateFleetGates(tended::v1::LEASE_KIND_K8S_UPGRADE, CollectGateFacts(now), config_, now);
    absl::StatusOr<tended::v1::K8sRollout> started =
        k8s_lifecycle()->Start(context, request, absl::StrCat("operator: ", request.reason()),
                               gates, deprecated.has_value() ? &*deprecated : nullptr);
    if (!started.ok()) {
      refusal = started.status();
      return absl::OkStatus();
    }
    *response.mutable_rollout() = *started;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  // The first lease request went out in the same change; show the rollout as it is now.
  absl::ReaderMutexLock lock(&mutex_);
  if (const auto* now = state_->FindK8sRollout(response.rollout().id()); now != nullptr) {
    *response.mutable_rollout() = *now;
  }
  return response;
}

absl::StatusOr<tended::v1::GetK8sRolloutResponse> Coordinator::GetK8sRollout(
    const tended::v1::GetK8sRolloutRequest& request) {
  RETURN_IF_ERROR(ReadBarrier());
  absl::ReaderMutexLock lock(&mutex_);
  tended::v1::GetK8sRolloutResponse response;
  const tended::v1::K8sRollout* rollout = nullptr;
  if (request.rollout_id().empty()) {
    rollout = state_->ActiveK8sRollout();
    if (rollout == nullptr && !state_->k8s_rollouts().empty()) {
      rollout = &state_->k8s_rollouts().back();
    }
    if (rollout == nullptr) return absl::NotFoundError("no Kubernetes rollout has run yet");
  } else {
    RETURN_IF_ERROR(ValidateRolloutId(request.rollout_id()));
    rollout = state_->FindK8sRollout(request.rollout_id());
    if (rollout == nullptr) {
      return absl::NotFoundError(absl::StrCat("no Kubernetes rollout ", request.rollout_id(),
                                              " (ListK8sRollouts shows the last ",
                                              state::kK8sRolloutHistory, ")"));
    }
  }
  *response.mutable_rollout() = *rollout;
  return response;
}

absl::StatusOr<tended::v1::ListK8sRolloutsResponse> Coordinator::ListK8sRollouts(
    const tended::v1::ListK8sRolloutsRequest&) {
  RETURN_IF_ERROR(ReadBarrier());
  absl::ReaderMutexLock lock(&mutex_);
  tended::v1::ListK8sRolloutsResponse response;
  for (const auto& rollout : state_->k8s_rollouts()) *response.add_rollouts() = rollout;
  return response;
}

absl::StatusOr<tended::v1::CancelK8sRolloutResponse> Coordinator::CancelK8sRollout(
    const tended::v1::CancelK8sRolloutRequest& request) {
  RETURN_IF_ERROR(ValidateRolloutId(request.rollout_id()));
  RETURN_IF_ERROR(ValidateOperatorReason(request.reason()));
  tended::v1::CancelK8sRolloutResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    absl::StatusOr<tended::v1::K8sRollout> cancelled =
        k8s_lifecycle()->Cancel(context, request.rollout_id(), request.reason());
    if (!cancelled.ok()) {
      refusal = cancelled.status();
      return absl::OkStatus();
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  absl::ReaderMutexLock lock(&mutex_);
  if (const auto* now = state_->FindK8sRollout(request.rollout_id()); now != nullptr) {
    *response.mutable_rollout() = *now;
  }
  Logger("coordinator")
      ->info("Kubernetes rollout {}: cancel asked: {}", request.rollout_id(), request.reason());
  return response;
}

}  // namespace tended::coordinator
