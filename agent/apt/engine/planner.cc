#include "agent/apt/engine/planner.h"

#include <apt-pkg/algorithms.h>
#include <apt-pkg/debversion.h>
#include <apt-pkg/error.h>
#include <apt-pkg/indexfile.h>
#include <apt-pkg/policy.h>
#include <apt-pkg/sourcelist.h>
#include <apt-pkg/version.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/apt/engine/apt_system.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

constexpr short kNeverPin = -32768;

}  // namespace

absl::Status Planner::Open() {
  RETURN_IF_ERROR(OpenAptCache(cf_));
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

PlanOutcome Planner::Compute(const Requested* requested) {
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
      std::string why = Sanity(p, requested);
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

absl::StatusOr<std::vector<PackageUpgrade>> Planner::MarkPinned(
    const std::vector<PinnedVersion>& pinned) {
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

std::vector<PackageUpgrade> Planner::Changes() {
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

bool Planner::Named(const pkgCache::PkgIterator& p) const {
  return p->ID < named_.size() && named_[p->ID];
}

int Planner::Cmp(const pkgCache::VerIterator& a, const pkgCache::VerIterator& b) const {
  return debVS.CmpVersion(a.VerStr(), b.VerStr());
}

std::string Planner::HoldReason(const pkgCache::PkgIterator& p) const {
  if (p->SelectedState == pkgCache::State::Hold) return "held (dpkg hold)";
  if (policy_.ConfiguredHold(p.Name())) return "held (tended holds)";
  return "";
}

bool Planner::VersionAllowed(const pkgCache::VerIterator& v) const {
  for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
    if (files_[vf.File()->ID].allowed) return true;
  }
  return false;
}

bool Planner::VersionTrusted(const pkgCache::VerIterator& v) const {
  for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
    if (files_[vf.File()->ID].trusted) return true;
  }
  return false;
}

std::string Planner::OriginOf(const pkgCache::VerIterator& v) const {
  std::string fallback;
  for (pkgCache::VerFileIterator vf = v.FileList(); !vf.end(); ++vf) {
    const FileInfo& info = files_[vf.File()->ID];
    if (info.status_file) continue;
    if (info.allowed && info.trusted) return info.origin;
    if (fallback.empty()) fallback = info.origin;
  }
  return fallback.empty() ? "now" : fallback;
}

bool Planner::RequiresAppRestart(const pkgCache::VerIterator& v) {
  if (policy_.ignore_apps_require_restart()) return false;
  AppRestart& known = app_restart_[v->ID];
  if (known == AppRestart::kUnknown) {
    pkgCache::VerFileIterator vf = v.FileList();
    known = !vf.end() && ReadAppRestart(vf) ? AppRestart::kYes : AppRestart::kNo;
  }
  return known == AppRestart::kYes;
}

bool Planner::ReadAppRestart(const pkgCache::VerFileIterator& vf) {
  if (records_ == nullptr) records_ = std::make_unique<pkgRecords>(*cache_);
  pkgRecords::Parser& parser = records_->Lookup(vf);
  return absl::StripAsciiWhitespace(parser.RecordField("Upgrade-Requires")) == "app-restart";
}

// Reads Upgrade-Requires of every version that can be upgraded to, before anything asks.
// Records of compressed lists (lz4, gz) can only be read forwards: a jump back
// decompresses the file again from its start. So the records are read per file in
// offset order, which costs one pass over each file at most.
void Planner::ReadAppRestartInFileOrder() {
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

std::optional<std::string> Planner::PreCheck(const pkgCache::PkgIterator& p,
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

void Planner::MarkUpgrade(const pkgCache::PkgIterator& p) {
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

void Planner::Rewind(const std::vector<pkgCache::PkgIterator>& accepted) {
  depcache_->Init(nullptr);
  for (const pkgCache::PkgIterator& p : accepted) MarkUpgrade(p);
}

// "blk >= 1.1", from a dependency of a package being installed, else "blk 1.1".
std::string Planner::Needed(const pkgCache::PkgIterator& p, const pkgCache::PkgIterator& q) {
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

std::string Planner::DependencyText(const pkgCache::DepIterator& dep) {
  std::string text = dep.TargetPkg().FullName(true);
  if (dep.TargetVer() != nullptr) {
    absl::StrAppend(&text, " ", dep.CompType(), " ", dep.TargetVer());
  }
  return text;
}

// Why `q` cannot satisfy `dep` (a positive dependency), as "which ...".
std::string Planner::WhyUnsatisfiable(const pkgCache::DepIterator& dep) {
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

std::string Planner::ExplainBroken(const pkgCache::PkgIterator& p) {
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
std::string Planner::ExplainNotMarked(const pkgCache::PkgIterator& p) {
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

std::string Planner::Sanity(const pkgCache::PkgIterator& p, const Requested* requested) {
  if (std::string why = CheckChangeSet(p); !why.empty()) return why;
  if (!(*depcache_)[p].Install()) return ExplainNotMarked(p);
  if (requested != nullptr) return OutsideRequested(*requested);
  return "";
}

std::string Planner::CheckChangeSet(const pkgCache::PkgIterator& p) {
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

std::string Planner::OutsideRequested(const Requested& requested) {
  pkgDepCache& d = *depcache_;
  for (const pkgCache::PkgIterator& q : all_) {
    pkgDepCache::StateCache& state = d[q];
    if (!state.Install()) continue;
    pkgCache::VerIterator v = state.InstVerIter(d);
    std::string name = q.FullName(true);
    auto it = requested.find(name);
    if (it != requested.end() && it->second == v.VerStr()) continue;
    return absl::StrCat("would also install ", name, " ", v.VerStr(), ", which is not in the plan",
                        it == requested.end() ? "" : absl::StrCat(" (it has ", it->second, ")"));
  }
  return "";
}

}  // namespace tended::agent::apt
