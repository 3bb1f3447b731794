#include "tests/fakes/promtool.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"

namespace tended::testing {

std::string FindPromtool() {
  for (const char* path : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "";
}

absl::StatusOr<PromtoolResult> RunPromtool(const std::vector<std::string>& args,
                                           const std::string& scratch_dir,
                                           absl::string_view stdin_text) {
  static std::atomic<int> counter{0};
  const int run = counter.fetch_add(1);
  std::string promtool = FindPromtool();
  if (promtool.empty()) return absl::NotFoundError("promtool is not installed");
  std::string input = absl::StrCat(scratch_dir, "/promtool-", run, ".in");
  std::string log = absl::StrCat(scratch_dir, "/promtool-", run, ".log");
  if (absl::Status written = WriteFileAtomically(input, stdin_text); !written.ok()) return written;
  // ChildProcess gives the child /dev/null as input, so a shell redirects the file.
  std::string command = absl::StrCat("exec ", promtool);
  for (const std::string& arg : args) absl::StrAppend(&command, " '", arg, "'");
  absl::StrAppend(&command, " < '", input, "'");
  auto child = ChildProcess::Start({"/bin/sh", "-c", command}, log);
  if (!child.ok()) return child.status();
  absl::Status done =
      PollUntil([&]() -> absl::StatusOr<bool> { return !(*child)->Running(); }, absl::Seconds(60),
                "promtool to finish", nullptr, absl::Milliseconds(20));
  if (!done.ok()) return done;
  PromtoolResult result;
  result.exit = (*child)->DescribeExit();
  result.success = result.exit == "exited with 0";
  result.output = (*child)->LogTail(64 * 1024);
  return result;
}

}  // namespace tended::testing
