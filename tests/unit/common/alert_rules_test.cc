// The shipped Prometheus alert rules: valid for promtool, their unit tests pass
// (tests/testdata/prometheus/*_test.yaml, the OS upgrade group's included), and every
// runbook_url names a heading that exists in docs/runbook.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "tests/fakes/markdown.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;

constexpr char kRules[] = TENDED_SOURCE_DIR "/packaging/prometheus/tended-alerts.yaml";
constexpr char kRuleTests[] =
    TENDED_SOURCE_DIR "/tests/testdata/prometheus/tended-alerts_test.yaml";
constexpr char kK8sRuleTests[] =
    TENDED_SOURCE_DIR "/tests/testdata/prometheus/tended-k8s-alerts_test.yaml";
constexpr char kK8sDaysRuleTests[] =
    TENDED_SOURCE_DIR "/tests/testdata/prometheus/tended-k8s-alerts-days_test.yaml";
constexpr char kOsUpgradeRuleTests[] =
    TENDED_SOURCE_DIR "/tests/testdata/prometheus/tended-os-upgrade-alerts_test.yaml";
constexpr char kRunbook[] = TENDED_SOURCE_DIR "/docs/runbook.md";
constexpr char kRunbookUrlPrefix[] = "docs/runbook.md#";

// The values of every `runbook_url:` line, quotes removed.
std::vector<std::string> RunbookUrls(absl::string_view rules) {
  std::vector<std::string> urls;
  for (absl::string_view line : absl::StrSplit(rules, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "runbook_url:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumePrefix(&line, "\"");
    absl::ConsumeSuffix(&line, "\"");
    urls.emplace_back(line);
  }
  return urls;
}

class AlertRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  }
  testing::TempDir dir_;
};

TEST_F(AlertRulesTest, PromtoolChecksTheRules) {
  auto result = testing::RunPromtool({"check", "rules", kRules}, dir_.path());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_THAT(result->output, HasSubstr("SUCCESS: 19 rules found"));
}

TEST_F(AlertRulesTest, RuleUnitTestsPass) {
  auto result = testing::RunPromtool({"test", "rules", kRuleTests}, dir_.path());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_THAT(result->output, HasSubstr("SUCCESS"));
}

TEST_F(AlertRulesTest, KubernetesRolloutRuleUnitTestsPass) {
  for (const char* tests : {kK8sRuleTests, kK8sDaysRuleTests}) {
    auto result = testing::RunPromtool({"test", "rules", tests}, dir_.path());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->success) << tests << ": " << result->exit << "\n" << result->output;
    EXPECT_THAT(result->output, HasSubstr("SUCCESS"));
  }
}

TEST_F(AlertRulesTest, OsUpgradeRuleUnitTestsPass) {
  auto result = testing::RunPromtool({"test", "rules", kOsUpgradeRuleTests}, dir_.path());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_THAT(result->output, HasSubstr("SUCCESS"));
}

TEST_F(AlertRulesTest, ABrokenRuleFileIsRejected) {
  // So the checks above can fail: promtool refuses a rule with a bad expression.
  auto contents = ReadFileToString(kRules);
  ASSERT_TRUE(contents.ok()) << contents.status();
  std::string broken = *contents;
  size_t at = broken.find("== 1");
  ASSERT_NE(at, std::string::npos);
  broken.replace(at, 4, "== (1");
  std::string path = dir_.Path("broken.yaml");
  ASSERT_TRUE(WriteFileAtomically(path, broken).ok());
  auto result = testing::RunPromtool({"check", "rules", path}, dir_.path());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->success) << result->output;
}

TEST(AlertRunbookTest, EveryRunbookUrlNamesARunbookHeading) {
  auto rules = ReadFileToString(kRules);
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto runbook = ReadFileToString(kRunbook);
  ASSERT_TRUE(runbook.ok()) << runbook.status();
  std::set<std::string> anchors = testing::MarkdownAnchors(*runbook);
  std::vector<std::string> urls = RunbookUrls(*rules);
  ASSERT_GE(urls.size(), 5u) << "the Kubernetes rollout alerts all carry a runbook_url";
  for (const std::string& url : urls) {
    absl::string_view anchor = url;
    EXPECT_TRUE(absl::ConsumePrefix(&anchor, kRunbookUrlPrefix)) << url;
    EXPECT_TRUE(anchors.count(std::string(anchor)) == 1)
        << url << " names no heading of docs/runbook.md";
  }
}

}  // namespace
}  // namespace tended
