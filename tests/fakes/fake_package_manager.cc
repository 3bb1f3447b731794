#include "tests/fakes/fake_package_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tended::testing {

std::vector<std::string> FakePackageManager::Describe(const agent::apt::UpgradePlan& plan) {
  std::vector<std::string> lines;
  for (const agent::apt::PackageUpgrade& u : plan.upgrades) {
    lines.push_back(absl::StrCat(u.package, "=", u.from, "->", u.to));
  }
  return lines;
}

absl::Status FakePackageManager::Update() {
  ++updates;
  if (update_error.ok() && on_update) on_update(*this);
  return update_error;
}

absl::StatusOr<agent::apt::UpgradePlan> FakePackageManager::Plan() {
  ++plans;
  if (!plan_error.ok()) return plan_error;
  return plan;
}

absl::StatusOr<agent::apt::ApplyResult> FakePackageManager::Apply(
    const agent::apt::UpgradePlan& requested, const agent::apt::ProgressCallback& progress) {
  applied.push_back(requested);
  if (on_apply) return on_apply(requested);
  agent::apt::ApplyResult result;
  result.installed = requested.upgrades;
  return result;
}

absl::StatusOr<agent::apt::ApplyResult> FakePackageManager::InstallPinned(
    const std::vector<agent::apt::PinnedVersion>& packages, const agent::apt::ProgressCallback&) {
  pinned.push_back(packages);
  if (!install_pinned_error.ok()) {
    absl::Status error = install_pinned_error;
    install_pinned_error = absl::OkStatus();
    return error;
  }
  for (const agent::apt::PinnedVersion& pin : packages) {
    auto offered = available_versions.find(pin.package);
    if (offered != available_versions.end() &&
        std::find(offered->second.begin(), offered->second.end(), pin.version) ==
            offered->second.end()) {
      return absl::NotFoundError(
          absl::StrCat("the lists offer no ", pin.package, " ", pin.version));
    }
  }
  agent::apt::ApplyResult result;
  for (const agent::apt::PinnedVersion& pin : packages) {
    std::string& now = installed[pin.package];
    if (now == pin.version) continue;
    result.installed.push_back({pin.package, now, pin.version, "fake"});
    now = pin.version;
  }
  return result;
}

absl::StatusOr<bool> FakePackageManager::RepairInterruptedDpkg(
    const agent::apt::ProgressCallback&) {
  ++repairs;
  const bool was = dpkg_interrupted;
  dpkg_interrupted = false;
  return was;
}

absl::Status FakePackageManager::Hold(const std::vector<std::string>& packages) {
  holds.insert(packages.begin(), packages.end());
  return absl::OkStatus();
}

absl::Status FakePackageManager::Unhold(const std::vector<std::string>& packages) {
  for (const std::string& package : packages) holds.erase(package);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakePackageManager::Holds() {
  return std::vector<std::string>(holds.begin(), holds.end());
}

absl::StatusOr<agent::apt::RebootRequirement> FakePackageManager::RebootRequired() {
  return agent::apt::RebootRequirement();
}

absl::StatusOr<std::vector<std::string>> FakePackageManager::AvailableVersions(
    const std::string& package) {
  available_versions_asked.push_back(package);
  if (!available_versions_error.ok()) return available_versions_error;
  auto it = available_versions.find(package);
  if (it == available_versions.end()) return std::vector<std::string>();
  return it->second;
}

}  // namespace tended::testing
