#include "agent/apt/engine_client.h"

#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/apt/engine_protocol.h"
#include "agent/apt/subprocess.h"
#include "common/file_util.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

namespace tended::agent::apt {
namespace {

class EngineProcessPackageManager : public PackageManager {
 public:
  EngineProcessPackageManager(AptOptions options, std::string engine_path, EngineTimeouts timeouts)
      : options_(std::move(options)), engine_path_(std::move(engine_path)), timeouts_(timeouts) {}

  absl::Status Check() {
    return Call<std::monostate>(Request(EngineCall::kCheck), nullptr).status();
  }

  absl::Status Update() override {
    return Call<std::monostate>(Request(EngineCall::kUpdate), nullptr).status();
  }

  absl::StatusOr<UpgradePlan> Plan() override {
    return Call<UpgradePlan>(Request(EngineCall::kPlan), nullptr);
  }

  absl::StatusOr<ApplyResult> Apply(const UpgradePlan& plan,
                                    const ProgressCallback& progress) override {
    EngineRequest request = Request(EngineCall::kApply);
    request.plan = plan;
    return Call<ApplyResult>(request, progress);
  }

  absl::StatusOr<ApplyResult> InstallPinned(const std::vector<PinnedVersion>& packages,
                                            const ProgressCallback& progress) override {
    EngineRequest request = Request(EngineCall::kInstallPinned);
    request.pinned = packages;
    return Call<ApplyResult>(request, progress);
  }

  absl::StatusOr<bool> RepairInterruptedDpkg(const ProgressCallback& progress) override {
    return Call<bool>(Request(EngineCall::kRepair), progress);
  }

  absl::Status Hold(const std::vector<std::string>& packages) override {
    EngineRequest request = Request(EngineCall::kHold);
    request.packages = packages;
    return Call<std::monostate>(request, nullptr).status();
  }

  absl::Status Unhold(const std::vector<std::string>& packages) override {
    EngineRequest request = Request(EngineCall::kUnhold);
    request.packages = packages;
    return Call<std::monostate>(request, nullptr).status();
  }

  absl::StatusOr<std::vector<std::string>> Holds() override {
    return Call<std::vector<std::string>>(Request(EngineCall::kHolds), nullptr);
  }

  absl::StatusOr<RebootRequirement> RebootRequired() override {
    return Call<RebootRequirement>(Request(EngineCall::kRebootRequired), nullptr);
  }

  absl::StatusOr<std::vector<std::string>> AvailableVersions(const std::string& package) override {
    EngineRequest request = Request(EngineCall::kAvailableVersions);
    request.packages = {package};
    return Call<std::vector<std::string>>(request, nullptr);
  }

 private:
  EngineRequest Request(EngineCall call) const {
    EngineRequest request;
    request.call = call;
    request.options = options_;
    request.options.clock = nullptr;
    return request;
  }

  absl::Duration TimeoutFor(EngineCall call) const {
    switch (call) {
      case EngineCall::kCheck:
        return timeouts_.check;
      case EngineCall::kUpdate:
        return timeouts_.update;
      case EngineCall::kPlan:
      case EngineCall::kAvailableVersions:
        return timeouts_.plan;
      case EngineCall::kHold:
      case EngineCall::kUnhold:
      case EngineCall::kHolds:
      case EngineCall::kRebootRequired:
        return options_.lock_timeout + timeouts_.beyond_lock_wait;
      case EngineCall::kApply:
      case EngineCall::kInstallPinned:
      case EngineCall::kRepair:
        break;
    }
    return absl::InfiniteDuration();
  }

  // Runs one engine process for `request`: progress lines go to `progress` as they come,
  // and the end line is the result. A process that ends without one is an error.
  template <typename T>
  absl::StatusOr<T> Call(const EngineRequest& request, const ProgressCallback& progress) {
    std::optional<absl::StatusOr<EngineValue>> end;
    absl::Status protocol = absl::OkStatus();
    absl::StatusOr<int> exit_code = RunProcessWithReplies(
        {engine_path_, "serve"}, EncodeEngineRequest(request),
        [&](absl::string_view line) {
          if (!protocol.ok() || end.has_value()) return;
          absl::StatusOr<EngineReplyLine> reply = DecodeEngineReplyLine(request.call, line);
          if (!reply.ok()) {
            protocol = reply.status();
          } else if (reply->is_progress) {
            if (progress) progress(reply->progress);
          } else {
            end = std::move(reply->end);
          }
        },
        TimeoutFor(request.call));
    const std::string what = absl::StrCat("apt engine (", EngineCallName(request.call), ")");
    if (!exit_code.ok()) {
      return absl::Status(exit_code.status().code(),
                          absl::StrCat(what, ": ", exit_code.status().message()));
    }
    if (!protocol.ok()) {
      return absl::InternalError(absl::StrCat(what, ": ", protocol.message()));
    }
    if (!end.has_value()) {
      return absl::InternalError(
          absl::StrCat(what,
                       *exit_code > 128 ? absl::StrCat(" was killed by signal ", *exit_code - 128)
                                        : absl::StrCat(" exited with ", *exit_code),
                       " before its result; its output is in the agent's log"));
    }
    if (!end->ok()) return end->status();
    if (!std::holds_alternative<T>(**end)) {
      return absl::InternalError(absl::StrCat(what, ": a result of the wrong type"));
    }
    return std::get<T>(*std::move(*end));
  }

  const AptOptions options_;
  const std::string engine_path_;
  const EngineTimeouts timeouts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PackageManager>> CreateEngineProcessPackageManager(
    const AptOptions& options, std::string engine_path, EngineTimeouts timeouts) {
  if (access(engine_path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the apt engine ", engine_path,
                     " cannot be run: ", PosixErrorToStatus("", errno).message()));
  }
  auto manager =
      std::make_unique<EngineProcessPackageManager>(options, std::move(engine_path), timeouts);
  // The engine reads the root's apt configuration and policy now, so errors show at start.
  RETURN_IF_ERROR(manager->Check());
  return manager;
}

absl::StatusOr<std::string> EngineBesideThisProgram() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return PosixErrorToStatus("readlink /proc/self/exe", errno);
  self[n] = '\0';
  return absl::StrCat(Dirname(self), "/", kEngineProgramName);
}

}  // namespace tended::agent::apt
