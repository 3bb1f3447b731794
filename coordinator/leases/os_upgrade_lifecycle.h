// The OS_UPGRADE lease and its canary-first rollout. Granted to the canary first, then to
// nodes whose planned upgrades the canary installed and verified (gates/canary_gate.h).
// BeginDisruption("dpkg") names the exact packages and versions the step installs; a
// version the canary has not vetted is refused and the lease returned, so a plan refreshed
// after the grant cannot install anything new. The agent reports the step's result
// (ReportStep); installing anything it did not name, a failure, or an unhealthy canary
// stops the rollout until an operator resumes it. A successful step is verified once the
// node reports after it and no alert fires; the canary's installed versions are then
// vetted for the others.
#ifndef TENDED_COORDINATOR_LEASES_OS_UPGRADE_LIFECYCLE_H_
#define TENDED_COORDINATOR_LEASES_OS_UPGRADE_LIFECYCLE_H_

#include <string>
#include <vector>

#include "coordinator/gates/canary_gate.h"
#include "coordinator/leases/lifecycle.h"

namespace tended::coordinator {

class OsUpgradeLifecycle final : public LeaseLifecycle {
 public:
  explicit OsUpgradeLifecycle(const CoordinatorConfig& config);

  tended::v1::LeaseKind kind() const override { return tended::v1::LEASE_KIND_OS_UPGRADE; }
  void AppendKindGates(const state::FleetState& state, const std::vector<std::string>& waiting,
                       absl::Time now, std::vector<GateOutcome>& outcomes) const override;
  std::vector<GateOutcome> NodeGates(const state::FleetState& state, const std::string& node,
                                     absl::Time now) const override;
  absl::Status OnBegin(LeaseContext& context, tended::v1::Lease& lease,
                       const tended::v1::BeginDisruptionRequest& request) override;
  void OnFacts(LeaseContext& context, const tended::v1::Lease& lease,
               const state::NodeEntry& node) override;
  absl::StatusOr<tended::v1::Lease> OnStepReport(
      LeaseContext& context, const tended::v1::Lease& lease,
      const tended::v1::ReportStepRequest& request) override;

  // Clears a stopped rollout (an operator's ResumeRollout); the stop that was cleared.
  static tended::v1::RolloutStop Resume(LeaseContext& context, const std::string& reason);

 private:
  OsRolloutFacts Facts(const state::FleetState& state,
                       const std::vector<std::string>& nodes) const;
  bool IsCanary(const std::string& node) const { return !canary_.empty() && node == canary_; }
  void Stop(LeaseContext& context, const std::string& node, const std::string& reason);

  const CoordinatorConfig& config_;
  std::string canary_;
  absl::Duration canary_soak_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_OS_UPGRADE_LIFECYCLE_H_
