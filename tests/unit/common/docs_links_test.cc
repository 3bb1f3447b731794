// The documentation's relative links lead somewhere: every linked file exists, and every
// `#anchor` names a heading of the linked Markdown file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/markdown.h"

namespace tended {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Documents() {
  std::vector<std::string> documents = {TENDED_SOURCE_DIR "/README.md"};
  for (const auto& entry : std::filesystem::directory_iterator(TENDED_SOURCE_DIR "/docs")) {
    if (entry.path().extension() == ".md") documents.push_back(entry.path().string());
  }
  return documents;
}

TEST(DocsLinksTest, EveryRelativeLinkLeadsToAFileAndHeading) {
  std::vector<std::string> documents = Documents();
  ASSERT_GE(documents.size(), 5u);
  int checked = 0;
  for (const std::string& document : documents) {
    auto text = ReadFileToString(document);
    ASSERT_TRUE(text.ok()) << text.status();
    std::filesystem::path folder = std::filesystem::path(document).parent_path();
    for (const testing::MarkdownLink& link : testing::RelativeMarkdownLinks(*text)) {
      std::string where = absl::StrCat(document, ":", link.line, ": ", link.target);
      size_t hash = link.target.find('#');
      std::string file = link.target.substr(0, hash);
      std::string target = file.empty() ? document : (folder / file).lexically_normal().string();
      ASSERT_TRUE(std::filesystem::exists(target)) << where << " names a missing file";
      ++checked;
      if (hash == std::string::npos) continue;
      ASSERT_TRUE(absl::EndsWith(target, ".md")) << where;
      auto linked = ReadFileToString(target);
      ASSERT_TRUE(linked.ok()) << linked.status();
      EXPECT_EQ(testing::MarkdownAnchors(*linked).count(link.target.substr(hash + 1)), 1u)
          << where << " names no heading of " << target;
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(DocsLinksTest, AnchorsFollowGitHubsRule) {
  EXPECT_EQ(testing::HeadingAnchor("7. Restore etcd from the rollout's snapshot"),
            "7-restore-etcd-from-the-rollouts-snapshot");
  EXPECT_EQ(testing::HeadingAnchor("TendedK8sVersionSkew"), "tendedk8sversionskew");
  EXPECT_EQ(testing::HeadingAnchor("The `kubernetes` gate"), "the-kubernetes-gate");
  EXPECT_THAT(testing::MarkdownAnchors("# Top\n```sh\n# not a heading\n```\n## 2. Two\n#tag\n"),
              UnorderedElementsAre("top", "2-two"));
}

TEST(DocsLinksTest, FindsRelativeLinksOnly) {
  auto links = testing::RelativeMarkdownLinks(
      "See [a](runbook.md#x) and [b](https://example.com/).\n```\n[c](code.md)\n```\n"
      "[d](#local) [e](mailto:x@example.com)\n");
  EXPECT_THAT(links, ElementsAre(Field(&testing::MarkdownLink::target, "runbook.md#x"),
                                 Field(&testing::MarkdownLink::target, "#local")));
  EXPECT_EQ(links[1].line, 5);
}

}  // namespace
}  // namespace tended
