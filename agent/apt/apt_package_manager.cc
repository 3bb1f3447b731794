#include "agent/apt/apt_package_manager.h"

#include <apt-pkg/acquire-item.h>
#include <apt-pkg/acquire.h>
#include <apt-pkg/algorithms.h>
#include <apt-pkg/cachefile.h>
#include <apt-pkg/configuration.h>
#include <apt-pkg/debversion.h>
#include <apt-pkg/depcache.h>
#include <apt-pkg/error.h>
#include <apt-pkg/indexfile.h>
#include <apt-pkg/init.h>
#include <apt-pkg/install-progress.h>
#include <apt-pkg/packagemanager.h>
#include <apt-pkg/pkgcache.h>
#include <apt-pkg/pkgrecords.h>
#include <apt-pkg/pkgsystem.h>
#include <apt-pkg/policy.h>
#include <apt-pkg/sourcelist.h>
#include <apt-pkg/update.h>
#include <apt-pkg/version.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent/apt/dpkg_state.h"
#include "agent/apt/subprocess.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/posix_status.h"
#include "common/root_path.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

// What dpkg and every maintainer script run with: debconf never asks, apt-listchanges never
// pages, and ucf (config files kept outside dpkg's conffiles, sshd_config among them)
// keeps the admin's version, as --force-confold does for conffiles.
constexpr std::pair<const char*, const char*> kMaintainerScriptEnvironment[] = {
    {"DEBIAN_FRONTEND", "noninteractive"},
    {"APT_LISTCHANGES_FRONTEND", "none"},
    {"UCF_FORCE_CONFFOLD", "1"},
};

constexpr short kNeverPin = -32768;

std::string Str(const char* s) { return s == nullptr ? "" : s; }

// Pops every pending libapt-pkg message; returns the errors (warnings are logged).
std::string DrainAptErrors() {
  std::vector<std::string> errors;
  while (!_error->empty()) {
    std::string message;
    bool is_error = _error->PopMessage(message);
    if (is_error) {
      errors.push_back(message);
    } else if (!message.empty()) {
      Logger("apt")->debug("apt: {}", message);
    }
  }
  return absl::StrJoin(errors, "; ");
}

absl::Status AptError(absl::string_view what) {
  std::string errors = DrainAptErrors();
  return absl::InternalError(errors.empty() ? std::string(what) : absl::StrCat(what, ": ", errors));
}

void Report(const ProgressCallback& progress, ApplyProgress::Stage stage, std::string package,
            double percent, std::string message) {
  if (!progress) return;
  ApplyProgress event;
  event.stage = stage;
  event.package = std::move(package);
  event.percent = percent;
  event.message = std::move(message);
  progress(event);
}

class QuietAcquireStatus : public pkgAcquireStatus {
 public:
  explicit QuietAcquireStatus(ProgressCallback progress = nullptr)
      : progress_(std::move(progress)) {}
  bool MediaChange(std::string, std::string) override { return false; }
  void Fail(pkgAcquire::ItemDesc& item) override {
    if (item.Owner != nullptr && item.Owner->Status == pkgAcquire::Item::StatIdle) return;
    if (item.Owner != nullptr && item.Owner->Status == pkgAcquire::Item::StatDone) return;
    failures_.push_back(
        absl::StrCat(item.Description, item.Owner ? ": " + item.Owner->ErrorText : ""));
  }
  bool Pulse(pkgAcquire* owner) override {
    bool result = pkgAcquireStatus::Pulse(owner);
    Report(progress_, ApplyProgress::Stage::kDownloading, "", Percent, "downloading");
    return result;
  }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  ProgressCallback progress_;
  std::vector<std::string> failures_;
};

// Forwards dpkg's progress and notices the reboot sentinel appearing during a package's
// configuration.
class InstallProgress : public APT::Progress::PackageManager {
 public:
  InstallProgress(ProgressCallback progress, std::string sentinel)
      : progress_(std::move(progress)), sentinel_(std::move(sentinel)) {
    sentinel_seen_ = PathExists(sentinel_);
  }
  bool StatusChanged(std::string package, unsigned int done, unsigned int total,
                     std::string action) override {
    APT::Progress::PackageManager::StatusChanged(package, done, total, action);
    // dpkg reports "name:arch"; keep the arch only when it is a foreign one.
    if (size_t colon = package.find(':'); colon != std::string::npos) {
      std::string arch = package.substr(colon + 1);
      if (arch == "all" || arch == _config->Find("APT::Architecture")) package.erase(colon);
    }
    Report(progress_, ApplyProgress::Stage::kInstalling, package,
           total == 0 ? 0 : 100.0 * done / total, action);
    if (!sentinel_seen_ && PathExists(sentinel_)) {
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
  ProgressCallback progress_;
  std::string sentinel_;
  bool sentinel_seen_ = false;
  std::vector<std::string> sentinel_packages_;
  std::vector<std::string> errors_;
};

struct FileInfo {
  bool allowed = false;
  bool trusted = false;
  bool status_file = false;
  std::string origin;
};

// A requested upgrade set (Apply): package name -> version to install.
using Requested = std::map<std::string, std::string>;

struct PlanOutcome {
  UpgradePlan plan;
  std::vector<KeptPackage> skipped;  // Requested upgrades no longer valid (Apply only).
};

// Computes the upgrade set on one cache, as unattended-upgrades does: pin disallowed
// origins away, then try each candidate on its own and rewind when the change set breaks
// a rule. Leaves the accepted upgrades marked in the depcache.
class Planner {
 public:
  Planner(const UpgradePolicy& policy, pkgCacheFile& cache_file)
      : policy_(policy), cf_(cache_file) {}

  absl::Status Open() {
    _error->PushToStack();
    bool ok = cf_.BuildCaches(nullptr, false) && cf_.BuildPolicy(nullptr);
    if (!ok) return AptError("cannot open the package cache");
    _error->MergeWithStack();
    cache_ = cf_.GetPkgCache();
    pkgPolicy* pin_policy = cf_.GetPolicy();
    pkgSourceList* sources = cf_.GetSourceList();
    files_.assign(cache_->Head().PackageFileCount, FileInfo());
    for (pkgCache::PkgFileIterator f = cache_->FileBegin(); !f.end(); ++f) {
      FileInfo& info = files_[f->ID];
      OriginFields fields{Str(f.Origin()),   Str(f.Label()),     Str(f.Archive()),
                          Str(f.Codename()), Str(f.Component()), Str(f.Site())};
      info.status_file = f.Flagged(pkgCache::Flag::NotSource);
      info.allowed = info.status_file || policy_.OriginAllowed(fields);
      pkgIndexFile* index = nullptr;
      info.trusted = info.status_file || (sources != nullptr && sources->FindIndex(f, index) &&
                                          index != nullptr && index->IsTrusted());
      info.origin = info.status_file ? "now" : FormatOrigin(fields);
      if (!info.allowed) pin_policy->SetPriority(f, kNeverPin);
    }
    for (pkgCache::PkgIterator p = cache_->PkgBegin(); !p.end(); ++p) {
      if (p.VersionList().end()) continue;
      all_.push_back(p);
      if (p->CurrentVer == 0) continue;
      installed_.push_back(p);
      // Held and blacklisted packages stay at their installed version.
      if (HoldReason(p).empty() && !policy_.Blacklisted(p.Name())) continue;
      for (pkgCache::VerIterator v = p.VersionList(); !v.end(); ++v) {
        if (v != p.CurrentVer()) pin_policy->SetPriority(v, kNeverPin);
      }
    }
    std::sort(installed_.begin(), installed_.end(),
              [](const pkgCache::PkgIterator& a, const pkgCache::PkgIterator& b) {
                return a.FullName(true) < b.FullName(true);
              });
    if (!cf_.BuildDepCache(nullptr)) return AptError("cannot build the dependency cache");
    depcache_ = cf_.GetDepCache();
    app_restart_.assign(cache_->Head().VersionCount, AppRestart::kUnknown);
    return absl::OkStatus();
  }

  // With `requested`, only those packages at those versions are considered (Apply).
  PlanOutcome Compute(const Requested* requested) {
    PlanOutcome out;
    pkgDepCache& d = *depcache_;
    std::vector<pkgCache::PkgIterator> candidates;
    std::set<std::string> kept_names;
    ReadAppRestartInFileOrder();
    for (const pkgCache::PkgIterator& p : installed_) {
      std::string name = p.FullName(true);
      pkgCache::VerIterator current = p.CurrentVer();
      pkgCache::VerIterator newest;
      for (pkgCache::VerIterator v = p.VersionList(); !v.end(); ++v) {
        if (Cmp(v, current) > 0 && (newest.end() || Cmp(v, newest) > 0)) newest = v;
      }
      if (newest.end()) continue;
      std::optional<std::string> reason = PreCheck(p, current, newest);
      if (requested != nullptr) {
        auto it = requested->find(name);
        if (it == requested->end()) continue;
        pkgCache::VerIterator cand = d[p].CandidateVerIter(d);
        if (reason.has_value()) {
          out.skipped.push_back({name, *reason});
          continue;
        }
        if (cand.end() || it->second != cand.VerStr()) {
          out.skipped.push_back(
              {name, absl::StrCat("the plan had ", it->second, " but the candidate is now ",
                                  cand.end() ? "none" : cand.VerStr())});
          continue;
        }
      }
      if (reason.has_value()) {
        out.plan.kept.push_back({name, *reason});
        kept_names.insert(name);
        continue;
      }
      candidates.push_back(p);
    }

    std::vector<pkgCache::PkgIterator> accepted;
    {
      pkgDepCache::ActionGroup group(d);
      for (const pkgCache::PkgIterator& p : candidates) {
        MarkUpgrade(p);
        std::string why = Sanity(p);
        if (why.empty()) {
          accepted.push_back(p);
          continue;
        }
        std::string name = p.FullName(true);
        (requested != nullptr ? out.skipped : out.plan.kept).push_back({name, why});
        kept_names.insert(name);
        Rewind(accepted);
      }
    }

    out.plan.upgrades = Changes();
    std::set<std::string> upgraded;
    for (const PackageUpgrade& u : out.plan.upgrades) upgraded.insert(u.package);
    for (const pkgCache::PkgIterator& p : candidates) {
      std::string name = p.FullName(true);
      if (upgraded.count(name) == 0 && kept_names.count(name) == 0) {
        (requested != nullptr ? out.skipped : out.plan.kept)
            .push_back({name, "cannot be upgraded together with the other upgrades"});
      }
    }
    auto by_name = [](const auto& a, const auto& b) { return a.package < b.package; };
    std::sort(out.plan.kept.begin(), out.plan.kept.end(), by_name);
    std::sort(out.skipped.begin(), out.skipped.end(), by_name);
    return out;
  }

  // Marks exactly the `pinned` versions (InstallPinned) and checks the change set. The named
  // packages are exempt from holds and from the origin, blacklist, whitelist and app-restart
  // rules; what they pull in is not. Returns what changes, sorted by package.
  absl::StatusOr<std::vector<PackageUpgrade>> MarkPinned(const std::vector<PinnedVersion>& pinned) {
    pkgDepCache& d = *depcache_;
    std::vector<std::pair<pkgCache::PkgIterator, pkgCache::VerIterator>> wanted;
    for (const PinnedVersion& pin : pinned) {
      pkgCache::PkgIterator p = cache_->FindPkg(pin.package);
      if (p.end() || p.VersionList().end()) {
        return absl::NotFoundError(absl::StrCat(pin.package, " is not in the package lists"));
      }
      pkgCache::VerIterator v;
      std::vector<std::string> available;
      for (pkgCache::VerIterator it = p.VersionList(); !it.end(); ++it) {
        if (v.end() && pin.version == it.VerStr()) v = it;
        if (std::find(available.begin(), available.end(), it.VerStr()) == available.end()) {
          available.push_back(it.VerStr());
        }
      }
      if (v.end()) {
        return absl::NotFoundError(absl::StrCat(pin.package, " ", pin.version,
                                                " is not in the package lists; they have ",
                                                absl::StrJoin(available, ", ")));
      }
      if (p->CurrentVer != 0) {
        int order = Cmp(v, p.CurrentVer());
        if (order == 0) continue;
        if (order < 0) {
          return absl::FailedPreconditionError(
              absl::StrCat(pin.package, " ", p.CurrentVer().VerStr(), " is installed: installing ",
                           pin.version, " would be a downgrade, which is refused"));
        }
      }
      wanted.emplace_back(p, v);
    }

    named_.assign(cache_->Head().PackageCount, false);
    for (const auto& [p, v] : wanted) named_[p->ID] = true;
    {
      pkgDepCache::ActionGroup group(d);
      _error->PushToStack();
      // All named versions first, so that one can satisfy another's dependency.
      for (const auto& [p, v] : wanted) {
        d.SetCandidateVersion(v);
        d.MarkInstall(p, false, 0, true);
        d.MarkProtected(p);
      }
      for (const auto& [p, v] : wanted) d.MarkInstall(p, true, 0, true);
      if (d.BrokenCount() > 0) {
        pkgProblemResolver fix(&d);
        for (const auto& [p, v] : wanted) {
          fix.Clear(p);
          fix.Protect(p);
        }
        fix.Resolve(true);
      }
      _error->RevertToStack();
    }
    // A named package that is itself broken explains the failure best.
    std::stable_partition(wanted.begin(), wanted.end(),
                          [&](const auto& w) { return d[w.first].InstBroken(); });
    for (const auto& [p, v] : wanted) {
      std::string why = CheckChangeSet(p);
      if (why.empty() && d[p].InstVerIter(d) != v) why = "apt did not mark it for installation";
      if (!why.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat(p.FullName(true), " ", v.VerStr(), " cannot be installed: ", why));
      }
    }
    return Changes();
  }

  pkgCacheFile& cache_file() { return cf_; }

 private:
  // Every package whose version changes in the depcache, sorted by name.
  std::vector<PackageUpgrade> Changes() {
    pkgDepCache& d = *depcache_;
    std::vector<PackageUpgrade> out;
    for (const pkgCache::PkgIterator& q : all_) {
      pkgDepCache::StateCache& state = d[q];
      if (!state.NewInstall() && !state.Upgrade()) continue;
      pkgCache::VerIterator to = state.InstVerIter(d);
      PackageUpgrade upgrade;
      upgrade.package = q.FullName(true);
      upgrade.from = q->CurrentVer == 0 ? "" : q.CurrentVer().VerStr();
      upgrade.to = to.VerStr();
      upgrade.origin = OriginOf(to);
      out.push_back(std::move(upgrade));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.package < b.package; });
    return out;
  }

  bool Named(const pkgCache::PkgIterator& p) const {
    return p->ID < named_.size() && named_[p->ID];
  }

  int Cmp(const pkgCache::VerIterator& a, const pkgCache::VerIterator& b) const {
    return debVS.CmpVersion(a.VerStr(), b.VerStr());
  }

  std::string HoldReason(const pkgCache::PkgIterator& p) const {
    if (p->SelectedState == pkgCache::State::Hold) return "held (dpkg hold)";
    if (policy_.ConfiguredHold(p.Name())) return "held (tended holds)";
    return "";
  }

  bool VersionAllowed(const pkgCache::VerIterator& v) const {
    for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
      if (files_[vf.File()->ID].allowed) return true;
    }
    return false;
  }
  bool VersionTrusted(const pkgCache::VerIterator& v) const {
    for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
      if (files_[vf.File()->ID].trusted) return true;
    }
    return false;
  }
  std::string OriginOf(const pkgCache::VerIterator& v) const {
    std::string fallback;
    for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
      const FileInfo& info = files_[vf.File()->ID];
      if (info.status_file) continue;
      if (info.allowed && info.trusted) return info.origin;
      if (fallback.empty()) fallback = info.origin;
    }
    return fallback.empty() ? "now" : fallback;
  }
  bool RequiresAppRestart(const pkgCache::VerIterator& v) {
    if (policy_.ignore_apps_require_restart()) return false;
    AppRestart& known = app_restart_[v->ID];
    if (known == AppRestart::kUnknown) {
      pkgCache::VerFileIterator vf = v.FileList();
      known = !vf.end() && ReadAppRestart(vf) ? AppRestart::kYes : AppRestart::kNo;
    }
    return known == AppRestart::kYes;
  }
  bool ReadAppRestart(const pkgCache::VerFileIterator& vf) {
    if (records_ == nullptr) records_ = std::make_unique<pkgRecords>(*cache_);
    pkgRecords::Parser& parser = records_->Lookup(vf);
    return absl::StripAsciiWhitespace(parser.RecordField("Upgrade-Requires")) == "app-restart";
  }

  // Reads Upgrade-Requires of every version that can be upgraded to, before anything asks.
  // Records of compressed lists (lz4, gz) can only be read forwards: a jump back
  // decompresses the file again from its start. So the records are read per file in
  // offset order, which costs one pass over each file at most.
  void ReadAppRestartInFileOrder() {
    if (policy_.ignore_apps_require_restart()) return;
    pkgDepCache& d = *depcache_;
    std::vector<std::pair<pkgCache::VerFileIterator, map_id_t>> wanted;
    for (const pkgCache::PkgIterator& p : installed_) {
      pkgCache::VerIterator cand = d[p].CandidateVerIter(d);
      if (cand.end() || cand == p.CurrentVer() || Cmp(cand, p.CurrentVer()) <= 0) continue;
      if (app_restart_[cand->ID] != AppRestart::kUnknown) continue;
      pkgCache::VerFileIterator vf = cand.FileList();
      if (vf.end()) {
        app_restart_[cand->ID] = AppRestart::kNo;
        continue;
      }
      wanted.emplace_back(vf, cand->ID);
    }
    std::sort(wanted.begin(), wanted.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.first.File()->ID, a.first->Offset) <
             std::make_pair(b.first.File()->ID, b.first->Offset);
    });
    for (const auto& [vf, id] : wanted) {
      app_restart_[id] = ReadAppRestart(vf) ? AppRestart::kYes : AppRestart::kNo;
    }
  }

  // Why `p` is not even tried; nullopt when it is a candidate.
  std::optional<std::string> PreCheck(const pkgCache::PkgIterator& p,
                                      const pkgCache::VerIterator& current,
                                      const pkgCache::VerIterator& newest) {
    if (std::string hold = HoldReason(p); !hold.empty()) return hold;
    if (std::optional<std::string> re = policy_.BlacklistMatch(p.Name())) {
      return absl::StrCat("blacklisted (Package-Blacklist \"", *re, "\")");
    }
    if (!policy_.Whitelisted(p.Name())) return std::string("not in Package-Whitelist");
    pkgCache::VerIterator cand = (*depcache_)[p].CandidateVerIter(*depcache_);
    if (cand.end() || Cmp(cand, current) <= 0) {
      for (pkgCache::VerIterator v = p.VersionList(); !v.end(); ++v) {
        if (Cmp(v, current) > 0 && VersionAllowed(v)) {
          return absl::StrCat("the allowed version ", v.VerStr(),
                              " has a lower pin priority than the installed one");
        }
      }
      return absl::StrCat("newer version ", newest.VerStr(),
                          " is only available from a disallowed origin (", OriginOf(newest), ")");
    }
    if (!VersionTrusted(cand)) {
      return absl::StrCat("version ", cand.VerStr(), " is not from a trusted source (",
                          OriginOf(cand), ")");
    }
    if (RequiresAppRestart(cand)) {
      return absl::StrCat("version ", cand.VerStr(),
                          " has Upgrade-Requires: app-restart (IgnoreAppsRequireRestart is off)");
    }
    return std::nullopt;
  }

  void MarkUpgrade(const pkgCache::PkgIterator& p) {
    pkgDepCache& d = *depcache_;
    _error->PushToStack();
    d.MarkInstall(p, true, 0, false);
    if (d.BrokenCount() > 0) {
      pkgProblemResolver fix(&d);
      fix.Clear(p);
      fix.Protect(p);
      fix.Resolve(true);
    }
    _error->RevertToStack();
  }

  void Rewind(const std::vector<pkgCache::PkgIterator>& accepted) {
    depcache_->Init(nullptr);
    for (const pkgCache::PkgIterator& p : accepted) MarkUpgrade(p);
  }

  // "blk >= 1.1", from a dependency of a package being installed, else "blk 1.1".
  std::string Needed(const pkgCache::PkgIterator& p, const pkgCache::PkgIterator& q) {
    pkgDepCache& d = *depcache_;
    std::string found;
    auto search = [&](const pkgCache::PkgIterator& from) {
      pkgCache::VerIterator v = d[from].InstVerIter(d);
      if (v.end()) return false;
      for (pkgCache::DepIterator dep = v.DependsList(); !dep.end(); ++dep) {
        if (dep.IsNegative() || dep.TargetPkg() != q) continue;
        found = DependencyText(dep);
        if (from != p) found = absl::StrCat(found, " (through ", from.FullName(true), ")");
        return true;
      }
      return false;
    };
    if (search(p)) return found;
    for (const pkgCache::PkgIterator& r : all_) {
      if (d[r].Install() && search(r)) return found;
    }
    pkgCache::VerIterator v = d[q].InstVerIter(d);
    return absl::StrCat(q.FullName(true), v.end() ? "" : absl::StrCat(" ", v.VerStr()));
  }

  static std::string DependencyText(const pkgCache::DepIterator& dep) {
    std::string text = dep.TargetPkg().FullName(true);
    if (dep.TargetVer() != nullptr) {
      absl::StrAppend(&text, " ", dep.CompType(), " ", dep.TargetVer());
    }
    return text;
  }

  // Why `q` cannot satisfy `dep` (a positive dependency), as "which ...".
  std::string WhyUnsatisfiable(const pkgCache::DepIterator& dep) {
    pkgCache::PkgIterator q = dep.TargetPkg();
    if (q->CurrentVer != 0 || !q.VersionList().end()) {
      if (std::string hold = HoldReason(q); !hold.empty()) return "which is held";
      if (policy_.Blacklisted(q.Name())) return "which is blacklisted";
    }
    bool any = false, any_allowed = false;
    for (pkgCache::VerIterator v = q.VersionList(); !v.end(); ++v) {
      if (dep.TargetVer() != nullptr &&
          !debVS.CheckDep(v.VerStr(), dep->CompareOp, dep.TargetVer())) {
        continue;
      }
      any = true;
      if (VersionAllowed(v)) any_allowed = true;
    }
    if (!any) return "which is not available";
    if (!any_allowed) return "which is only available from a disallowed origin";
    return "which cannot be installed";
  }

  std::string ExplainBroken(const pkgCache::PkgIterator& p) {
    pkgDepCache& d = *depcache_;
    std::vector<pkgCache::PkgIterator> broken;
    if (d[p].InstBroken()) broken.push_back(p);
    for (const pkgCache::PkgIterator& q : all_) {
      if (q != p && d[q].InstBroken()) broken.push_back(q);
    }
    for (const pkgCache::PkgIterator& b : broken) {
      pkgCache::VerIterator v = d[b].InstVerIter(d);
      if (v.end()) continue;
      for (pkgCache::DepIterator dep = v.DependsList(); !dep.end();) {
        pkgCache::DepIterator start, end;
        dep.GlobOr(start, end);
        if (!d.IsImportantDep(end)) continue;
        if ((d[end] & pkgDepCache::DepGInstall) == pkgDepCache::DepGInstall) continue;
        std::string problem;
        if (start.IsNegative()) {
          pkgCache::PkgIterator t = start.TargetPkg();
          std::string why = HoldReason(t).empty()
                                ? (policy_.Blacklisted(t.Name()) ? ", which is blacklisted" : "")
                                : ", which is held";
          problem =
              absl::StrCat(start->Type == pkgCache::Dep::Conflicts ? "conflicts with " : "breaks ",
                           DependencyText(start), why);
        } else {
          problem = absl::StrCat("needs ", DependencyText(start), ", ", WhyUnsatisfiable(start));
        }
        if (b == p) return problem;
        return absl::StrCat("would break ", b.FullName(true), ", which ", problem);
      }
    }
    return "the upgrade leaves broken packages";
  }

  // MarkInstall refused `p`: name the candidate's dependency no allowed version satisfies.
  std::string ExplainNotMarked(const pkgCache::PkgIterator& p) {
    pkgDepCache& d = *depcache_;
    // The resolver may have reset the depcache's candidate; ask the policy.
    pkgCache::VerIterator cand = cf_.GetPolicy()->GetCandidateVer(p);
    if (cand.end()) return "has no installable candidate";
    for (pkgCache::DepIterator dep = cand.DependsList(); !dep.end();) {
      pkgCache::DepIterator start, end;
      dep.GlobOr(start, end);
      if (!d.IsImportantDep(end) || start.IsNegative()) continue;
      bool satisfiable = false;
      for (pkgCache::DepIterator member = start;; ++member) {
        pkgCache::PkgIterator t = member.TargetPkg();
        for (pkgCache::VerIterator v : {d[t].CandidateVerIter(d), t.CurrentVer()}) {
          if (v.end()) continue;
          if (v != t.CurrentVer() && cf_.GetPolicy()->GetPriority(v) < 0) continue;
          if (member.TargetVer() == nullptr ||
              debVS.CheckDep(v.VerStr(), member->CompareOp, member.TargetVer())) {
            satisfiable = true;
          }
        }
        for (pkgCache::PrvIterator prv = t.ProvidesList(); !prv.end(); ++prv) {
          pkgCache::VerIterator owner = prv.OwnerVer();
          pkgCache::PkgIterator owner_pkg = owner.ParentPkg();
          if (owner == owner_pkg.CurrentVer() || (owner == d[owner_pkg].CandidateVerIter(d) &&
                                                  cf_.GetPolicy()->GetPriority(owner) >= 0)) {
            satisfiable = true;
          }
        }
        if (member == end) break;
      }
      if (!satisfiable) {
        return absl::StrCat("needs ", DependencyText(start), ", ", WhyUnsatisfiable(start));
      }
    }
    return "could not be marked for upgrade (its dependencies cannot be resolved)";
  }

  // unattended-upgrades' sanity check of the whole change set after marking `p`.
  std::string Sanity(const pkgCache::PkgIterator& p) {
    if (std::string why = CheckChangeSet(p); !why.empty()) return why;
    if (!(*depcache_)[p].Install()) return ExplainNotMarked(p);
    return "";
  }

  // Why the change set marked for `p` breaks a rule; empty when it does not.
  std::string CheckChangeSet(const pkgCache::PkgIterator& p) {
    pkgDepCache& d = *depcache_;
    if (d.BrokenCount() != 0) return ExplainBroken(p);
    for (const pkgCache::PkgIterator& q : all_) {
      pkgDepCache::StateCache& state = d[q];
      if (state.Mode == pkgDepCache::ModeKeep) continue;
      if (state.Delete()) return absl::StrCat("would remove ", q.FullName(true));
      if (!state.Install()) continue;
      pkgCache::VerIterator v = state.InstVerIter(d);
      std::string which;
      if (!VersionTrusted(v)) {
        which = "which is not from a trusted source";
      } else if (Named(q)) {
        continue;
      } else if (!VersionAllowed(v)) {
        which = "which is only available from a disallowed origin";
      } else if (policy_.Blacklisted(q.Name())) {
        which = "which is blacklisted";
      } else if (policy_.whitelist_strict() && !policy_.Whitelisted(q.Name())) {
        which = "which is not in the Package-Whitelist (strict)";
      } else if (!HoldReason(q).empty()) {
        which = "which is held";
      } else if (state.Upgrade() && RequiresAppRestart(v)) {
        which = "whose upgrade requires an application restart";
      }
      if (which.empty()) continue;
      if (q == p) return absl::StrCat("its candidate ", v.VerStr(), " is refused: ", which);
      return absl::StrCat("needs ", Needed(p, q), ", ", which);
    }
    return "";
  }

  const UpgradePolicy& policy_;
  pkgCacheFile& cf_;
  pkgCache* cache_ = nullptr;
  pkgDepCache* depcache_ = nullptr;
  std::unique_ptr<pkgRecords> records_;  // Opened on the first record read.
  enum class AppRestart : uint8_t { kUnknown, kNo, kYes };
  std::vector<AppRestart> app_restart_;  // Upgrade-Requires, by version ID.
  std::vector<FileInfo> files_;
  std::vector<pkgCache::PkgIterator> all_;
  std::vector<pkgCache::PkgIterator> installed_;
  std::vector<bool> named_;  // By package ID: named by InstallPinned.
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

class AptPackageManager : public PackageManager {
 public:
  AptPackageManager(AptOptions options, UpgradePolicy policy)
      : options_(std::move(options)),
        root_(options_.root),
        policy_(std::move(policy)),
        clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

  ~AptPackageManager() override {
    if (configured_for_ == this) configured_for_ = nullptr;
  }

  // Sets libapt-pkg's global configuration for `root`; confined before anything is read.
  static absl::Status ConfigureApt(const RootPath& root) {
    _config->Clear();
    _error->Discard();
    if (!root.is_host_root()) {
      const std::string& r = root.root();
      _config->Set("Dir", r + "/");
      _config->Set("Dir::State::status", r + "/var/lib/dpkg/status");
      _config->Set("DPkg::Options::", "--root=" + r);
      _config->Set("DPkg::Options::", "--force-script-chrootless");
      _config->Set("DPkg::Options::", "--log=" + r + "/var/log/dpkg.log");
    }
    std::optional<std::string> apt_config_env;
    if (const char* env = getenv("APT_CONFIG"); env != nullptr) apt_config_env = env;
    if (!root.is_host_root()) unsetenv("APT_CONFIG");
    bool ok = pkgInitConfig(*_config);
    if (apt_config_env.has_value()) setenv("APT_CONFIG", apt_config_env->c_str(), 1);
    if (!ok) return AptError("cannot read the apt configuration");
    _config->Set("DPkg::Options::", "--force-confdef");
    _config->Set("DPkg::Options::", "--force-confold");
    _config->Set("Dpkg::Use-Pty", "0");
    // Plans are built in memory: no pkgcache.bin is written.
    _config->Set("Dir::Cache::pkgcache", "");
    _config->Set("Dir::Cache::srcpkgcache", "");
    if (!pkgInitSystem(*_config, _system)) return AptError("cannot initialize the apt system");
    return absl::OkStatus();
  }

  static absl::StatusOr<AptConfigPolicy> ReadConfigPolicy() {
    AptConfigPolicy p;
    p.allowed_origins = _config->FindVector("Unattended-Upgrade::Allowed-Origins");
    p.origins_pattern = _config->FindVector("Unattended-Upgrade::Origins-Pattern");
    p.blacklist = _config->FindVector("Unattended-Upgrade::Package-Blacklist");
    p.whitelist = _config->FindVector("Unattended-Upgrade::Package-Whitelist");
    p.whitelist_strict = _config->FindB("Unattended-Upgrade::Package-Whitelist-Strict", false);
    p.ignore_apps_require_restart =
        _config->FindB("Unattended-Upgrade::IgnoreAppsRequireRestart", false);
    return p;
  }

  absl::Status EnsureConfigured() {
    if (configured_for_ == this) return absl::OkStatus();
    RETURN_IF_ERROR(ConfigureApt(root_));
    configured_for_ = this;
    return absl::OkStatus();
  }
  void MarkConfigured() { configured_for_ = this; }

  absl::Status Update() override {
    RETURN_IF_ERROR(EnsureConfigured());
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
    RETURN_IF_ERROR(EnsureConfigured());
    pkgCacheFile cache_file;
    Planner planner(policy_, cache_file);
    RETURN_IF_ERROR(planner.Open());
    return planner.Compute(nullptr).plan;
  }

  absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress) override {
    RETURN_IF_ERROR(EnsureConfigured());
    ASSIGN_OR_RETURN(DpkgInterruption found, InspectDpkg(AdminDir()));
    if (!found.interrupted()) return false;
    std::vector<std::string> what = found.unfinished;
    for (const std::string& f : found.journal_files) what.push_back("updates/" + f);
    Logger("apt")->warn("dpkg was interrupted ({}); running dpkg --configure -a",
                        absl::StrJoin(what, ", "));
    Report(progress, ApplyProgress::Stage::kRepairing, "", 0,
           absl::StrCat("dpkg was interrupted: ", absl::StrJoin(what, ", ")));
    // Like dpkg itself, hold the frontend lock; apt's Lock() would refuse on this journal.
    ASSIGN_OR_RETURN(DpkgLockFile lock, WaitForFrontendLock(progress));
    ASSIGN_OR_RETURN(ProcessResult run, RunDpkg({"--configure", "-a"}, ""));
    if (run.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("dpkg --configure -a exited with ", run.exit_code, ": ", run.output));
    }
    ASSIGN_OR_RETURN(DpkgInterruption after, InspectDpkg(AdminDir()));
    if (after.interrupted()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dpkg --configure -a left packages unfinished: ", absl::StrJoin(after.unfinished, ", "),
          after.journal_files.empty() ? "" : " (journal not empty)"));
    }
    Report(progress, ApplyProgress::Stage::kRepairing, "", 100, "dpkg repaired");
    return true;
  }

  absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan,
                                    const ProgressCallback& progress) override {
    Requested requested;
    for (const PackageUpgrade& u : plan.upgrades) {
      if (!u.from.empty()) requested[u.package] = u.to;
    }
    auto mark = [&](Planner& planner, ApplyResult& result) {
      PlanOutcome outcome = planner.Compute(&requested);
      result.skipped = outcome.skipped;
      result.installed = outcome.plan.upgrades;
      return absl::OkStatus();
    };
    return Install(mark, "the upgrades", progress);
  }

  absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                            const ProgressCallback& progress) override {
    std::map<std::string, std::string> seen;
    for (const PinnedVersion& pin : packages) {
      if (pin.package.empty() || pin.version.empty()) {
        return absl::InvalidArgumentError("a pinned install needs a package and a version");
      }
      auto [it, inserted] = seen.emplace(pin.package, pin.version);
      if (!inserted && it->second != pin.version) {
        return absl::InvalidArgumentError(absl::StrCat(pin.package, " is named with versions ",
                                                       it->second, " and ", pin.version));
      }
    }
    auto mark = [&](Planner& planner, ApplyResult& result) -> absl::Status {
      ASSIGN_OR_RETURN(result.installed, planner.MarkPinned(packages));
      return absl::OkStatus();
    };
    return Install(mark, "the pinned versions", progress);
  }

  absl::Status Hold(const std::vector<std::string>& packages) override {
    return SetSelections(packages, "hold");
  }
  absl::Status Unhold(const std::vector<std::string>& packages) override {
    return SetSelections(packages, "install");
  }

  absl::StatusOr<std::vector<std::string>> Holds() override {
    ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> entries, ReadDpkgStatus(StatusPath()));
    return HeldPackages(entries);
  }

  absl::StatusOr<RebootRequirement> RebootRequired() override {
    ASSIGN_OR_RETURN(RebootSentinel sentinel, ReadRebootSentinel(root_));
    RebootRequirement out;
    out.required = sentinel.exists;
    out.packages = sentinel.packages;
    ASSIGN_OR_RETURN(std::string kernel, NewerKernel());
    if (!kernel.empty()) {
      out.required = true;
      if (std::find(out.packages.begin(), out.packages.end(), kernel) == out.packages.end()) {
        out.packages.push_back(kernel);
      }
    }
    return out;
  }

 private:
  // What Apply and InstallPinned mark on the planner's fresh cache: fills `installed` (and
  // `skipped`) and leaves exactly that change set marked. An error stops before any change.
  using MarkChanges = std::function<absl::Status(Planner&, ApplyResult&)>;

  // Repair, lock, mark, verified download, DoInstall, re-hold and reboot detection.
  absl::StatusOr<ApplyResult> Install(const MarkChanges& mark, absl::string_view what,
                                      const ProgressCallback& progress) {
    RETURN_IF_ERROR(EnsureConfigured());
    ApplyResult result;
    ASSIGN_OR_RETURN(result.repaired_dpkg, RepairInterruptedDpkg(progress));
    RETURN_IF_ERROR(LockSystem(progress));
    absl::Cleanup unlock = [] {
      _system->UnLock(true);
      _error->Discard();
    };

    ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> before, ReadDpkgStatus(StatusPath()));
    std::vector<std::string> wanted_holds = HeldPackages(before);
    for (const std::string& h : policy_.configured_holds()) wanted_holds.push_back(h);
    bool sentinel_before = PathExists(root_.Resolve("/var/run/reboot-required"));

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
      Report(progress, ApplyProgress::Stage::kDownloading, "", 0, "downloading packages");
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
        return absl::UnavailableError(
            absl::StrCat("cannot download: ", absl::StrJoin(failed, "; ")));
      }

      for (const auto& [name, value] : kMaintainerScriptEnvironment) setenv(name, value, 1);
      InstallProgress install_progress(progress, root_.Resolve("/var/run/reboot-required"));
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
    if (!sentinel_before && PathExists(root_.Resolve("/var/run/reboot-required"))) {
      reboot_packages = sentinel_packages;
      if (reboot_packages.empty() && !result.installed.empty()) {
        reboot_packages.push_back(result.installed.back().package);
      }
    }
    ASSIGN_OR_RETURN(std::string kernel, NewerKernel());
    if (!kernel.empty()) reboot_packages.push_back(kernel);
    if (!reboot_packages.empty()) {
      RETURN_IF_ERROR(WriteRebootSentinel(root_, reboot_packages));
    }
    ASSIGN_OR_RETURN(result.reboot, RebootRequired());
    if (!install_status.ok()) return install_status;
    return result;
  }

  std::string AdminDir() const { return root_.Resolve("/var/lib/dpkg"); }
  std::string StatusPath() const { return root_.Resolve("/var/lib/dpkg/status"); }

  absl::StatusOr<std::string> NewerKernel() const {
    std::string osrelease_path = root_.Resolve("/proc/sys/kernel/osrelease");
    if (!PathExists(osrelease_path)) return std::string();
    ASSIGN_OR_RETURN(std::string running, ReadFileToString(osrelease_path));
    ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> entries, ReadDpkgStatus(StatusPath()));
    std::vector<std::string> installed;
    for (const DpkgStatusEntry& e : entries) {
      if (e.status == "installed") installed.push_back(e.package);
    }
    return NewerKernelPackage(installed, std::string(absl::StripAsciiWhitespace(running)));
  }

  // dpkg confined to the root, keeping conffiles, never prompting. The caller holds (or
  // owns through apt) the frontend lock.
  absl::StatusOr<ProcessResult> RunDpkg(const std::vector<std::string>& args,
                                        const std::string& stdin_data) {
    std::vector<std::string> argv = {_config->Find("Dir::Bin::dpkg", "/usr/bin/dpkg")};
    if (!root_.is_host_root()) {
      argv.push_back("--root=" + root_.root());
      argv.push_back("--force-script-chrootless");
      argv.push_back("--log=" + root_.Resolve("/var/log/dpkg.log"));
    }
    argv.push_back("--force-confdef");
    argv.push_back("--force-confold");
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = {"DPKG_FRONTEND_LOCKED=1"};
    for (const auto& [name, value] : kMaintainerScriptEnvironment) {
      env.push_back(absl::StrCat(name, "=", value));
    }
    return RunProcess(argv, env, stdin_data);
  }

  absl::StatusOr<std::vector<std::string>> Rehold(const std::vector<std::string>& wanted,
                                                  const ProgressCallback& progress) {
    ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> now, ReadDpkgStatus(StatusPath()));
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
    Report(progress, ApplyProgress::Stage::kHolding, "", 0,
           absl::StrCat("holding ", absl::StrJoin(missing, ", ")));
    std::string selections;
    for (const std::string& m : missing) absl::StrAppend(&selections, m, " hold\n");
    ASSIGN_OR_RETURN(ProcessResult run, RunDpkg({"--set-selections"}, selections));
    if (run.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("dpkg --set-selections exited with ", run.exit_code, ": ", run.output));
    }
    return missing;
  }

  absl::Status SetSelections(const std::vector<std::string>& packages, const std::string& state) {
    if (packages.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(EnsureConfigured());
    ASSIGN_OR_RETURN(DpkgLockFile lock, WaitForFrontendLock(nullptr));
    std::string selections;
    for (const std::string& p : packages) absl::StrAppend(&selections, p, " ", state, "\n");
    ASSIGN_OR_RETURN(ProcessResult run, RunDpkg({"--set-selections"}, selections));
    if (run.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("dpkg --set-selections exited with ", run.exit_code, ": ", run.output));
    }
    return absl::OkStatus();
  }

  // Waits (bounded) until no other process holds lock-frontend or lock, then takes
  // lock-frontend itself.
  absl::StatusOr<DpkgLockFile> WaitForFrontendLock(const ProgressCallback& progress) {
    const std::string frontend = AdminDir() + "/lock-frontend";
    return WaitForLock<DpkgLockFile>(progress, [&]() -> absl::StatusOr<DpkgLockFile> {
      ASSIGN_OR_RETURN(pid_t inner, LockHolder(AdminDir() + "/lock"));
      if (inner != 0) {
        return absl::UnavailableError(absl::StrCat("dpkg lock held by process ", inner));
      }
      return DpkgLockFile::TryAcquire(frontend);
    });
  }

  // apt's own Lock() (lock-frontend, then lock), retried while another process has them.
  absl::Status LockSystem(const ProgressCallback& progress) {
    absl::StatusOr<bool> locked = WaitForLock<bool>(progress, [&]() -> absl::StatusOr<bool> {
      for (const char* name : {"/lock-frontend", "/lock"}) {
        ASSIGN_OR_RETURN(pid_t holder, LockHolder(AdminDir() + name));
        if (holder != 0) {
          return absl::UnavailableError(absl::StrCat("dpkg lock held by process ", holder));
        }
      }
      _error->PushToStack();
      bool ok = _system->Lock();
      std::string errors = DrainAptErrors();
      _error->RevertToStack();
      if (ok) return true;
      ASSIGN_OR_RETURN(DpkgInterruption found, InspectDpkg(AdminDir()));
      if (found.interrupted()) {
        return absl::FailedPreconditionError(absl::StrCat("dpkg is interrupted: ", errors));
      }
      return absl::UnavailableError(absl::StrCat("cannot lock dpkg: ", errors));
    });
    return locked.status();
  }

  template <typename T, typename F>
  absl::StatusOr<T> WaitForLock(const ProgressCallback& progress, F try_once) {
    const absl::Time deadline = clock_.Now() + options_.lock_timeout;
    bool reported = false;
    while (true) {
      absl::StatusOr<T> attempt = try_once();
      if (attempt.ok() || !absl::IsUnavailable(attempt.status())) return attempt;
      if (clock_.Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("gave up after ",
                                                        absl::FormatDuration(options_.lock_timeout),
                                                        ": ", attempt.status().message()));
      }
      if (!reported) {
        reported = true;
        Logger("apt")->info("waiting for the dpkg lock: {}", attempt.status().message());
        Report(progress, ApplyProgress::Stage::kWaitingForLock, "", 0,
               std::string(attempt.status().message()));
      }
      absl::SleepFor(options_.lock_poll_interval);
    }
  }

  static inline const AptPackageManager* configured_for_ = nullptr;

  AptOptions options_;
  RootPath root_;
  UpgradePolicy policy_;
  const Clock& clock_;
};

}  // namespace

int CompareDebianVersions(const std::string& a, const std::string& b) {
  return debVS.CmpVersion(a, b);
}

std::string NewerKernelPackage(const std::vector<std::string>& installed_packages,
                               const std::string& running_release) {
  constexpr absl::string_view kPrefix = "linux-image-";
  std::string best_release = running_release;
  std::string best_package;
  for (const std::string& name : installed_packages) {
    if (!absl::StartsWith(name, kPrefix) || name.size() == kPrefix.size()) continue;
    std::string release = name.substr(kPrefix.size());
    if (!absl::ascii_isdigit(static_cast<unsigned char>(release[0]))) continue;  // Metapackage.
    if (absl::EndsWith(release, "-dbg") || absl::EndsWith(release, "-unsigned")) continue;
    if (debVS.CmpVersion(release, best_release) > 0) {
      best_release = release;
      best_package = name;
    }
  }
  return best_package;
}

absl::StatusOr<std::unique_ptr<PackageManager>> CreateAptPackageManager(const AptOptions& options) {
  RootPath root(options.root);
  if (!PathExists(root.Resolve("/var/lib/dpkg/status"))) {
    return absl::FailedPreconditionError(
        absl::StrCat("no dpkg database at ", root.Resolve("/var/lib/dpkg/status")));
  }
  RETURN_IF_ERROR(AptPackageManager::ConfigureApt(root));
  ASSIGN_OR_RETURN(AptConfigPolicy from_apt, AptPackageManager::ReadConfigPolicy());
  ASSIGN_OR_RETURN(DistroInfo distro, ReadDistroInfo(root));
  ASSIGN_OR_RETURN(UpgradePolicy policy, UpgradePolicy::Create(from_apt, options.policy, distro));
  auto manager = std::make_unique<AptPackageManager>(options, std::move(policy));
  manager->MarkConfigured();
  return manager;
}

}  // namespace tended::agent::apt
