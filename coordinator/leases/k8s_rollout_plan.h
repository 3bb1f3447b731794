// What a Kubernetes rollout does, decided from the coordinator's state without changing it:
// the order of its nodes (control planes first, the first of them applies; then workers in
// the configured order), the typed steps of each node's leases (a control plane's first
// lease runs kubeadm before any drain, its second is drained for the kubelet; a worker's one
// lease is drained), the preflight and postflight checks, and a dry run's description.
#ifndef TENDED_COORDINATOR_LEASES_K8S_ROLLOUT_PLAN_H_
#define TENDED_COORDINATOR_LEASES_K8S_ROLLOUT_PLAN_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kube_version.h"
#include "coordinator/alerts/deprecated_api_source.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate.h"
#include "coordinator/gates/gate_facts.h"
#include "coordinator/state/fleet_state.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::coordinator {

// Leases one node of `role` takes in a rollout.
int K8sLeaseCount(tended::v1::K8sNodeRole role);
// Whether `rollout` runs `stage` (no stages listed: all of them).
bool K8sStageSelected(const tended::v1::K8sRollout& rollout, tended::v1::K8sRolloutStage stage);
// The stage a node's kubeadm and kubelet steps belong to.
tended::v1::K8sRolloutStage K8sNodeStage(tended::v1::K8sNodeRole role);
// The stage a step runs in on a node of `role`.
tended::v1::K8sRolloutStage K8sStepStage(tended::v1::K8sStepKind step,
                                         tended::v1::K8sNodeRole role);
std::string K8sStageName(tended::v1::K8sRolloutStage stage);
std::string K8sRolloutStateName(tended::v1::K8sRolloutState state);
std::string K8sNodeProgressName(tended::v1::K8sNodeProgress progress);

// Every known node in rollout order, PENDING. Fails when no node reported a control plane.
absl::StatusOr<std::vector<tended::v1::K8sRolloutNode>> OrderK8sRolloutNodes(
    const state::FleetState& state, const LeasePolicy& policy);

// The version the cluster runs: the first control plane's kubelet (its Debian package).
absl::StatusOr<KubeVersion> RunningK8sVersion(const state::FleetState& state,
                                              const std::vector<tended::v1::K8sRolloutNode>& nodes);

// The containerd version control planes older than it are brought to: the newest the
// workers run; empty when no worker reports one.
std::string WorkersContainerdVersion(const state::FleetState& state,
                                     const std::vector<tended::v1::K8sRolloutNode>& nodes);

// The work of `node`'s next lease (its leases_done-th); no steps when it has none left.
tended::v1::K8sUpgradeWork K8sWorkFor(const tended::v1::K8sRollout& rollout,
                                      const tended::v1::K8sRolloutNode& node,
                                      const state::FleetState& state);

// Whether `node` already runs the target (kubeadm, kubelet and kubectl packages).
bool K8sNodeAtTarget(const state::FleetState& state, const std::string& node,
                     const KubeVersion& target);

// Preflight: fleet gates (halt, health, alerts, soak, Kubernetes readiness; the window and
// concurrency are left to each lease), every node's Kubernetes facts, the skew policy, the
// target in the first control plane's repository, and for a minor rollout the deprecated
// APIs still in use (`deprecated_apis`, null when no source is configured).
std::vector<tended::v1::PreflightCheck> K8sPreflight(const tended::v1::K8sRollout& rollout,
                                                     const state::FleetState& state,
                                                     const std::vector<GateOutcome>& fleet_gates,
                                                     const KubeVersion& target,
                                                     const DeprecatedApiReading* deprecated_apis);

// The "deprecated_apis" check of a minor rollout to `target`: fails naming every API still
// requested (value 1) whose removed_release is at or below the target's minor, and fails
// when the reading failed or a removed_release is unreadable (fail closed). `reading` null
// (no Prometheus configured): passes, saying the check was skipped.
tended::v1::PreflightCheck DeprecatedApiCheck(const DeprecatedApiReading* reading,
                                              const KubeVersion& target);

// Postflight: every node in the rollout at the target (agent and Kubernetes), alerts clean,
// the pod-ready ratio at least the policy's.
std::vector<tended::v1::PreflightCheck> K8sPostflight(const tended::v1::K8sRollout& rollout,
                                                      const state::FleetState& state,
                                                      const GateFacts& facts,
                                                      const CoordinatorConfig& config,
                                                      absl::Time now);

bool AllChecksPass(const std::vector<tended::v1::PreflightCheck>& checks);
// "name: reason; name: reason" of the failed checks.
std::string DescribeFailedChecks(const std::vector<tended::v1::PreflightCheck>& checks);

// What the node's report does not show yet after the steps of `lease` (kubeadm, kubelet,
// kubectl or containerd not at the version its steps installed); empty when verified.
std::vector<std::string> K8sPackageWaits(const tended::v1::Lease& lease,
                                         const tended::v1::NodeFacts& facts);

// A dry run's plan: one line per lease, in order, with its steps and whether it drains.
std::vector<std::string> DescribeK8sPlan(const tended::v1::K8sRollout& rollout,
                                         const state::FleetState& state);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_K8S_ROLLOUT_PLAN_H_
