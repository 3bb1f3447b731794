// Reading the project's Markdown for the documentation tests: heading anchors as GitHub
// makes them, and the relative links a document holds.
#ifndef TENDED_TESTS_FAKES_MARKDOWN_H_
#define TENDED_TESTS_FAKES_MARKDOWN_H_

#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tended::testing {

// The anchor GitHub gives a heading's text: lower case, spaces to hyphens, and every
// character other than letters, digits, hyphens and underscores dropped.
std::string HeadingAnchor(absl::string_view heading);

// The anchors of every ATX heading (`#` to `######`) outside fenced code blocks.
std::set<std::string> MarkdownAnchors(absl::string_view markdown);

struct MarkdownLink {
  int line = 0;        // 1-based.
  std::string target;  // "runbook.md#4-force-release-a-lease", "#top", "../packaging/x.yaml".
};

// The targets of inline links `[text](target)` outside fenced code blocks that are not
// absolute URLs (no scheme such as https: or mailto:).
std::vector<MarkdownLink> RelativeMarkdownLinks(absl::string_view markdown);

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_MARKDOWN_H_
