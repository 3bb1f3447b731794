#include "agent/k8s/apt_source.h"

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tended::agent::k8s {
namespace {

struct MinorAt {
  size_t begin = 0;  // Where the minor's text starts in the line.
  size_t length = 0;
  int major = 0;
  int minor = 0;
};

// "1.31" at the start of `text`: digits '.' digits.
std::optional<MinorAt> ParseMinorPrefix(absl::string_view text) {
  size_t i = 0;
  auto digits = [&](int* out) {
    size_t start = i;
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i])) &&
           i - start < 4) {
      ++i;
    }
    return i > start && absl::SimpleAtoi(text.substr(start, i - start), out);
  };
  MinorAt at;
  if (!digits(&at.major) || i >= text.size() || text[i] != '.') return std::nullopt;
  ++i;
  if (!digits(&at.minor)) return std::nullopt;
  at.length = i;
  return at;
}

// Where in `line` the repository's URL names its minor, when it does.
std::optional<MinorAt> FindMinor(absl::string_view line, absl::string_view prefix,
                                 absl::string_view suffix) {
  for (size_t from = 0;;) {
    size_t at = line.find(prefix, from);
    if (at == absl::string_view::npos) return std::nullopt;
    absl::string_view rest = line.substr(at + prefix.size());
    std::optional<MinorAt> minor = ParseMinorPrefix(rest);
    // The suffix may leave out its last "/" ("…/deb" as well as "…/deb/").
    absl::string_view bare_suffix = absl::StripSuffix(suffix, "/");
    if (minor.has_value() && absl::StartsWith(rest.substr(minor->length), bare_suffix)) {
      minor->begin = at + prefix.size();
      return minor;
    }
    from = at + 1;
  }
}

}  // namespace

absl::StatusOr<SourceSwitch> SwitchSourceMinor(absl::string_view text,
                                               absl::string_view repo_url_pattern,
                                               const KubeVersion& target) {
  if (text.size() > kMaxSourcesFileBytes) {
    return absl::OutOfRangeError(absl::StrCat("the sources file has ", text.size(),
                                              " bytes, more than the ", kMaxSourcesFileBytes,
                                              " a sources file can sensibly have"));
  }
  const size_t placeholder = repo_url_pattern.find("{minor}");
  if (placeholder == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("the repository pattern \"", repo_url_pattern, "\" has no {minor}"));
  }
  // The scheme is left out: a line may name the repository over http or https.
  absl::string_view prefix = repo_url_pattern.substr(0, placeholder);
  if (size_t scheme = prefix.find("://"); scheme != absl::string_view::npos) {
    prefix.remove_prefix(scheme + 3);
  }
  const absl::string_view suffix = repo_url_pattern.substr(placeholder + 7);
  const std::string wanted = absl::StrCat(target.major, ".", target.minor);

  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  SourceSwitch result;
  std::vector<std::string> seen;
  int matched = 0;
  for (std::string& line : lines) {
    absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(trimmed, "#")) continue;
    std::optional<MinorAt> at = FindMinor(line, prefix, suffix);
    if (!at.has_value()) continue;
    ++matched;
    const std::string found = absl::StrCat(at->major, ".", at->minor);
    if (std::find(seen.begin(), seen.end(), found) == seen.end()) seen.push_back(found);
    if (found == wanted) continue;
    if (at->major != target.major || at->minor + 1 != target.minor) {
      return absl::FailedPreconditionError(
          absl::StrCat("the Kubernetes apt source is at ", found, "; switching to ", wanted,
                       " would not be the next minor (one minor at a time, never down)"));
    }
    line.replace(at->begin, at->length, wanted);
    ++result.lines_changed;
  }
  if (matched == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no source line names the Kubernetes repository ", repo_url_pattern));
  }
  if (seen.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat("the Kubernetes source lines disagree (",
                                                      absl::StrJoin(seen, ", "),
                                                      "); fix them by hand first"));
  }
  result.from_minor = seen.front();
  result.text = absl::StrJoin(lines, "\n");
  return result;
}

}  // namespace tended::agent::k8s
