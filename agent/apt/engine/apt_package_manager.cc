#include "agent/apt/engine/apt_package_manager.h"

#include <apt-pkg/cachefile.h>
#include <apt-pkg/error.h>
#include <apt-pkg/sourcelist.h>
#include <apt-pkg/update.h>
#include <apt-pkg/version.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/apt/engine/apt_system.h"
#include "agent/apt/engine/dpkg_state.h"
#include "agent/apt/engine/installer.h"
#include "agent/apt/engine/planner.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

// Whether a list (not only dpkg's status file) offers `ver`.
bool OfferedByAList(const pkgCache::VerIterator& ver) {
  for (pkgCache::VerFileIterator file = ver.FileList(); !file.end(); ++file) {
    if ((file.File()->Flags & pkgCache::Flag::NotSource) == 0) return true;
  }
  return false;
}

// The PackageManager calls, each on the system, a fresh planner or the installer.
class AptPackageManager : public PackageManager {
 public:
  AptPackageManager(AptOptions options, UpgradePolicy policy)
      : system_(std::move(options)), policy_(std::move(policy)), installer_(system_, policy_) {}

  AptSystem& system() { return system_; }

  absl::Status Update() override {
    RETURN_IF_ERROR(system_.EnsureConfigured());
    pkgCacheFile cache_file;
    pkgSourceList* sources = cache_file.GetSourceList();
    if (sources == nullptr) return AptError("cannot read the sources list");
    QuietAcquireStatus status;
    _error->PushToStack();
    bool ok = ListUpdate(status, *sources);
    std::string errors = DrainAptErrors();
    _error->RevertToStack();
    if (!ok || !status.failures().empty()) {
      std::vector<std::string> all = status.failures();
      if (!errors.empty()) all.push_back(errors);
      return absl::UnavailableError(absl::StrCat("apt update failed: ", absl::StrJoin(all, "; ")));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UpgradePlan> Plan() override {
    RETURN_IF_ERROR(system_.EnsureConfigured());
    pkgCacheFile cache_file;
    Planner planner(policy_, cache_file);
    RETURN_IF_ERROR(planner.Open());
    return planner.Compute(nullptr).plan;
  }

  absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan,
                                    const ProgressCallback& progress) override {
    return installer_.Apply(plan, progress);
  }

  absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                            const ProgressCallback& progress) override {
    return installer_.InstallPinned(packages, progress);
  }

  absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress) override {
    return installer_.RepairInterruptedDpkg(progress);
  }

  absl::Status Hold(const std::vector<std::string>& packages) override {
    return installer_.SetSelections(packages, "hold");
  }
  absl::Status Unhold(const std::vector<std::string>& packages) override {
    return installer_.SetSelections(packages, "install");
  }

  absl::StatusOr<std::vector<std::string>> Holds() override {
    ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> entries, ReadDpkgStatus(system_.StatusPath()));
    return HeldPackages(entries);
  }

  absl::StatusOr<RebootRequirement> RebootRequired() override { return system_.RebootRequired(); }

  absl::StatusOr<std::vector<std::string>> AvailableVersions(const std::string& package) override {
    RETURN_IF_ERROR(system_.EnsureConfigured());
    pkgCacheFile cache_file;
    RETURN_IF_ERROR(OpenAptCache(cache_file));
    pkgCache* cache = cache_file.GetPkgCache();
    if (cache == nullptr) return AptError("cannot open the package cache");
    std::vector<std::string> versions;
    // Every architecture's package of that name (kubeadm:amd64, a foreign one, ...).
    pkgCache::GrpIterator group = cache->FindGrp(package);
    if (group.end()) return versions;
    for (pkgCache::PkgIterator pkg = group.PackageList(); !pkg.end(); pkg = group.NextPkg(pkg)) {
      for (pkgCache::VerIterator ver = pkg.VersionList(); !ver.end(); ++ver) {
        if (!OfferedByAList(ver)) continue;
        const std::string version = Str(ver.VerStr());
        if (std::find(versions.begin(), versions.end(), version) == versions.end()) {
          versions.push_back(version);
        }
      }
    }
    // VersionList is newest first per architecture; across architectures, merge by apt's order.
    std::stable_sort(versions.begin(), versions.end(),
                     [&](const std::string& a, const std::string& b) {
                       return cache->VS->CmpVersion(a, b) > 0;
                     });
    return versions;
  }

 private:
  AptSystem system_;
  UpgradePolicy policy_;
  Installer installer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PackageManager>> CreateAptPackageManager(const AptOptions& options) {
  RootPath root(options.root);
  if (!PathExists(root.Resolve("/var/lib/dpkg/status"))) {
    return absl::FailedPreconditionError(
        absl::StrCat("no dpkg database at ", root.Resolve("/var/lib/dpkg/status")));
  }
  RETURN_IF_ERROR(AptSystem::ConfigureApt(root));
  AptConfigPolicy from_apt = AptSystem::ReadConfigPolicy();
  ASSIGN_OR_RETURN(DistroInfo distro, ReadDistroInfo(root));
  ASSIGN_OR_RETURN(UpgradePolicy policy, UpgradePolicy::Create(from_apt, options.policy, distro));
  auto manager = std::make_unique<AptPackageManager>(options, std::move(policy));
  manager->system().MarkConfigured();
  return manager;
}

}  // namespace tended::agent::apt
