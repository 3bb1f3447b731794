#include "agent/apt/engine/apt_system.h"

#include <apt-pkg/acquire-item.h>
#include <apt-pkg/configuration.h>
#include <apt-pkg/debversion.h>
#include <apt-pkg/error.h>
#include <apt-pkg/init.h>
#include <apt-pkg/pkgsystem.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "common/logging.h"
#include "common/node_file.h"
#include "common/status_macros.h"

namespace tended::agent::apt {

std::string Str(const char* s) { return s == nullptr ? "" : s; }

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

void ReportProgress(const ProgressCallback& progress, ApplyProgress::Stage stage,
                    std::string package, double percent, std::string message) {
  if (!progress) return;
  ApplyProgress event;
  event.stage = stage;
  event.package = std::move(package);
  event.percent = percent;
  event.message = std::move(message);
  progress(event);
}

absl::Status OpenAptCache(pkgCacheFile& cache_file) {
  _error->PushToStack();
  bool ok = cache_file.BuildCaches(nullptr, false) && cache_file.BuildPolicy(nullptr);
  if (!ok) return AptError("cannot open the package cache");
  _error->MergeWithStack();
  return absl::OkStatus();
}

void QuietAcquireStatus::Fail(pkgAcquire::ItemDesc& item) {
  if (item.Owner != nullptr && item.Owner->Status == pkgAcquire::Item::StatIdle) return;
  if (item.Owner != nullptr && item.Owner->Status == pkgAcquire::Item::StatDone) return;
  failures_.push_back(
      absl::StrCat(item.Description, item.Owner ? ": " + item.Owner->ErrorText : ""));
}

bool QuietAcquireStatus::Pulse(pkgAcquire* owner) {
  bool result = pkgAcquireStatus::Pulse(owner);
  ReportProgress(progress_, ApplyProgress::Stage::kDownloading, "", Percent, "downloading");
  return result;
}

AptSystem::AptSystem(AptOptions options)
    : options_(std::move(options)),
      root_(options_.root),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {}

AptSystem::~AptSystem() {
  if (configured_for_ == this) configured_for_ = nullptr;
}

absl::Status AptSystem::ConfigureApt(const RootPath& root) {
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

AptConfigPolicy AptSystem::ReadConfigPolicy() {
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

absl::Status AptSystem::EnsureConfigured() {
  if (configured_for_ == this) return absl::OkStatus();
  RETURN_IF_ERROR(ConfigureApt(root_));
  configured_for_ = this;
  return absl::OkStatus();
}

void AptSystem::MarkConfigured() { configured_for_ = this; }

template <typename T, typename F>
absl::StatusOr<T> AptSystem::WaitForLock(const ProgressCallback& progress, F try_once) {
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
      ReportProgress(progress, ApplyProgress::Stage::kWaitingForLock, "", 0,
                     std::string(attempt.status().message()));
    }
    absl::SleepFor(options_.lock_poll_interval);
  }
}

absl::StatusOr<DpkgLockFile> AptSystem::WaitForFrontendLock(const ProgressCallback& progress) {
  const std::string frontend = AdminDir() + "/lock-frontend";
  return WaitForLock<DpkgLockFile>(progress, [&]() -> absl::StatusOr<DpkgLockFile> {
    ASSIGN_OR_RETURN(pid_t inner, LockHolder(AdminDir() + "/lock"));
    if (inner != 0) {
      return absl::UnavailableError(absl::StrCat("dpkg lock held by process ", inner));
    }
    return DpkgLockFile::TryAcquire(frontend);
  });
}

absl::Status AptSystem::LockSystem(const ProgressCallback& progress) {
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

void AptSystem::UnlockSystem() {
  _system->UnLock(true);
  _error->Discard();
}

absl::StatusOr<ProcessResult> AptSystem::RunDpkg(const std::vector<std::string>& args,
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

absl::StatusOr<RebootRequirement> AptSystem::RebootRequired() const {
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

absl::StatusOr<std::string> AptSystem::NewerKernel() const {
  constexpr size_t kKernelReleaseMaxBytes = 4 * 1024;
  absl::StatusOr<std::string> running =
      ReadNodeFile(root_, "/proc/sys/kernel/osrelease", kKernelReleaseMaxBytes);
  if (absl::IsNotFound(running.status())) return std::string();
  if (!running.ok()) return running.status();
  ASSIGN_OR_RETURN(std::vector<DpkgStatusEntry> entries, ReadDpkgStatus(StatusPath()));
  std::vector<std::string> installed;
  for (const DpkgStatusEntry& e : entries) {
    if (e.status == "installed") installed.push_back(e.package);
  }
  return NewerKernelPackage(installed, std::string(absl::StripAsciiWhitespace(*running)));
}

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

}  // namespace tended::agent::apt
