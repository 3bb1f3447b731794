#include "agent/apt/engine/engine_server.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <iterator>
#include <memory>

#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/engine_protocol.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/subprocess.h"
#include "common/logging.h"

namespace tended::agent::apt {
namespace {

bool WriteLine(int fd, std::string line) {
  line.push_back('\n');
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

absl::StatusOr<EngineValue> Dispatch(PackageManager& manager, const EngineRequest& request,
                                     const ProgressCallback& progress) {
  auto value = [](auto result) -> absl::StatusOr<EngineValue> {
    if (!result.ok()) return result.status();
    return EngineValue(*std::move(result));
  };
  auto done = [](absl::Status status) -> absl::StatusOr<EngineValue> {
    if (!status.ok()) return status;
    return EngineValue(std::monostate{});
  };
  switch (request.call) {
    case EngineCall::kCheck:
      return EngineValue(std::monostate{});
    case EngineCall::kUpdate:
      return done(manager.Update());
    case EngineCall::kPlan:
      return value(manager.Plan());
    case EngineCall::kApply:
      return value(manager.Apply(request.plan, progress));
    case EngineCall::kInstallPinned:
      return value(manager.InstallPinned(request.pinned, progress));
    case EngineCall::kRepair:
      return value(manager.RepairInterruptedDpkg(progress));
    case EngineCall::kHold:
      return done(manager.Hold(request.packages));
    case EngineCall::kUnhold:
      return done(manager.Unhold(request.packages));
    case EngineCall::kHolds:
      return value(manager.Holds());
    case EngineCall::kRebootRequired:
      return value(manager.RebootRequired());
    case EngineCall::kAvailableVersions:
      return value(manager.AvailableVersions(request.packages.front()));
  }
  return absl::InvalidArgumentError("unknown apt engine call");
}

}  // namespace

int ServeEngineCall(const std::string& request_json, int reply_fd) {
  absl::StatusOr<EngineRequest> request = DecodeEngineRequest(request_json);
  if (!request.ok()) {
    WriteLine(reply_fd, EncodeEndLine(request.status()));
    return 1;
  }
  request->options.clock = &Clock::Real();
  bool replies_ok = true;
  absl::StatusOr<EngineValue> end = [&]() -> absl::StatusOr<EngineValue> {
    absl::StatusOr<std::unique_ptr<PackageManager>> manager =
        CreateAptPackageManager(request->options);
    if (!manager.ok()) return manager.status();
    return Dispatch(**manager, *request, [&](const ApplyProgress& progress) {
      replies_ok = WriteLine(reply_fd, EncodeProgressLine(progress)) && replies_ok;
    });
  }();
  replies_ok = WriteLine(reply_fd, EncodeEndLine(end)) && replies_ok;
  return replies_ok ? 0 : 1;
}

int RunServeCommand(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tended-apt-engine serve   (the request on stdin, replies on fd "
              << kReplyFd << ")\n";
    return 2;
  }
  InitLogging(DetectLogTarget(), "info");
  // An agent that died must not take dpkg down with it: finish the call, replies or not.
  signal(SIGPIPE, SIG_IGN);
  // Nothing the engine starts (apt's download methods, dpkg, maintainer scripts and the
  // daemons they start) may hold the reply pipe open after the engine is gone.
  const int reply_fd = fcntl(kReplyFd, F_DUPFD_CLOEXEC, kReplyFd + 1);
  if (reply_fd < 0) {
    std::cerr << "tended-apt-engine serve: descriptor " << kReplyFd << " is not open\n";
    return 2;
  }
  close(kReplyFd);
  std::string request(std::istreambuf_iterator<char>(std::cin), {});
  return ServeEngineCall(request, reply_fd);
}

}  // namespace tended::agent::apt
