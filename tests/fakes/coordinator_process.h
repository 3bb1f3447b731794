// The real tended-coordinator program, started by a black-box test: the program's path
// (an environment variable, else this build tree), its start on a configuration the test
// wrote, the port it reports serving on, gRPC stubs for both services, and its log. Used
// by tests that must run unchanged against another build of the coordinator.
#ifndef TENDED_TESTS_FAKES_COORDINATOR_PROCESS_H_
#define TENDED_TESTS_FAKES_COORDINATOR_PROCESS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/fakes/process_runner.h"

namespace tended::testing {

// $`env_var` when set and not empty, else `default_path`.
std::string ProgramPath(const char* env_var, const std::string& default_path);

class CoordinatorProcess {
 public:
  // Starts `binary --config <config_path> --insecure <extra_args...>`, its output appended
  // to `log_path`. Does not wait: see WaitServing and WaitExit.
  static absl::StatusOr<std::unique_ptr<CoordinatorProcess>> Launch(
      const std::string& binary, const std::string& config_path, const std::string& log_path,
      const std::vector<std::string>& extra_args = {});

  // Starts `argv` as given (argv[0] the program): no --insecure added.
  static absl::StatusOr<std::unique_ptr<CoordinatorProcess>> LaunchArgv(
      const std::vector<std::string>& argv, const std::string& log_path);

  // Launch, then WaitServing.
  static absl::StatusOr<std::unique_ptr<CoordinatorProcess>> Start(
      const std::string& binary, const std::string& config_path, const std::string& log_path,
      const std::vector<std::string>& extra_args, absl::Duration timeout);

  // Waits until the log says which port it serves on. FAILED_PRECONDITION (with the log
  // tail) when the program exits first, DEADLINE_EXCEEDED when it says nothing in time.
  absl::Status WaitServing(absl::Duration timeout);
  // True once the program has exited, waiting at most `timeout`.
  bool WaitExit(absl::Duration timeout);
  bool Running() { return process_->Running(); }
  // SIGTERM, then SIGKILL after `grace`; the wait status.
  int Stop(absl::Duration grace = absl::Seconds(20));
  // The exit code, or -1 while running or when it was killed by a signal.
  int ExitCode();

  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  ChildProcess& process() { return *process_; }
  std::string Log() const;
  std::string LogTail() const { return process_->LogTail(); }

  // Stubs on one channel to 127.0.0.1:port(); valid once WaitServing succeeded.
  tended::v1::NodeService::Stub& node() { return *node_; }
  tended::v1::OperatorService::Stub& ops() { return *ops_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  explicit CoordinatorProcess(std::unique_ptr<ChildProcess> process)
      : process_(std::move(process)) {}

  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tended::v1::NodeService::Stub> node_;
  std::unique_ptr<tended::v1::OperatorService::Stub> ops_;
};

// A channel to 127.0.0.1:`port` that accepts large answers (64 MB), so a check is not
// limited by the client.
std::shared_ptr<grpc::Channel> LoopbackChannel(int port);

// A client context whose deadline is `timeout` from now.
std::unique_ptr<grpc::ClientContext> CallContext(absl::Duration timeout = absl::Seconds(30));

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_COORDINATOR_PROCESS_H_
