// A child process owned by a test: started with execv (no shell), its stdout and stderr
// appended to a log file, and terminated and reaped when the holder goes away, on every
// path out of the test. It is also killed if the thread that started it dies
// (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
#ifndef TENDED_TESTS_FAKES_PROCESS_RUNNER_H_
#define TENDED_TESTS_FAKES_PROCESS_RUNNER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tended::testing {

class ChildProcess {
 public:
  // argv[0] is the program's path. Fails when the program cannot be executed.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& log_path);

  ~ChildProcess();  // Stop()
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // False once the process has exited (it is reaped then).
  bool Running();

  // SIGTERM, then SIGKILL if it has not exited within `grace`; always reaps. Idempotent.
  // Returns the wait status (as from waitpid).
  int Stop(absl::Duration grace = absl::Seconds(10));

  // "exited with 1", "killed by signal 9", or "running".
  std::string DescribeExit();

  // The last `max_bytes` of the log, for failure messages.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  std::string log_path_;
  std::optional<int> wait_status_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_PROCESS_RUNNER_H_
