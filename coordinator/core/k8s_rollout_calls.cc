// OperatorService's Kubernetes rollout calls: start (or dry-run), get, list, cancel. The
// rollout itself is run by the K8S_UPGRADE lifecycle (leases/k8s_upgrade_lifecycle.h) in
// every change while it is active.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/kube_version.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/request_limits.h"
#include "coordinator/gates/evaluate.h"

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

}  // namespace

absl::StatusOr<tended::v1::StartK8sRolloutResponse> Coordinator::StartK8sRollout(
    const tended::v1::StartK8sRolloutRequest& request) {
  RETURN_IF_ERROR(ValidateStart(request));
  tended::v1::StartK8sRolloutResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const absl::Time now = context.now();
    const std::vector<GateOutcome> gates =
        EvaluateFleetGates(tended::v1::LEASE_KIND_K8S_UPGRADE, CollectGateFacts(now), config_, now);
    absl::StatusOr<tended::v1::K8sRollout> started = k8s_lifecycle()->Start(
        context, request, absl::StrCat("operator: ", request.reason()), gates);
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
