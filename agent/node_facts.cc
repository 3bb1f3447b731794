#include "agent/node_facts.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/node_file.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace tended::agent {
namespace {

std::string ReadTrimmedOrEmpty(const RootPath& root, absl::string_view path, size_t max_bytes) {
  absl::StatusOr<std::string> contents = ReadNodeFile(root, path, max_bytes);
  if (!contents.ok()) return "";
  return ToValidUtf8(absl::StripAsciiWhitespace(*contents));
}

}  // namespace

NodeFactsReader::NodeFactsReader(const RootPath& root, const AgentConfig& config,
                                 std::string node_name)
    : root_(root), config_(config), node_name_(std::move(node_name)) {}

absl::StatusOr<std::string> NodeFactsReader::ReadBootId() const {
  ASSIGN_OR_RETURN(std::string contents, ReadNodeFile(root_, kBootIdPath, kBootIdMaxBytes));
  std::string boot_id = ToValidUtf8(absl::StripAsciiWhitespace(contents));
  if (boot_id.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(root_.Resolve(kBootIdPath), " is empty: cannot tell boots apart"));
  }
  return boot_id;
}

bool NodeFactsReader::RebootRequired() const {
  return NodeFileExists(root_, config_.reboot.sentinel);
}

absl::StatusOr<tended::v1::NodeFacts> NodeFactsReader::Read() const {
  tended::v1::NodeFacts facts;
  facts.set_node_name(node_name_);
  ASSIGN_OR_RETURN(*facts.mutable_boot_id(), ReadBootId());
  facts.set_kernel_release(ReadTrimmedOrEmpty(root_, kKernelReleasePath, kKernelReleaseMaxBytes));
  facts.set_agent_version(TENDED_VERSION);

  if (auto stat = ReadNodeFilePrefix(root_, kProcStatPath, kProcStatMaxBytes); stat.ok()) {
    for (absl::string_view line : absl::StrSplit(stat->contents, '\n')) {
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
    const std::string packages_path = absl::StrCat(config_.reboot.sentinel, ".pkgs");
    absl::StatusOr<NodeFilePrefix> packages =
        ReadNodeFilePrefix(root_, packages_path, kRebootPackagesMaxBytes);
    if (packages.ok()) {
      absl::string_view list = packages->contents;
      // Past the cap the last line may be cut: leave it out.
      if (packages->truncated) list = list.substr(0, list.rfind('\n') + 1);
      absl::flat_hash_set<std::string> seen;
      int more = 0;
      for (absl::string_view line : absl::StrSplit(list, '\n', absl::SkipWhitespace())) {
        std::string package = ToValidUtf8(absl::StripAsciiWhitespace(line));
        if (!seen.insert(package).second) continue;
        if (facts.reboot_required_reasons_size() < kMaxRebootReasons) {
          facts.add_reboot_required_reasons(std::move(package));
        } else {
          ++more;
        }
      }
      if (packages->truncated) {
        facts.add_reboot_required_reasons(
            absl::StrCat("and ", more > 0 ? absl::StrCat("at least ", more, " ") : "",
                         "more: the list is longer than ", kRebootPackagesMaxBytes / 1024, " KiB"));
      } else if (more > 0) {
        facts.add_reboot_required_reasons(absl::StrCat("and ", more, " more"));
      }
    }
    if (facts.reboot_required_reasons().empty()) {
      facts.add_reboot_required_reasons(
          packages.ok() || absl::IsNotFound(packages.status())
              ? absl::StrCat(config_.reboot.sentinel, " exists (no package list)")
              : absl::StrCat(config_.reboot.sentinel, " exists (its package list cannot be read: ",
                             ToValidUtf8(packages.status().message()), ")"));
    }
  }
  return facts;
}

}  // namespace tended::agent
