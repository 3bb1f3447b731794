#include "agent/apt/serialized_package_manager.h"

namespace tended::agent::apt {

absl::Status SerializedPackageManager::Update() {
  absl::MutexLock lock(&mutex_);
  return inner_->Update();
}

absl::StatusOr<UpgradePlan> SerializedPackageManager::Plan() {
  absl::MutexLock lock(&mutex_);
  return inner_->Plan();
}

absl::StatusOr<ApplyResult> SerializedPackageManager::Apply(const UpgradePlan& plan,
                                                            const ProgressCallback& progress) {
  absl::MutexLock lock(&mutex_);
  return inner_->Apply(plan, progress);
}

absl::StatusOr<ApplyResult> SerializedPackageManager::InstallPinned(
    const std::vector<PinnedVersion>& packages, const ProgressCallback& progress) {
  absl::MutexLock lock(&mutex_);
  return inner_->InstallPinned(packages, progress);
}

absl::StatusOr<bool> SerializedPackageManager::RepairInterruptedDpkg(
    const ProgressCallback& progress) {
  absl::MutexLock lock(&mutex_);
  return inner_->RepairInterruptedDpkg(progress);
}

absl::Status SerializedPackageManager::Hold(const std::vector<std::string>& packages) {
  absl::MutexLock lock(&mutex_);
  return inner_->Hold(packages);
}

absl::Status SerializedPackageManager::Unhold(const std::vector<std::string>& packages) {
  absl::MutexLock lock(&mutex_);
  return inner_->Unhold(packages);
}

absl::StatusOr<std::vector<std::string>> SerializedPackageManager::Holds() {
  absl::MutexLock lock(&mutex_);
  return inner_->Holds();
}

absl::StatusOr<RebootRequirement> SerializedPackageManager::RebootRequired() {
  absl::MutexLock lock(&mutex_);
  return inner_->RebootRequired();
}

absl::StatusOr<std::vector<std::string>> SerializedPackageManager::AvailableVersions(
    const std::string& package) {
  absl::MutexLock lock(&mutex_);
  return inner_->AvailableVersions(package);
}

}  // namespace tended::agent::apt
