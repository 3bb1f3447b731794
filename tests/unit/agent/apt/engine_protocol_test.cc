#include "agent/apt/engine_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended::agent::apt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

EngineRequest FullRequest() {
  EngineRequest request;
  request.call = EngineCall::kApply;
  request.options.root = "/srv/node root";
  request.options.policy.origins_pattern = {"o=Debian,n=${distro_codename}-security"};
  request.options.policy.allowed_origins = {"Debian:bookworm"};
  request.options.policy.blacklist = {"linux-image-.*"};
  request.options.policy.whitelist = {"libssl"};
  request.options.policy.whitelist_strict = true;
  request.options.policy.holds = {"kubelet", "kubeadm"};
  request.options.policy.replace_apt_config = true;
  request.options.lock_timeout = absl::Minutes(7);
  request.options.lock_poll_interval = absl::Milliseconds(250);
  request.plan.upgrades = {{"libssl3", "3.0.1", "3.0.2", "o=Debian,a=stable-security"},
                           {"libnew", "", "1.0", "o=Debian"}};
  request.plan.kept = {{"kubelet", "held (dpkg hold)"}};
  request.packages = {"kubectl"};
  request.pinned = {{"kubeadm", "1.31.2-1.1"}, {"kubelet", "1.31.2-1.1"}};
  return request;
}

TEST(EngineProtocolTest, RequestRoundTripsEveryField) {
  EngineRequest sent = FullRequest();
  absl::StatusOr<EngineRequest> got = DecodeEngineRequest(EncodeEngineRequest(sent));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->call, EngineCall::kApply);
  EXPECT_EQ(got->options.root, "/srv/node root");
  EXPECT_EQ(got->options.policy.origins_pattern, sent.options.policy.origins_pattern);
  EXPECT_EQ(got->options.policy.allowed_origins, sent.options.policy.allowed_origins);
  EXPECT_EQ(got->options.policy.blacklist, sent.options.policy.blacklist);
  EXPECT_EQ(got->options.policy.whitelist, sent.options.policy.whitelist);
  EXPECT_EQ(got->options.policy.whitelist_strict, std::optional<bool>(true));
  EXPECT_EQ(got->options.policy.holds, sent.options.policy.holds);
  EXPECT_TRUE(got->options.policy.replace_apt_config);
  EXPECT_EQ(got->options.lock_timeout, absl::Minutes(7));
  EXPECT_EQ(got->options.lock_poll_interval, absl::Milliseconds(250));
  EXPECT_EQ(got->plan.upgrades, sent.plan.upgrades);
  EXPECT_EQ(got->plan.kept, sent.plan.kept);
  EXPECT_THAT(got->packages, ElementsAre("kubectl"));
  ASSERT_EQ(got->pinned.size(), 2u);
  EXPECT_EQ(got->pinned[1].package, "kubelet");
  EXPECT_EQ(got->pinned[1].version, "1.31.2-1.1");

  sent.options.policy.whitelist_strict.reset();
  got = DecodeEngineRequest(EncodeEngineRequest(sent));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->options.policy.whitelist_strict.has_value());
}

TEST(EngineProtocolTest, EveryCallNameDecodes) {
  for (EngineCall call :
       {EngineCall::kCheck, EngineCall::kUpdate, EngineCall::kPlan, EngineCall::kApply,
        EngineCall::kInstallPinned, EngineCall::kRepair, EngineCall::kHold, EngineCall::kUnhold,
        EngineCall::kHolds, EngineCall::kRebootRequired, EngineCall::kAvailableVersions}) {
    EngineRequest request = FullRequest();
    request.call = call;
    absl::StatusOr<EngineRequest> got = DecodeEngineRequest(EncodeEngineRequest(request));
    ASSERT_TRUE(got.ok()) << EngineCallName(call) << ": " << got.status();
    EXPECT_EQ(got->call, call) << EngineCallName(call);
  }
}

TEST(EngineProtocolTest, AvailableVersionsNamesExactlyOnePackage) {
  EngineRequest request = FullRequest();
  request.call = EngineCall::kAvailableVersions;
  request.packages = {"kubeadm"};
  absl::StatusOr<EngineRequest> got = DecodeEngineRequest(EncodeEngineRequest(request));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(EngineCallName(got->call), std::string("available_versions"));
  EXPECT_THAT(got->packages, ElementsAre("kubeadm"));
  for (std::vector<std::string> packages :
       {std::vector<std::string>{}, std::vector<std::string>{"kubeadm", "kubelet"}}) {
    request.packages = packages;
    got = DecodeEngineRequest(EncodeEngineRequest(request));
    ASSERT_FALSE(got.ok());
    EXPECT_THAT(got.status().message(), HasSubstr("instead of one"));
  }
}

TEST(EngineProtocolTest, BadRequestsAreClearErrors) {
  auto error = [](const std::string& json) {
    absl::StatusOr<EngineRequest> got = DecodeEngineRequest(json);
    EXPECT_FALSE(got.ok()) << json;
    return std::string(got.status().message());
  };
  EXPECT_THAT(error("not json"), HasSubstr("not a JSON object"));
  EXPECT_THAT(error("[1,2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(error("{}"), HasSubstr("\"call\" is missing"));
  std::string good = EncodeEngineRequest(FullRequest());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  EXPECT_THAT(error(replaced("\"call\":\"apply\"", "\"call\":\"reboot\"")),
              HasSubstr("unknown call \"reboot\""));
  EXPECT_THAT(error(replaced("\"root\":\"/srv/node root\"", "\"root\":\"relative\"")),
              HasSubstr("not absolute"));
  EXPECT_THAT(error(replaced("\"lock_timeout_ms\":420000", "\"lock_timeout_ms\":0")),
              HasSubstr("positive"));
  EXPECT_THAT(error(replaced("\"lock_timeout_ms\":420000", "\"lock_timeout_ms\":\"7m\"")),
              HasSubstr("\"lock_timeout_ms\" is not an integer"));
  EXPECT_THAT(error(replaced("\"holds\":[\"kubelet\",\"kubeadm\"]", "\"holds\":[\"kubelet\",3]")),
              HasSubstr("\"holds\" holds a non-string"));
  EXPECT_THAT(error(replaced("\"whitelist_strict\":true", "\"whitelist_strict\":\"yes\"")),
              HasSubstr("\"whitelist_strict\" is not a boolean"));
}

TEST(EngineProtocolTest, ProgressLinesRoundTrip) {
  ApplyProgress sent{ApplyProgress::Stage::kWaitingForLock, "", 0,
                     "another process (pid 42) holds /var/lib/dpkg/lock"};
  absl::StatusOr<EngineReplyLine> got =
      DecodeEngineReplyLine(EngineCall::kApply, EncodeProgressLine(sent));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->is_progress);
  EXPECT_EQ(got->progress.stage, ApplyProgress::Stage::kWaitingForLock);
  EXPECT_EQ(got->progress.message, sent.message);

  sent = {ApplyProgress::Stage::kInstalling, "libssl3", 62.5, "unpacking"};
  got = DecodeEngineReplyLine(EngineCall::kApply, EncodeProgressLine(sent));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->progress.stage, ApplyProgress::Stage::kInstalling);
  EXPECT_EQ(got->progress.package, "libssl3");
  EXPECT_DOUBLE_EQ(got->progress.percent, 62.5);
}

TEST(EngineProtocolTest, ResultsRoundTripForEachCall) {
  UpgradePlan plan;
  plan.upgrades = {{"a", "1", "2", "o=X"}};
  plan.kept = {{"b", "blacklisted"}};
  absl::StatusOr<EngineReplyLine> got =
      DecodeEngineReplyLine(EngineCall::kPlan, EncodeEndLine(EngineValue(plan)));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_FALSE(got->is_progress);
  ASSERT_TRUE(got->end.ok());
  EXPECT_EQ(std::get<UpgradePlan>(*got->end).upgrades, plan.upgrades);
  EXPECT_EQ(std::get<UpgradePlan>(*got->end).kept, plan.kept);

  ApplyResult applied;
  applied.installed = plan.upgrades;
  applied.skipped = {{"c", "no longer allowed"}};
  applied.repaired_dpkg = true;
  applied.reheld = {"kubelet"};
  applied.reboot = {true, {"linux-image-6.1.0-30-amd64"}};
  got = DecodeEngineReplyLine(EngineCall::kApply, EncodeEndLine(EngineValue(applied)));
  ASSERT_TRUE(got.ok()) << got.status();
  const ApplyResult& a = std::get<ApplyResult>(*got->end);
  EXPECT_EQ(a.installed, applied.installed);
  EXPECT_EQ(a.skipped, applied.skipped);
  EXPECT_TRUE(a.repaired_dpkg);
  EXPECT_THAT(a.reheld, ElementsAre("kubelet"));
  EXPECT_TRUE(a.reboot.required);
  EXPECT_THAT(a.reboot.packages, ElementsAre("linux-image-6.1.0-30-amd64"));

  got = DecodeEngineReplyLine(EngineCall::kRepair, EncodeEndLine(EngineValue(true)));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(std::get<bool>(*got->end));
  got = DecodeEngineReplyLine(EngineCall::kHolds,
                              EncodeEndLine(EngineValue(std::vector<std::string>{"x", "y"})));
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(std::get<std::vector<std::string>>(*got->end), ElementsAre("x", "y"));
  got = DecodeEngineReplyLine(
      EngineCall::kAvailableVersions,
      EncodeEndLine(EngineValue(std::vector<std::string>{"1.32.1-1.1", "1.32.0-1.1"})));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(std::get<std::vector<std::string>>(*got->end),
              ElementsAre("1.32.1-1.1", "1.32.0-1.1"));
  got = DecodeEngineReplyLine(EngineCall::kUpdate, EncodeEndLine(EngineValue(std::monostate{})));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->end.ok());
}

TEST(EngineProtocolTest, ErrorsKeepTheirCode) {
  absl::StatusOr<EngineReplyLine> got = DecodeEngineReplyLine(
      EngineCall::kApply,
      EncodeEndLine(absl::DeadlineExceededError("gave up waiting for the dpkg lock")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->end.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(got->end.status().message(), "gave up waiting for the dpkg lock");
}

TEST(EngineProtocolTest, InvalidUtf8FromDpkgStillMakesAValidReply) {
  // dpkg's output ends up in error messages, and it is not always UTF-8.
  std::string line =
      EncodeEndLine(absl::InternalError("dpkg: error processing f\xe9"
                                        "e.conf"));
  absl::StatusOr<EngineReplyLine> got = DecodeEngineReplyLine(EngineCall::kApply, line);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->end.status().message(),
            "dpkg: error processing f\xEF\xBF\xBD"
            "e.conf");
}

TEST(EngineProtocolTest, GarbageRepliesAreErrorsNotResults) {
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kPlan, "dpkg: warning: garbage").ok());
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kPlan, "{}").ok());
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kPlan, R"({"result":{"upgrade":[]}})").ok());
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kRepair, R"({"result":"yes"})").ok());
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kUpdate, R"({"result":[1]})").ok());
  EXPECT_FALSE(
      DecodeEngineReplyLine(EngineCall::kApply, R"({"error":{"code":0,"message":""}})").ok());
  EXPECT_FALSE(
      DecodeEngineReplyLine(EngineCall::kApply, R"({"error":{"code":99,"message":""}})").ok());
  EXPECT_FALSE(DecodeEngineReplyLine(
                   EngineCall::kApply,
                   R"({"progress":{"stage":"dancing","package":"","percent":0,"message":""}})")
                   .ok());
  // A plan result decoded as an Apply result is wrong, not silently empty.
  UpgradePlan plan;
  EXPECT_FALSE(DecodeEngineReplyLine(EngineCall::kApply, EncodeEndLine(EngineValue(plan))).ok());
}

TEST(EngineProtocolTest, PlanJsonIsThePlanCommandsFormat) {
  UpgradePlan plan;
  plan.upgrades = {{"libfoo", "1.0", "1.1", "o=NodeOS"}};
  plan.kept = {{"blk", "blacklisted"}};
  EXPECT_EQ(PlanToJson(plan),
            R"({"kept":[{"package":"blk","reason":"blacklisted"}],)"
            R"("upgrade":[{"from":"1.0","origin":"o=NodeOS","package":"libfoo","to":"1.1"}]})");
}

}  // namespace
}  // namespace tended::agent::apt
