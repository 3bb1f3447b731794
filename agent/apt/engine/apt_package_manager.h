// The libapt-pkg implementation of PackageManager, which only tended-apt-engine (and its
// tests) links. Its apt configuration is confined to the root before libapt-pkg reads
// anything, so a root other than "/" never sees the host's /etc/apt, lists or dpkg
// database. apt types stay inside this folder's .cc files and its internal headers
// (apt_system.h, planner.h, installer.h).
#ifndef TENDED_AGENT_APT_ENGINE_APT_PACKAGE_MANAGER_H_
#define TENDED_AGENT_APT_ENGINE_APT_PACKAGE_MANAGER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

absl::StatusOr<std::unique_ptr<PackageManager>> CreateAptPackageManager(const AptOptions& options);

// Debian version ordering (<0, 0, >0), as dpkg compares versions.
int CompareDebianVersions(const std::string& a, const std::string& b);

// From installed package names, the linux-image-<release> kernel whose release sorts
// highest and is newer than `running_release`; empty when none is newer.
std::string NewerKernelPackage(const std::vector<std::string>& installed_packages,
                               const std::string& running_release);

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_APT_PACKAGE_MANAGER_H_
