#include "agent/node_facts.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace tended::agent {
namespace {

std::string ReadTrimmedOrEmpty(const std::string& path) {
  auto contents = ReadFileToString(path);
  if (!contents.ok()) return "";
  return ToValidUtf8(absl::StripAsciiWhitespace(*contents));
}

}  // namespace

NodeFactsReader::NodeFactsReader(const RootPath& root, const AgentConfig& config,
                                 std::string node_name)
    : root_(root), config_(config), node_name_(std::move(node_name)) {}

absl::StatusOr<std::string> NodeFactsReader::ReadBootId() const {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(root_.Resolve(kBootIdPath)));
  std::string boot_id = ToValidUtf8(absl::StripAsciiWhitespace(contents));
  if (boot_id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(root_.Resolve(kBootIdPath), " is empty: cannot tell boots apart"));
  }
  return boot_id;
}

bool NodeFactsReader::RebootRequired() const {
  return PathExists(root_.Resolve(config_.reboot.sentinel));
}

absl::StatusOr<tended::v1::NodeFacts> NodeFactsReader::Read() const {
  tended::v1::NodeFacts facts;
  facts.set_node_name(node_name_);
  ASSIGN_OR_RETURN(*facts.mutable_boot_id(), ReadBootId());
  facts.set_kernel_release(ReadTrimmedOrEmpty(root_.Resolve(kKernelReleasePath)));
  facts.set_agent_version(TENDED_VERSION);

  if (auto stat = ReadFileToString(root_.Resolve(kProcStatPath)); stat.ok()) {
    for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
      if (absl::ConsumePrefix(&line, "btime ")) {
        int64_t seconds = 0;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &seconds)) {
          *facts.mutable_boot_time() = ToProtoTimestamp(absl::FromUnixSeconds(seconds));
        }
        break;
      }
    }
  }

  if (RebootRequired()) {
    facts.set_reboot_required(true);
    std::string packages_path = root_.Resolve(absl::StrCat(config_.reboot.sentinel, ".pkgs"));
    if (auto packages = ReadFileToString(packages_path); packages.ok()) {
      absl::flat_hash_set<std::string> seen;
      int more = 0;
      for (absl::string_view line : absl::StrSplit(*packages, '\n', absl::SkipWhitespace())) {
        std::string package = ToValidUtf8(absl::StripAsciiWhitespace(line));
        if (!seen.insert(package).second) continue;
        if (facts.reboot_required_reasons_size() < kMaxRebootReasons) {
          facts.add_reboot_required_reasons(std::move(package));
        } else {
          ++more;
        }
      }
      if (more > 0) facts.add_reboot_required_reasons(absl::StrCat("and ", more, " more"));
    }
    if (facts.reboot_required_reasons().empty()) {
      facts.add_reboot_required_reasons(
          absl::StrCat(config_.reboot.sentinel, " exists (no package list)"));
    }
  }
  return facts;
}

}  // namespace tended::agent
