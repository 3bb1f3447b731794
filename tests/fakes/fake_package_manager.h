// A PackageManager with no apt behind it, for the Agent's unit tests: Plan() returns what
// the test set, Apply() records the plan it was given and, unless the test says otherwise,
// installs exactly its upgrades. Thread-compatible (the agent runs apt work inline in
// tests: Dependencies::apt_in_background = false).
#ifndef TENDED_TESTS_FAKES_FAKE_PACKAGE_MANAGER_H_
#define TENDED_TESTS_FAKES_FAKE_PACKAGE_MANAGER_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/apt/package_manager.h"

namespace tended::testing {

class FakePackageManager final : public agent::apt::PackageManager {
 public:
  // What Plan() answers: `plan`, or `plan_error` when set.
  agent::apt::UpgradePlan plan;
  absl::Status plan_error;
  // Every plan Apply() was given, in order.
  std::vector<agent::apt::UpgradePlan> applied;
  // Runs inside Apply() (after recording the plan) and gives its result; null: everything
  // requested is installed and no reboot is required.
  std::function<absl::StatusOr<agent::apt::ApplyResult>(const agent::apt::UpgradePlan&)> on_apply;
  // RepairInterruptedDpkg() answers this (and counts).
  bool dpkg_interrupted = false;
  int repairs = 0;
  int updates = 0;
  // What Update() answers (after counting).
  absl::Status update_error;
  // Runs inside a successful Update(), e.g. to offer what a switched source offers.
  std::function<void(FakePackageManager&)> on_update;
  int plans = 0;
  // What AvailableVersions() answers per package (an unknown one: empty), or this error.
  std::map<std::string, std::vector<std::string>> available_versions;
  absl::Status available_versions_error;
  // Every package AvailableVersions() was asked about, in order.
  std::vector<std::string> available_versions_asked;

  // What InstallPinned() works on: package -> installed version (absent: not installed),
  // and the held packages. InstallPinned() refuses a version AvailableVersions() does not
  // list (when it lists the package), installs the rest, and records each call.
  std::map<std::string, std::string> installed;
  std::set<std::string> holds;
  std::vector<std::vector<agent::apt::PinnedVersion>> pinned;
  // InstallPinned() answers this error (once, then it is cleared) instead of installing.
  absl::Status install_pinned_error;

  // "name=from->to" for each upgrade, for readable expectations.
  static std::vector<std::string> Describe(const agent::apt::UpgradePlan& plan);

  absl::Status Update() override;
  absl::StatusOr<agent::apt::UpgradePlan> Plan() override;
  absl::StatusOr<agent::apt::ApplyResult> Apply(
      const agent::apt::UpgradePlan& plan, const agent::apt::ProgressCallback& progress) override;
  absl::StatusOr<agent::apt::ApplyResult> InstallPinned(
      const std::vector<agent::apt::PinnedVersion>& packages,
      const agent::apt::ProgressCallback& progress) override;
  absl::StatusOr<bool> RepairInterruptedDpkg(const agent::apt::ProgressCallback& progress) override;
  absl::Status Hold(const std::vector<std::string>& packages) override;
  absl::Status Unhold(const std::vector<std::string>& packages) override;
  absl::StatusOr<std::vector<std::string>> Holds() override;
  absl::StatusOr<agent::apt::RebootRequirement> RebootRequired() override;
  absl::StatusOr<std::vector<std::string>> AvailableVersions(const std::string& package) override;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_PACKAGE_MANAGER_H_
