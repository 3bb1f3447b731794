#include "tests/fakes/fake_package_manager.h"

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
    const std::vector<agent::apt::PinnedVersion>&, const agent::apt::ProgressCallback&) {
  return absl::UnimplementedError("the fake package manager installs no pinned versions");
}

absl::StatusOr<bool> FakePackageManager::RepairInterruptedDpkg(
    const agent::apt::ProgressCallback&) {
  ++repairs;
  const bool was = dpkg_interrupted;
  dpkg_interrupted = false;
  return was;
}

absl::Status FakePackageManager::Hold(const std::vector<std::string>&) { return absl::OkStatus(); }

absl::Status FakePackageManager::Unhold(const std::vector<std::string>&) {
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakePackageManager::Holds() {
  return std::vector<std::string>();
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
