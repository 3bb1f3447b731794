#include "tests/fakes/markdown.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace tended::testing {
namespace {

bool IsFence(absl::string_view line) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "```");
}

bool HasScheme(absl::string_view target) {
  size_t colon = target.find(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  for (char c : target.substr(0, colon)) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace

std::string HeadingAnchor(absl::string_view heading) {
  std::string anchor;
  for (char c : heading) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_') {
      anchor.push_back(absl::ascii_tolower(c));
    } else if (c == ' ') {
      anchor.push_back('-');
    }
  }
  return anchor;
}

std::set<std::string> MarkdownAnchors(absl::string_view markdown) {
  std::set<std::string> anchors;
  bool in_code = false;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (IsFence(line)) in_code = !in_code;
    if (in_code || !absl::StartsWith(line, "#")) continue;
    size_t text = line.find_first_not_of('#');
    if (text == absl::string_view::npos || text > 6 || line[text] != ' ') continue;
    anchors.insert(HeadingAnchor(absl::StripAsciiWhitespace(line.substr(text))));
  }
  return anchors;
}

std::vector<MarkdownLink> RelativeMarkdownLinks(absl::string_view markdown) {
  std::vector<MarkdownLink> links;
  bool in_code = false;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    ++number;
    if (IsFence(line)) in_code = !in_code;
    if (in_code) continue;
    for (size_t at = line.find("]("); at != absl::string_view::npos; at = line.find("](", at + 2)) {
      size_t end = line.find(')', at + 2);
      if (end == absl::string_view::npos) break;
      absl::string_view target = line.substr(at + 2, end - at - 2);
      if (target.empty() || HasScheme(target)) continue;
      links.push_back({number, std::string(target)});
    }
  }
  return links;
}

}  // namespace tended::testing
