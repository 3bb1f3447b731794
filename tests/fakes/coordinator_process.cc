#include "tests/fakes/coordinator_process.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/fakes/http_probe.h"

namespace tended::testing {
namespace {

constexpr char kServingLine[] = "serving tended.v1 on port ";

}  // namespace

std::string ProgramPath(const char* env_var, const std::string& default_path) {
  const char* value = std::getenv(env_var);
  if (value != nullptr && value[0] != '\0') return value;
  return default_path;
}

std::shared_ptr<grpc::Channel> LoopbackChannel(int port) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), arguments);
}

std::unique_ptr<grpc::ClientContext> CallContext(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return context;
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::Launch(
    const std::string& binary, const std::string& config_path, const std::string& log_path,
    const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {binary, "--config", config_path, "--insecure"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, log_path);
  if (!child.ok()) return child.status();
  return std::unique_ptr<CoordinatorProcess>(new CoordinatorProcess(*std::move(child)));
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::LaunchArgv(
    const std::vector<std::string>& argv, const std::string& log_path) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, log_path);
  if (!child.ok()) return child.status();
  return std::unique_ptr<CoordinatorProcess>(new CoordinatorProcess(*std::move(child)));
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> CoordinatorProcess::Start(
    const std::string& binary, const std::string& config_path, const std::string& log_path,
    const std::vector<std::string>& extra_args, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> launched =
      Launch(binary, config_path, log_path, extra_args);
  if (!launched.ok()) return launched.status();
  if (absl::Status serving = (*launched)->WaitServing(timeout); !serving.ok()) return serving;
  return launched;
}

absl::Status CoordinatorProcess::WaitServing(absl::Duration timeout) {
  absl::Status waited = PollUntil(
      [&]() -> absl::StatusOr<bool> {
        const std::string log = Log();
        size_t at = log.find(kServingLine);
        if (at == std::string::npos) return absl::UnavailableError("no serving line yet");
        size_t start = at + sizeof(kServingLine) - 1;
        size_t end = start;
        while (end < log.size() && absl::ascii_isdigit(static_cast<unsigned char>(log[end]))) {
          ++end;
        }
        int port = 0;
        if (!absl::SimpleAtoi(log.substr(start, end - start), &port) || port <= 0) {
          return absl::UnavailableError("the serving line has no port yet");
        }
        port_ = port;
        return true;
      },
      timeout, "tended-coordinator to log the port it serves on", process_.get(),
      absl::Milliseconds(50));
  if (!waited.ok()) return waited;
  channel_ = LoopbackChannel(port_);
  node_ = tended::v1::NodeService::NewStub(channel_);
  ops_ = tended::v1::OperatorService::NewStub(channel_);
  return absl::OkStatus();
}

bool CoordinatorProcess::WaitExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (process_->Running()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

int CoordinatorProcess::Stop(absl::Duration grace) { return process_->Stop(grace); }

int CoordinatorProcess::ExitCode() {
  if (process_->Running()) return -1;
  const int status = process_->Stop();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string CoordinatorProcess::Log() const {
  std::ifstream in(process_->log_path(), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace tended::testing
