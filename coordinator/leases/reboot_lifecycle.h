// The REBOOT lease: granted when the node's reboot-required sentinel asks for it, begun by
// the agent right before it reboots, verified when the node reports a new boot id and no
// longer needs a reboot, then released (the soak starts). With Kubernetes enabled the
// drain flow (drain_flow.h) cordons and drains the node between the grant and the reboot
// and checks it in Kubernetes before the release; without it the agent's report alone
// verifies.
#ifndef TENDED_COORDINATOR_LEASES_REBOOT_LIFECYCLE_H_
#define TENDED_COORDINATOR_LEASES_REBOOT_LIFECYCLE_H_

#include "coordinator/leases/drain_flow.h"
#include "coordinator/leases/lifecycle.h"

namespace tended::coordinator {

class RebootLifecycle final : public LeaseLifecycle {
 public:
  // `flow` may be null (no Kubernetes); it must outlive the lifecycle otherwise.
  explicit RebootLifecycle(DrainFlow* flow) : flow_(flow) {}

  tended::v1::LeaseKind kind() const override { return tended::v1::LEASE_KIND_REBOOT; }
  void OnGranted(LeaseContext& context, tended::v1::Lease& lease) override;
  absl::Status OnBegin(LeaseContext& context, tended::v1::Lease& lease,
                       const tended::v1::BeginDisruptionRequest& request) override;
  void OnFacts(LeaseContext& context, const tended::v1::Lease& lease,
               const state::NodeEntry& node) override;
  absl::StatusOr<tended::v1::Lease> OnReturn(LeaseContext& context, const tended::v1::Lease& lease,
                                             const std::string& reason) override;
  void Abandon(LeaseContext& context, const tended::v1::Lease& lease,
               const std::string& reason) override;
  void OnForceReleased(LeaseContext& context, const tended::v1::Lease& lease) override;
  void OnAdopted(LeaseContext& context, tended::v1::Lease& lease) override;

 private:
  bool FlowOwns(const LeaseContext& context, const tended::v1::Lease& lease) const;

  DrainFlow* flow_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_LEASES_REBOOT_LIFECYCLE_H_
