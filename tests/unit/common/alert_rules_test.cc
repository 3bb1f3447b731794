// The shipped Prometheus alert rules: valid for promtool, and their unit tests pass
// (tests/testdata/prometheus/tended-alerts_test.yaml).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;

constexpr char kRules[] = TENDED_SOURCE_DIR "/packaging/prometheus/tended-alerts.yaml";
constexpr char kRuleTests[] =
    TENDED_SOURCE_DIR "/tests/testdata/prometheus/tended-alerts_test.yaml";

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
  EXPECT_THAT(result->output, HasSubstr("SUCCESS: 10 rules found"));
}

TEST_F(AlertRulesTest, RuleUnitTestsPass) {
  auto result = testing::RunPromtool({"test", "rules", kRuleTests}, dir_.path());
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

}  // namespace
}  // namespace tended
