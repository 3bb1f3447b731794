// A PackageManager that runs every call in a child `tended-apt-engine serve` process, so
// the agent daemon never holds libapt-pkg's cache (tens of MB on a real host) or its
// process-wide configuration, and a crash inside libapt-pkg cannot take the agent down.
// The engine's logs and dpkg's output go where the agent's go (inherited stdout/stderr).
#ifndef TENDED_AGENT_APT_ENGINE_CLIENT_H_
#define TENDED_AGENT_APT_ENGINE_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

inline constexpr char kEngineProgramName[] = "tended-apt-engine";

// `options.clock` is not used: the engine's lock wait runs on its real clock.
// FAILED_PRECONDITION when `engine_path` is not an executable file.
absl::StatusOr<std::unique_ptr<PackageManager>> CreateEngineProcessPackageManager(
    const AptOptions& options, std::string engine_path);

// tended-apt-engine in the folder of the running program.
absl::StatusOr<std::string> EngineBesideThisProgram();

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_CLIENT_H_
