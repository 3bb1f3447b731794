// The agent's OS package engine at the seam: refresh the lists, compute which upgrades the
// policy allows (and why the others are kept back), install them or exact versions of named
// packages, repair an interrupted dpkg, manage holds, tell whether a reboot is required and
// list the versions of a package the lists offer.
// The agent daemon reaches it through engine_client.h (a tended-apt-engine child process);
// the libapt-pkg implementation is in agent/apt/engine/, which only that program links.
// Nothing here exposes apt types.
#ifndef TENDED_AGENT_APT_PACKAGE_MANAGER_H_
#define TENDED_AGENT_APT_PACKAGE_MANAGER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/apt/upgrade_policy.h"
#include "common/clock.h"

namespace tended::agent::apt {

struct PackageUpgrade {
  std::string package;
  std::string from;  // Empty when the package is newly installed as a dependency.
  std::string to;
  std::string origin;  // "o=...,a=...,n=...,l=...,c=..." of the allowed source.
  bool operator==(const PackageUpgrade&) const = default;
};

struct KeptPackage {
  std::string package;
  std::string reason;  // e.g. "needs blk >= 1.1, which is blacklisted".
  bool operator==(const KeptPackage&) const = default;
};

// Both lists are sorted by package name.
struct UpgradePlan {
  std::vector<PackageUpgrade> upgrades;
  std::vector<KeptPackage> kept;
};

struct ApplyProgress {
  enum class Stage { kRepairing, kWaitingForLock, kDownloading, kInstalling, kHolding };
  Stage stage;
  std::string package;  // When the event concerns one package.
  double percent = 0;   // 0..100 within the stage, when known.
  std::string message;
};
using ProgressCallback = std::function<void(const ApplyProgress&)>;

struct RebootRequirement {
  bool required = false;
  std::vector<std::string> packages;  // From reboot-required.pkgs, plus a newer kernel.
};

struct ApplyResult {
  std::vector<PackageUpgrade> installed;
  // Upgrades of the requested plan that were not installed, e.g. because the lists
  // changed since the plan was made.
  std::vector<KeptPackage> skipped;
  bool repaired_dpkg = false;
  std::vector<std::string> reheld;  // Holds that had to be set again after dpkg ran.
  RebootRequirement reboot;
};

// One exact version to install, as in `apt-get install kubeadm=1.31.2-1.1`.
struct PinnedVersion {
  std::string package;
  std::string version;
};

// Not thread-safe; libapt-pkg keeps process-wide state, so at most one instance should
// exist in a process at a time.
class PackageManager {
 public:
  virtual ~PackageManager() = default;

  // Refreshes the package lists (like apt-get update).
  virtual absl::Status Update() = 0;

  // The upgrades the policy allows and every upgradable package kept back, with its reason.
  // Reads the lists and dpkg's database only: no download, no hook, no lock.
  virtual absl::StatusOr<UpgradePlan> Plan() = 0;

  // Installs the plan's upgrades (only those still valid) under the dpkg lock, keeping the
  // admin's conffiles, re-holding held packages, and recording whether a reboot is now
  // required (writing /var/run/reboot-required and .pkgs under the root). Repairs an
  // interrupted dpkg first. Only the agent calls this, under an OS_UPGRADE lease.
  // Installs nothing outside the plan: every change (an upgrade, a new dependency) must be
  // one of the plan's upgrades with exactly its `to` version. An upgrade whose candidate
  // moved on, or that would need anything else, is skipped with the reason.
  virtual absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan,
                                            const ProgressCallback& progress) = 0;

  // Installs exactly these versions in the same way as Apply, also when a package is held
  // and whatever the origin, blacklist and whitelist policy says about it (the operator's
  // `apt-mark unhold P && apt-get install P=V && apt-mark hold P`). What they pull in follows
  // the policy: never another held or a blacklisted package, never a removal. Every package
  // held before, the named ones included, is held again afterwards, also when dpkg fails.
  // NOT_FOUND when a version is not in the lists, FAILED_PRECONDITION for a downgrade or a
  // refused dependency, and then nothing changes. A package already at its version is left
  // alone.
  virtual absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                                    const ProgressCallback& progress) = 0;

  // Runs `dpkg --configure -a` (keeping conffiles) when dpkg was interrupted, waiting for
  // the dpkg lock if needed. Returns whether a repair ran.
  virtual absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress) = 0;

  virtual absl::Status Hold(const std::vector<std::string>& packages) = 0;
  virtual absl::Status Unhold(const std::vector<std::string>& packages) = 0;
  // Installed packages on dpkg hold, sorted.
  virtual absl::StatusOr<std::vector<std::string>> Holds() = 0;

  // The sentinel exists, or an installed kernel is newer than the running one.
  virtual absl::StatusOr<RebootRequirement> RebootRequired() = 0;

  // The versions of `package` the apt lists offer, newest first (apt's version order), each
  // once: what `apt-cache madison` shows. An installed version no list offers is not one.
  // A package the lists do not know gives an empty list, not an error. Reads the lists only
  // (call Update() first for fresh ones): no download, no lock.
  virtual absl::StatusOr<std::vector<std::string>> AvailableVersions(
      const std::string& package) = 0;
};

struct AptOptions {
  // Every apt and dpkg path (configuration, lists, dpkg database, sentinel) is under it.
  std::string root = "/";
  // From the agent's YAML; added to (or replacing) the root's Unattended-Upgrade::* values.
  AptPolicyOverrides policy;
  // How long to wait for another apt/dpkg to release the lock before failing.
  absl::Duration lock_timeout = absl::Minutes(10);
  absl::Duration lock_poll_interval = absl::Milliseconds(200);
  const Clock* clock = nullptr;  // Clock::Real() when null.
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_PACKAGE_MANAGER_H_
