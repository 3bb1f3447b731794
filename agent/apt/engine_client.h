// A PackageManager that runs every call in a child `tended-apt-engine serve` process, so
// the agent daemon never holds libapt-pkg's cache (tens of MB on a real host) or its
// process-wide configuration, and a crash inside libapt-pkg cannot take the agent down.
// The engine's logs and dpkg's output go where the agent's go (inherited stdout/stderr).
#ifndef TENDED_AGENT_APT_ENGINE_CLIENT_H_
#define TENDED_AGENT_APT_ENGINE_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

inline constexpr char kEngineProgramName[] = "tended-apt-engine";

// How long one engine process may run before it is killed (DEADLINE_EXCEEDED). Installs
// and repairs have no limit: killing dpkg halfway is worse than waiting for it.
struct EngineTimeouts {
  absl::Duration check = absl::Minutes(2);
  absl::Duration update = absl::Minutes(30);  // apt's own download timeouts come first.
  absl::Duration plan = absl::Minutes(15);
  // Hold, Unhold, Holds, RebootRequired: the dpkg lock wait (AptOptions::lock_timeout)
  // plus this.
  absl::Duration beyond_lock_wait = absl::Minutes(5);
};

// `options.clock` is not used: the engine's lock wait runs on its real clock.
// FAILED_PRECONDITION when `engine_path` is not an executable file.
absl::StatusOr<std::unique_ptr<PackageManager>> CreateEngineProcessPackageManager(
    const AptOptions& options, std::string engine_path, EngineTimeouts timeouts = {});

// tended-apt-engine in the folder of the running program.
absl::StatusOr<std::string> EngineBesideThisProgram();

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_CLIENT_H_
