// The seam through which the agent runs kubeadm and systemctl: a fixed argument list, never
// a shell or a command string, with a time limit. ProcessCommandRunner runs the real
// programs; tests put a fake that records the calls behind the same interface.
#ifndef TENDED_AGENT_K8S_COMMAND_RUNNER_H_
#define TENDED_AGENT_K8S_COMMAND_RUNNER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tended::agent::k8s {

// What a command printed is kept up to this many bytes (its end, where errors are).
inline constexpr size_t kMaxCommandOutputBytes = 64 * 1024;

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed by a signal.
  // stdout and stderr together, the last kMaxCommandOutputBytes of them.
  std::string output;
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs argv[0] (an absolute path) with the arguments after it. A non-zero exit is a
  // result, not an error; errors are a program that could not be started and
  // DEADLINE_EXCEEDED past `timeout` (the program is killed).
  virtual absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                            absl::Duration timeout) = 0;
};

// Runs real programs (fork and exec, no shell) with LC_ALL=C so their messages are stable.
class ProcessCommandRunner final : public CommandRunner {
 public:
  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                    absl::Duration timeout) override;
};

// "kubeadm upgrade node", the argv's program without its folder then its arguments, for
// messages and logs.
std::string DescribeCommand(const std::vector<std::string>& argv);

// The end of `output` that fits in `max_bytes`, cut at a line start when one is near and
// marked with "…" when cut; trailing blank lines dropped.
std::string OutputTail(const std::string& output, size_t max_bytes);

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_COMMAND_RUNNER_H_
