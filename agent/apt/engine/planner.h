// Internal to the apt engine (includes libapt-pkg headers): the upgrade set computed on one
// package cache, as unattended-upgrades does it: pin disallowed origins, held and
// blacklisted packages away, then try each candidate on its own and rewind when the change
// set breaks a rule, explaining every package kept back. Also what Apply and InstallPinned
// mark on a fresh cache before the installer runs dpkg.
#ifndef TENDED_AGENT_APT_ENGINE_PLANNER_H_
#define TENDED_AGENT_APT_ENGINE_PLANNER_H_

#include <apt-pkg/cachefile.h>
#include <apt-pkg/depcache.h>
#include <apt-pkg/pkgcache.h>
#include <apt-pkg/pkgrecords.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/upgrade_policy.h"

namespace tended::agent::apt {

// A requested change set (Apply): package name -> the exact version to install.
using Requested = std::map<std::string, std::string>;

struct PlanOutcome {
  UpgradePlan plan;
  std::vector<KeptPackage> skipped;  // Requested upgrades no longer valid (Apply only).
};

class Planner {
 public:
  Planner(const UpgradePolicy& policy, pkgCacheFile& cache_file)
      : policy_(policy), cf_(cache_file) {}

  // Opens the cache and pins what the policy refuses away.
  absl::Status Open();

  // Without `requested`, the plan: every allowed upgrade and every upgradable package kept
  // back with its reason. With it (Apply), only the installed packages it names, at exactly
  // its versions, are tried, and a change set that would install anything else (a newer
  // or unnamed dependency) is refused: those upgrades are skipped with the reason. Leaves
  // the accepted upgrades marked in the depcache.
  PlanOutcome Compute(const Requested* requested);

  // Marks exactly the `pinned` versions (InstallPinned) and checks the change set. The named
  // packages are exempt from holds and from the origin, blacklist, whitelist and app-restart
  // rules; what they pull in is not. Returns what changes, sorted by package.
  absl::StatusOr<std::vector<PackageUpgrade>> MarkPinned(const std::vector<PinnedVersion>& pinned);

  pkgCacheFile& cache_file() { return cf_; }

 private:
  struct FileInfo {
    bool allowed = false;
    bool trusted = false;
    bool status_file = false;
    std::string origin;
  };
  enum class AppRestart : uint8_t { kUnknown, kNo, kYes };

  // Every package whose version changes in the depcache, sorted by name.
  std::vector<PackageUpgrade> Changes();
  bool Named(const pkgCache::PkgIterator& p) const;
  int Cmp(const pkgCache::VerIterator& a, const pkgCache::VerIterator& b) const;
  std::string HoldReason(const pkgCache::PkgIterator& p) const;
  bool VersionAllowed(const pkgCache::VerIterator& v) const;
  bool VersionTrusted(const pkgCache::VerIterator& v) const;
  std::string OriginOf(const pkgCache::VerIterator& v) const;
  bool RequiresAppRestart(const pkgCache::VerIterator& v);
  bool ReadAppRestart(const pkgCache::VerFileIterator& vf);
  void ReadAppRestartInFileOrder();
  // Why `p` is not even tried; nullopt when it is a candidate.
  std::optional<std::string> PreCheck(const pkgCache::PkgIterator& p,
                                      const pkgCache::VerIterator& current,
                                      const pkgCache::VerIterator& newest);
  void MarkUpgrade(const pkgCache::PkgIterator& p);
  void Rewind(const std::vector<pkgCache::PkgIterator>& accepted);
  std::string Needed(const pkgCache::PkgIterator& p, const pkgCache::PkgIterator& q);
  static std::string DependencyText(const pkgCache::DepIterator& dep);
  std::string WhyUnsatisfiable(const pkgCache::DepIterator& dep);
  std::string ExplainBroken(const pkgCache::PkgIterator& p);
  std::string ExplainNotMarked(const pkgCache::PkgIterator& p);
  // unattended-upgrades' sanity check of the whole change set after marking `p`, and with
  // `requested`, that the change set is part of it.
  std::string Sanity(const pkgCache::PkgIterator& p, const Requested* requested);
  // Why the change set marked for `p` breaks a rule; empty when it does not.
  std::string CheckChangeSet(const pkgCache::PkgIterator& p);
  // The first change marked that is not in `requested` at exactly its version; empty when
  // there is none.
  std::string OutsideRequested(const Requested& requested);

  const UpgradePolicy& policy_;
  pkgCacheFile& cf_;
  pkgCache* cache_ = nullptr;
  pkgDepCache* depcache_ = nullptr;
  std::unique_ptr<pkgRecords> records_;  // Opened on the first record read.
  std::vector<AppRestart> app_restart_;  // Upgrade-Requires, by version ID.
  std::vector<FileInfo> files_;
  std::vector<pkgCache::PkgIterator> all_;
  std::vector<pkgCache::PkgIterator> installed_;
  std::vector<bool> named_;  // By package ID: named by InstallPinned.
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_PLANNER_H_
