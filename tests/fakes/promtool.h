// Runs Prometheus' promtool (check metrics, check rules, test rules) for tests, with a
// bounded wait. Tests skip when promtool is not installed.
#ifndef TENDED_TESTS_FAKES_PROMTOOL_H_
#define TENDED_TESTS_FAKES_PROMTOOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended::testing {

// The promtool binary's path, or empty when there is none.
std::string FindPromtool();

struct PromtoolResult {
  bool success = false;  // Exited with 0.
  std::string exit;      // "exited with 1", ...
  std::string output;    // stdout and stderr.
};

// Runs promtool with `args`; `stdin_text`, when given, is fed on standard input.
// `scratch_dir` holds the log (and the input file).
absl::StatusOr<PromtoolResult> RunPromtool(const std::vector<std::string>& args,
                                           const std::string& scratch_dir,
                                           absl::string_view stdin_text = "");

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_PROMTOOL_H_
