#include "agent/apt/engine/installer.h"

#include <apt-pkg/acquire-item.h>
#include <apt-pkg/acquire.h>
#include <apt-pkg/configuration.h>
#include <apt-pkg/error.h>
#include <apt-pkg/install-progress.h>
#include <apt-pkg/packagemanager.h>
#include <apt-pkg/pkgrecords.h>
#include <apt-pkg/pkgsystem.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/apt/engine/dpkg_state.h"
#include "common/logging.h"
#include "common/node_file.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

// Forwards dpkg's progress and notices the reboot sentinel appearing during a package's
// configuration.
class InstallProgress : public APT::Progress::PackageManager {
 public:
  InstallProgress(ProgressCallback progress, const RootPath& root)
      : progress_(std::move(progress)), root_(root) {
    sentinel_seen_ = SentinelExists();
  }
  bool StatusChanged(std::string package, unsigned int done, unsigned int total,
                     std::string action) override {
    APT::Progress::PackageManager::StatusChanged(package, done, total, action);
    // dpkg reports "name:arch"; keep the arch only when it is a foreign one.
    if (size_t colon = package.find(':'); colon != std::string::npos) {
      std::string arch = package.substr(colon + 1);
      if (arch == "all" || arch == _config->Find("APT::Architecture")) package.erase(colon);
    }
    ReportProgress(progress_, ApplyProgress::Stage::kInstalling, package,
                   total == 0 ? 0 : 100.0 * done / total, action);
    if (!sentinel_seen_ && SentinelExists()) {
      sentinel_seen_ = true;
      sentinel_packages_.push_back(package);
    }
    return true;
  }
  void Error(std::string package, unsigned int, unsigned int, std::string message) override {
    errors_.push_back(absl::StrCat(package, ": ", message));
  }
  void ConffilePrompt(std::string package, unsigned int, unsigned int,
                      std::string message) override {
    errors_.push_back(absl::StrCat(package, ": conffile prompt: ", message));
  }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& sentinel_packages() const { return sentinel_packages_; }

 private:
  bool SentinelExists() const { return NodeFileExists(root_, kRebootSentinelPath); }

  ProgressCallback progress_;
  const RootPath& root_;
  bool sentinel_seen_ = false;
  std::vector<std::string> sentinel_packages_;
  std::vector<std::string> errors_;
};

// Swaps /dev/null onto stdin for the lifetime of the object, so dpkg can never prompt.
class NullStdin {
 public:
  NullStdin() {
    saved_ = dup(STDIN_FILENO);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      close(null_fd);
    }
  }
  ~NullStdin() {
    if (saved_ >= 0) {
      dup2(saved_, STDIN_FILENO);
      close(saved_);
    }
  }

 private:
  int saved_ = -1;
};

}  // namespace

absl::StatusOr<ApplyResult> Installer::Apply(const UpgradePlan& plan,
                                             const ProgressCallback& progress) {
  // Every change the plan names, new dependencies included: nothing else may be installed.
  Requested requested;
  for (const PackageUpgrade& u : plan.upgrades) requested[u.package] = u.to;
  auto mark = [&](Planner& planner, ApplyResult& result) -> absl::Status {
    PlanOutcome outcome = planner.Compute(&requested);
    result.skipped = outcome.skipped;
    result.installed = outcome.plan.upgrades;
    // The planner refuses such change sets already; this is the last line before dpkg.
    for (const PackageUpgrade& u : result.installed) {
      auto it = requested.find(u.package);
      if (it == requested.end() || it->second != u.to) {
        return absl::InternalError(absl::StrCat("refusing to install ", u.package, " ", u.to,
                                                ", which is not in the plan"));
      }
    }
    return absl::OkStatus();
  };
  return Install(mark, "the upgrades", progress);
}

absl::StatusOr<ApplyResult> Installer::InstallPinned(const std::vector<PinnedVersion>& packages,
                                                     const ProgressCallback& progress) {
  std::map<std::string, std::string> seen;
  for (const PinnedVersion& pin : packages) {
    if (pin.package.empty() || pin.version.empty()) {
      return absl::InvalidArgumentError("a pinned install needs a package and a version");
    }
    auto [it, inserted] = seen.emplace(pin.package, pin.version);
    if (!inserted && it->second != pin.version) {
      return absl::InvalidArgumentError(
          absl::StrCat(pin.package, " is named with versions ", it->second, " and ", pin.version));
    }
  }
  auto mark = [&](Planner& planner, ApplyResult& result) -> absl::Status {
    ASSIGN_OR_RETURN(result.installed, planner.MarkPinned(packages));
    return absl::OkStatus();
  };
  return Install(mark, "the pinned versions", progress);
}

absl::StatusOr<ApplyResult> Installer::Install(const MarkChanges& mark, absl::string_view what,
                                               const ProgressCallback& progress) {
  RETURN_IF_ERROR(system_.EnsureConfigured());
  ApplyResult result;
  ASSIGN_OR_RETURN(result.repaired_dpkg, RepairInterruptedDpkg(progress));
  RETURN_IF_ERROR(system_.LockSystem(progress));
  absl::Cleanup unlock = [this] { system_.UnlockSystem(); };

  ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> before, ReadDpkgStatus(system_.StatusPath()));
  std::vector<std::string> wanted_holds = HeldPackages(before);
  for (const std::string& h : policy_.configured_holds()) wanted_holds.push_back(h);
  bool sentinel_before = NodeFileExists(system_.root(), kRebootSentinelPath);

  pkgCacheFile cache_file;
  Planner planner(policy_, cache_file);
  RETURN_IF_ERROR(planner.Open());
  RETURN_IF_ERROR(mark(planner, result));

  absl::Status install_status = absl::OkStatus();
  std::vector<std::string> sentinel_packages;
  if (!result.installed.empty()) {
    pkgDepCache& depcache = *cache_file.GetDepCache();
    QuietAcquireStatus fetch_status(progress);
    pkgAcquire fetcher(&fetch_status);
    if (!fetcher.GetLock(_config->FindDir("Dir::Cache::Archives"))) {
      return AptError("cannot lock the archives directory");
    }
    pkgRecords records(*cache_file.GetPkgCache());
    std::unique_ptr<pkgPackageManager> pm(_system->CreatePM(&depcache));
    ReportProgress(progress, ApplyProgress::Stage::kDownloading, "", 0, "downloading packages");
    if (!pm->GetArchives(&fetcher, cache_file.GetSourceList(), &records)) {
      return AptError("cannot queue the package downloads");
    }
    if (fetcher.Run() != pkgAcquire::Continue) return AptError("download interrupted");
    std::vector<std::string> failed = fetch_status.failures();
    for (auto item = fetcher.ItemsBegin(); item != fetcher.ItemsEnd(); ++item) {
      if ((*item)->Status == pkgAcquire::Item::StatDone && (*item)->Complete) continue;
      failed.push_back(absl::StrCat((*item)->DescURI(), ": ", (*item)->ErrorText));
    }
    if (!failed.empty()) {
      DrainAptErrors();
      return absl::UnavailableError(absl::StrCat("cannot download: ", absl::StrJoin(failed, "; ")));
    }

    for (const auto& [name, value] : kMaintainerScriptEnvironment) setenv(name, value, 1);
    InstallProgress install_progress(progress, system_.root());
    {
      NullStdin null_stdin;
      _system->UnLockInner();
      pkgPackageManager::OrderResult order = pm->DoInstall(&install_progress);
      // Holds first: dpkg turned a held package that was installed back to "install".
      absl::StatusOr<std::vector<std::string>> reheld = Rehold(wanted_holds, progress);
      if (reheld.ok()) {
        result.reheld = *reheld;
      } else {
        install_status = reheld.status();
      }
      _system->LockInner();
      if (order != pkgPackageManager::Completed) {
        std::vector<std::string> errors = install_progress.errors();
        if (std::string apt_errors = DrainAptErrors(); !apt_errors.empty()) {
          errors.push_back(apt_errors);
        }
        install_status = absl::InternalError(
            absl::StrCat("installing ", what, " failed: ", absl::StrJoin(errors, "; ")));
      }
    }
    sentinel_packages = install_progress.sentinel_packages();
  } else {
    ASSIGN_OR_RETURN(result.reheld, Rehold(wanted_holds, progress));
  }

  // A postinst that created the sentinel, or a kernel newer than the running one.
  std::vector<std::string> reboot_packages;
  if (!sentinel_before && NodeFileExists(system_.root(), kRebootSentinelPath)) {
    reboot_packages = sentinel_packages;
    if (reboot_packages.empty() && !result.installed.empty()) {
      reboot_packages.push_back(result.installed.back().package);
    }
  }
  ASSIGN_OR_RETURN(std::string kernel, system_.NewerKernel());
  if (!kernel.empty()) reboot_packages.push_back(kernel);
  if (!reboot_packages.empty()) {
    RETURN_IF_ERROR(WriteRebootSentinel(system_.root(), reboot_packages));
  }
  ASSIGN_OR_RETURN(result.reboot, system_.RebootRequired());
  if (!install_status.ok()) return install_status;
  return result;
}

absl::StatusOr<std::vector<std::string>> Installer::Rehold(const std::vector<std::string>& wanted,
                                                           const ProgressCallback& progress) {
  ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> now, ReadDpkgStatus(system_.StatusPath()));
  std::vector<std::string> held = HeldPackages(now);
  std::set<std::string> installed;
  for (const DpkgStatusEntry& e : now) {
    if (e.status != "not-installed") installed.insert(e.package);
  }
  std::vector<std::string> missing;
  for (const std::string& w : std::set<std::string>(wanted.begin(), wanted.end())) {
    if (installed.count(w) != 0 && !std::binary_search(held.begin(), held.end(), w)) {
      missing.push_back(w);
    }
  }
  if (missing.empty()) return missing;
  ReportProgress(progress, ApplyProgress::Stage::kHolding, "", 0,
                 absl::StrCat("holding ", absl::StrJoin(missing, ", ")));
  std::string selections;
  for (const std::string& m : missing) absl::StrAppend(&selections, m, " hold\n");
  ASSIGN_OR_RETURN(ProcessResult run, system_.RunDpkg({"--set-selections"}, selections));
  if (run.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("dpkg --set-selections exited with ", run.exit_code, ": ", run.output));
  }
  return missing;
}

absl::Status Installer::SetSelections(const std::vector<std::string>& packages,
                                      const std::string& state) {
  if (packages.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(system_.EnsureConfigured());
  ASSIGN_OR_RETURN(DpkgLockFile lock, system_.WaitForFrontendLock(nullptr));
  std::string selections;
  for (const std::string& p : packages) absl::StrAppend(&selections, p, " ", state, "\n");
  ASSIGN_OR_RETURN(ProcessResult run, system_.RunDpkg({"--set-selections"}, selections));
  if (run.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("dpkg --set-selections exited with ", run.exit_code, ": ", run.output));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Installer::RepairInterruptedDpkg(const ProgressCallback& progress) {
  RETURN_IF_ERROR(system_.EnsureConfigured());
  ASSIGN_OR_RETURN(DpkgInterruption found, InspectDpkg(system_.AdminDir()));
  if (!found.interrupted()) return false;
  std::vector<std::string> what = found.unfinished;
  for (const std::string& f : found.journal_files) what.push_back("updates/" + f);
  Logger("apt")->warn("dpkg was interrupted ({}); running dpkg --configure -a",
                      absl::StrJoin(what, ", "));
  ReportProgress(progress, ApplyProgress::Stage::kRepairing, "", 0,
                 absl::StrCat("dpkg was interrupted: ", absl::StrJoin(what, ", ")));
  // Like dpkg itself, hold the frontend lock; apt's Lock() would refuse on this journal.
  ASSIGN_OR_RETURN(DpkgLockFile lock, system_.WaitForFrontendLock(progress));
  ASSIGN_OR_RETURN(ProcessResult run, system_.RunDpkg({"--configure", "-a"}, ""));
  if (run.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("dpkg --configure -a exited with ", run.exit_code, ": ", run.output));
  }
  ASSIGN_OR_RETURN(DpkgInterruption after, InspectDpkg(system_.AdminDir()));
  if (after.interrupted()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dpkg --configure -a left packages unfinished: ", absl::StrJoin(after.unfinished, ", "),
        after.journal_files.empty() ? "" : " (journal not empty)"));
  }
  ReportProgress(progress, ApplyProgress::Stage::kRepairing, "", 100, "dpkg repaired");
  return true;
}

}  // namespace tended::agent::apt
