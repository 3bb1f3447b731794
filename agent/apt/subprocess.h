// Runs a helper program (dpkg) without a shell: argv only, stdin from a string or
// /dev/null, stdout and stderr captured together. Internal to the apt engine.
#ifndef TENDED_AGENT_APT_SUBPROCESS_H_
#define TENDED_AGENT_APT_SUBPROCESS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tended::agent::apt {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed by a signal.
  std::string output;
};

// `env` entries ("NAME=value") are added to (or replace in) the current environment.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env = {},
                                         const std::string& stdin_data = "");

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_SUBPROCESS_H_
