// The K8S_UPGRADE lease and the Kubernetes rollout that asks for it. A rollout
// (tended.v1.K8sRollout, kept in the state) goes node by node in the plan's order
// (k8s_rollout_plan.h): for the node whose turn it is the coordinator queues a lease request
// itself; the granter grants it through the same gates as a reboot; the grant carries the
// lease's typed steps (K8sUpgradeWork). The agent begins each step with BeginDisruption
// naming it (the gates are checked again before every step, so a halt stops the next one)
// and reports it with ReportStep. A failed step stops the rollout and keeps the lease held
// (the node stays cordoned when it was drained) for an operator. After the last step the
// node is verified (its packages at the target, Kubernetes' kubeletVersion when drained, no
// alert) and the lease released; a worker then soaks before the next node. Cancel stops at
// the next safe point: a lease not begun is given back, one in flight finishes its node.
// Everything is derived again from the state at each change, so a restart resumes.
#ifndef TENDED_COORDINATOR_LEASES_K8S_UPGRADE_LIFECYCLE_H_
#define TENDED_COORDINATOR_LEASES_K8S_UPGRADE_LIFECYCLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/alerts/deprecated_api_source.h"
#include "coordinator/gates/gate_facts.h"
#include "coordinator/leases/drain_flow.h"
#include "coordinator/leases/lifecycle.h"
#include "tended/v1/k8s_upgrade.pb.h"
#include "tended/v1/operator_service.pb.h"

namespace tended::coordinator {

// A lease request the rollout queues gives up after the lease came back this many times
// without its steps done (a drain that kept failing).
inline constexpr uint32_t kK8sMaxReturns = 3;

class K8sUpgradeLifecycle final : public LeaseLifecycle {
 public:
  // `flow` may be null (no Kubernetes): drained leases are then verified by the agent's
  // report alone.
  K8sUpgradeLifecycle(const CoordinatorConfig& config, DrainFlow* flow)
      : config_(config), flow_(flow) {}

  tended::v1::LeaseKind kind() const override { return tended::v1::LEASE_KIND_K8S_UPGRADE; }
  std::vector<GateOutcome> NodeGates(const state::FleetState& state, const std::string& node,
                                     absl::Time now) const override;
  void OnGranted(LeaseContext& context, tended::v1::Lease& lease) override;
  absl::Status OnBegin(LeaseContext& context, tended::v1::Lease& lease,
                       const tended::v1::BeginDisruptionRequest& request) override;
  void OnFacts(LeaseContext& context, const tended::v1::Lease& lease,
               const state::NodeEntry& node) override;
  absl::StatusOr<tended::v1::Lease> OnStepReport(
      LeaseContext& context, const tended::v1::Lease& lease,
      const tended::v1::ReportStepRequest& request) override;
  absl::StatusOr<tended::v1::Lease> OnReturn(LeaseContext& context, const tended::v1::Lease& lease,
                                             const std::string& reason) override;
  void Abandon(LeaseContext& context, const tended::v1::Lease& lease,
               const std::string& reason) override;
  void OnForceReleased(LeaseContext& context, const tended::v1::Lease& lease) override;
  void OnAdopted(LeaseContext& context, tended::v1::Lease& lease) override;

  // Operator calls, inside a change. `fleet_gates` is the fleet's gate evaluation for this
  // kind now (preflight reads it), `facts` what the gates read. `deprecated_apis` is what
  // the deprecated-API source answered before the change began (a minor rollout's
  // preflight reads it); null when no source is configured.
  absl::StatusOr<tended::v1::K8sRollout> Start(LeaseContext& context,
                                               const tended::v1::StartK8sRolloutRequest& request,
                                               const std::string& started_by,
                                               const std::vector<GateOutcome>& fleet_gates,
                                               const DeprecatedApiReading* deprecated_apis);
  absl::StatusOr<tended::v1::K8sRollout> Cancel(LeaseContext& context,
                                                const std::string& rollout_id,
                                                const std::string& reason);

  // Moves the active rollout on by what the state says now: queues the next node's lease
  // request, notes grants and releases, ends soaks, runs postflight. Called in every change
  // while a rollout is active, before the granter.
  void Advance(LeaseContext& context, const GateFacts& facts);

 private:
  // The active rollout `lease` works for, or null.
  const tended::v1::K8sRollout* RolloutOf(const state::FleetState& state,
                                          const tended::v1::Lease& lease) const;
  void Fail(LeaseContext& context, tended::v1::K8sRollout& rollout, const std::string& node,
            const std::string& why);
  void Save(LeaseContext& context, tended::v1::K8sRollout& rollout, const std::string& event);
  bool FlowOwns(const LeaseContext& context, const tended::v1::Lease& lease) const;

  const CoordinatorConfig& config_;
  DrainFlow* flow_;
};

// The next step of `lease` (the first of its work not done); null when all are done.
const tended::v1::K8sStep* NextK8sStep(const tended::v1::Lease& lease);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_K8S_UPGRADE_LIFECYCLE_H_
