// Internal to the apt engine: what changes the node. Apply and InstallPinned mark their
// change set on a fresh cache (planner.h), then download it verified, run dpkg under the
// lock keeping the admin's conffiles, hold again what was held, and record whether a reboot
// is now required. Also the repair of an interrupted dpkg and the dpkg selections (holds).
#ifndef TENDED_AGENT_APT_ENGINE_INSTALLER_H_
#define TENDED_AGENT_APT_ENGINE_INSTALLER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/apt/engine/apt_system.h"
#include "agent/apt/engine/planner.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/upgrade_policy.h"

namespace tended::agent::apt {

class Installer {
 public:
  // Both must outlive the installer.
  Installer(AptSystem& system, const UpgradePolicy& policy) : system_(system), policy_(policy) {}

  // PackageManager::Apply: exactly the plan's upgrades that are still valid, nothing else.
  absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan, const ProgressCallback& progress);
  // PackageManager::InstallPinned.
  absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                            const ProgressCallback& progress);
  // PackageManager::RepairInterruptedDpkg.
  absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress);
  // dpkg --set-selections: `state` ("hold" or "install") for every package.
  absl::Status SetSelections(const std::vector<std::string>& packages, const std::string& state);

 private:
  // What Apply and InstallPinned mark on the planner's fresh cache: fills `installed` (and
  // `skipped`) and leaves exactly that change set marked. An error stops before any change.
  using MarkChanges = std::function<absl::Status(Planner&, ApplyResult&)>;

  // Repair, lock, mark, verified download, DoInstall, re-hold and reboot detection.
  absl::StatusOr<ApplyResult> Install(const MarkChanges& mark, absl::string_view what,
                                      const ProgressCallback& progress);
  // Sets the holds in `wanted` that dpkg dropped (of installed packages); returns them.
  absl::StatusOr<std::vector<std::string>> Rehold(const std::vector<std::string>& wanted,
                                                  const ProgressCallback& progress);

  AptSystem& system_;
  const UpgradePolicy& policy_;
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_INSTALLER_H_
