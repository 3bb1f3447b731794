// Internal to the apt engine (includes libapt-pkg headers): libapt-pkg's process-wide
// configuration confined to one root, opening the package cache, the dpkg locks, running
// dpkg confined to the root, whether a reboot is required, and the helpers the planner and
// the installer share (apt's error stack, progress events, a quiet download status).
#ifndef TENDED_AGENT_APT_ENGINE_APT_SYSTEM_H_
#define TENDED_AGENT_APT_ENGINE_APT_SYSTEM_H_

#include <apt-pkg/acquire.h>
#include <apt-pkg/cachefile.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/apt/engine/dpkg_state.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/subprocess.h"
#include "agent/apt/upgrade_policy.h"
#include "common/clock.h"
#include "common/root_path.h"

namespace tended::agent::apt {

// What dpkg and every maintainer script run with: debconf never asks, apt-listchanges never
// pages, and ucf (config files kept outside dpkg's conffiles, sshd_config among them)
// keeps the admin's version, as --force-confold does for conffiles.
inline constexpr std::pair<const char*, const char*> kMaintainerScriptEnvironment[] = {
    {"DEBIAN_FRONTEND", "noninteractive"},
    {"APT_LISTCHANGES_FRONTEND", "none"},
    {"UCF_FORCE_CONFFOLD", "1"},
};

inline constexpr char kRebootSentinelPath[] = "/var/run/reboot-required";

std::string Str(const char* s);

// Pops every pending libapt-pkg message; returns the errors (warnings are logged).
std::string DrainAptErrors();
// INTERNAL: `what`, with libapt-pkg's pending errors.
absl::Status AptError(absl::string_view what);

void ReportProgress(const ProgressCallback& progress, ApplyProgress::Stage stage,
                    std::string package, double percent, std::string message);

// Builds the package cache and the pin policy in memory (nothing is written).
absl::Status OpenAptCache(pkgCacheFile& cache_file);

// Collects download failures, and forwards download progress when given a callback.
class QuietAcquireStatus : public pkgAcquireStatus {
 public:
  explicit QuietAcquireStatus(ProgressCallback progress = nullptr)
      : progress_(std::move(progress)) {}
  bool MediaChange(std::string, std::string) override { return false; }
  void Fail(pkgAcquire::ItemDesc& item) override;
  bool Pulse(pkgAcquire* owner) override;
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  ProgressCallback progress_;
  std::vector<std::string> failures_;
};

// libapt-pkg's global state for one root, and what runs against that root's dpkg. libapt-pkg
// keeps one configuration per process: EnsureConfigured() sets it again when another
// AptSystem configured it last.
class AptSystem {
 public:
  explicit AptSystem(AptOptions options);
  ~AptSystem();
  AptSystem(const AptSystem&) = delete;
  AptSystem& operator=(const AptSystem&) = delete;

  // Sets libapt-pkg's global configuration for `root`; confined before anything is read.
  static absl::Status ConfigureApt(const RootPath& root);
  // The Unattended-Upgrade::* values of the configuration ConfigureApt read.
  static AptConfigPolicy ReadConfigPolicy();

  absl::Status EnsureConfigured();
  // After ConfigureApt(root()) ran for this object.
  void MarkConfigured();

  // apt's own Lock() (lock-frontend, then lock), retried while another process has them,
  // until the lock timeout. Released by UnlockSystem().
  absl::Status LockSystem(const ProgressCallback& progress);
  void UnlockSystem();
  // Waits (bounded) until no other process holds lock-frontend or lock, then takes
  // lock-frontend itself.
  absl::StatusOr<DpkgLockFile> WaitForFrontendLock(const ProgressCallback& progress);

  // dpkg confined to the root, keeping conffiles, never prompting. The caller holds (or
  // owns through apt) the frontend lock.
  absl::StatusOr<ProcessResult> RunDpkg(const std::vector<std::string>& args,
                                        const std::string& stdin_data);

  // The sentinel exists, or an installed kernel is newer than the running one.
  absl::StatusOr<RebootRequirement> RebootRequired() const;
  // The linux-image package newer than the running kernel; empty when none.
  absl::StatusOr<std::string> NewerKernel() const;

  const RootPath& root() const { return root_; }
  std::string AdminDir() const { return root_.Resolve("/var/lib/dpkg"); }
  std::string StatusPath() const { return root_.Resolve("/var/lib/dpkg/status"); }

 private:
  template <typename T, typename F>
  absl::StatusOr<T> WaitForLock(const ProgressCallback& progress, F try_once);

  static inline const AptSystem* configured_for_ = nullptr;

  AptOptions options_;
  RootPath root_;
  const Clock& clock_;
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_APT_SYSTEM_H_
