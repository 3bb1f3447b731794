// Runs a helper program without a shell, from an argv: dpkg (stdin from a string, or
// /dev/null when it is empty; stdout and stderr captured together), or the apt engine process (its
// output inherited, its replies read line by line from a descriptor of their own).
#ifndef TENDED_AGENT_APT_SUBPROCESS_H_
#define TENDED_AGENT_APT_SUBPROCESS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tended::agent::apt {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed by a signal.
  std::string output;
};

// `env` entries ("NAME=value") are added to (or replace in) the current environment.
// Both functions return once the child exited and its output is read; output still coming
// a second after the exit (from a process the child left behind) is not waited for.
// Past `timeout` the child is killed and the answer is DEADLINE_EXCEEDED.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env = {},
                                         const std::string& stdin_data = "",
                                         absl::Duration timeout = absl::InfiniteDuration());

// The child's descriptor for reply lines in RunProcessWithReplies.
inline constexpr int kReplyFd = 3;

// Runs `argv` with `stdin_data` on its stdin and its stdout and stderr inherited. Every
// line it writes to descriptor kReplyFd goes to `on_line` (without the newline) as it
// arrives; a last line without a newline too. Returns the exit code (128+signal), or
// DEADLINE_EXCEEDED when it ran longer than `timeout` and was killed.
absl::StatusOr<int> RunProcessWithReplies(const std::vector<std::string>& argv,
                                          const std::string& stdin_data,
                                          const std::function<void(absl::string_view)>& on_line,
                                          absl::Duration timeout = absl::InfiniteDuration());

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_SUBPROCESS_H_
