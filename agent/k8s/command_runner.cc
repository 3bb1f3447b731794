#include "agent/k8s/command_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agent/apt/subprocess.h"

namespace tended::agent::k8s {

absl::StatusOr<CommandResult> ProcessCommandRunner::Run(const std::vector<std::string>& argv,
                                                        absl::Duration timeout) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("a command needs an absolute program path");
  }
  absl::StatusOr<apt::ProcessResult> ran =
      apt::RunProcess(argv, {"LC_ALL=C", "LANG=C"}, /*stdin_data=*/"", timeout);
  if (!ran.ok()) return ran.status();
  CommandResult result;
  result.exit_code = ran->exit_code;
  result.output = ran->output.size() > kMaxCommandOutputBytes
                      ? ran->output.substr(ran->output.size() - kMaxCommandOutputBytes)
                      : std::move(ran->output);
  return result;
}

std::string DescribeCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return "";
  std::vector<std::string> words(argv.begin(), argv.end());
  const size_t slash = words[0].rfind('/');
  if (slash != std::string::npos) words[0] = words[0].substr(slash + 1);
  return absl::StrJoin(words, " ");
}

std::string OutputTail(const std::string& output, size_t max_bytes) {
  absl::string_view text = absl::StripTrailingAsciiWhitespace(output);
  if (text.size() <= max_bytes) return std::string(text);
  absl::string_view tail = text.substr(text.size() - max_bytes);
  const size_t newline = tail.find('\n');
  if (newline != absl::string_view::npos && newline < max_bytes / 2) {
    tail.remove_prefix(newline + 1);
  }
  while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
    tail.remove_prefix(1);  // Never start inside a UTF-8 sequence.
  }
  return absl::StrCat("…", tail);
}

}  // namespace tended::agent::k8s
