// The wire format between the agent and its apt engine process (tended-apt-engine serve):
// one JSON request on the engine's stdin, then JSON lines on its reply descriptor, each a
// progress event or the call's end (its result, or its error with the absl status code).
// Also the plan's JSON as `tended-agent plan --json` prints it. No libapt-pkg here.
#ifndef TENDED_AGENT_APT_ENGINE_PROTOCOL_H_
#define TENDED_AGENT_APT_ENGINE_PROTOCOL_H_

#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/apt/package_manager.h"

namespace tended::agent::apt {

// kCheck only opens the engine: the root's apt configuration and the policy are valid.
enum class EngineCall {
  kCheck,
  kUpdate,
  kPlan,
  kApply,
  kInstallPinned,
  kRepair,
  kHold,
  kUnhold,
  kHolds,
  kRebootRequired,
  kAvailableVersions
};

// The wire name ("plan", "apply", ...).
const char* EngineCallName(EngineCall call);

struct EngineRequest {
  EngineCall call = EngineCall::kPlan;
  // Everything but the clock, which is the engine's real one.
  AptOptions options;
  UpgradePlan plan;                   // kApply.
  std::vector<std::string> packages;  // kHold, kUnhold; kAvailableVersions: exactly one.
  std::vector<PinnedVersion> pinned;  // kInstallPinned.
};

std::string EncodeEngineRequest(const EngineRequest& request);
absl::StatusOr<EngineRequest> DecodeEngineRequest(absl::string_view json);

// A call's value; std::monostate for calls that return only a status.
using EngineValue = std::variant<std::monostate, UpgradePlan, ApplyResult, bool,
                                 std::vector<std::string>, RebootRequirement>;

// One reply line, without its newline.
std::string EncodeProgressLine(const ApplyProgress& progress);
std::string EncodeEndLine(const absl::StatusOr<EngineValue>& end);

struct EngineReplyLine {
  bool is_progress = false;
  ApplyProgress progress;           // When is_progress.
  absl::StatusOr<EngineValue> end;  // Otherwise: the call's result or error.
};
// `call` says which value type the end line carries.
absl::StatusOr<EngineReplyLine> DecodeEngineReplyLine(EngineCall call, absl::string_view line);

// {"upgrade":[{"package","from","to","origin"}],"kept":[{"package","reason"}]}
std::string PlanToJson(const UpgradePlan& plan);

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_ENGINE_PROTOCOL_H_
