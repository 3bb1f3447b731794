// A PackageManager that lets one call at a time through to the one it wraps. The agent's
// OS upgrade worker, its Kubernetes steps and its version check all use the one engine, from
// different threads; apt and dpkg must never see two of them at once.
#ifndef TENDED_AGENT_APT_SERIALIZED_PACKAGE_MANAGER_H_
#define TENDED_AGENT_APT_SERIALIZED_PACKAGE_MANAGER_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

class SerializedPackageManager final : public PackageManager {
 public:
  // `inner` must outlive this.
  explicit SerializedPackageManager(PackageManager* inner) : inner_(inner) {}

  absl::Status Update() override;
  absl::StatusOr<UpgradePlan> Plan() override;
  absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan,
                                    const ProgressCallback& progress) override;
  absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                            const ProgressCallback& progress) override;
  absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress) override;
  absl::Status Hold(const std::vector<std::string>& packages) override;
  absl::Status Unhold(const std::vector<std::string>& packages) override;
  absl::StatusOr<std::vector<std::string>> Holds() override;
  absl::StatusOr<RebootRequirement> RebootRequired() override;
  absl::StatusOr<std::vector<std::string>> AvailableVersions(const std::string& package) override;

 private:
  PackageManager* const inner_;
  absl::Mutex mutex_;
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_SERIALIZED_PACKAGE_MANAGER_H_
