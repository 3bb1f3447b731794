// The apt plan's summary for /metrics: kept-back reasons as the engine words them fall into
// their classes, security origins are told from the others, and the status keeps the last
// computed plan's counts through a failed attempt.
#include "agent/apt_plan_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended::agent {
namespace {

TEST(KeptReasonClassTest, ClassifiesThePlannersReasons) {
  // The reasons agent/apt/engine/planner.cc gives, one per class.
  EXPECT_EQ(KeptReasonClass("held (dpkg hold)"), "held");
  EXPECT_EQ(KeptReasonClass("held (tended holds)"), "held");
  EXPECT_EQ(KeptReasonClass("blacklisted (Package-Blacklist \"linux-\")"), "blacklisted");
  EXPECT_EQ(KeptReasonClass("not in Package-Whitelist"), "not_whitelisted");
  EXPECT_EQ(KeptReasonClass("newer version 2.0 is only available from a disallowed origin "
                            "(o=Other,a=unstable)"),
            "origin");
  EXPECT_EQ(KeptReasonClass("the allowed version 1.1 has a lower pin priority than the "
                            "installed one"),
            "origin");
  EXPECT_EQ(KeptReasonClass("version 1.1 is not from a trusted source (o=NodeOS)"), "untrusted");
  EXPECT_EQ(KeptReasonClass("version 1.1 has Upgrade-Requires: app-restart "
                            "(IgnoreAppsRequireRestart is off)"),
            "app_restart");
  EXPECT_EQ(KeptReasonClass("needs blk >= 1.1, which is blacklisted"), "dependencies");
  EXPECT_EQ(KeptReasonClass("would remove libold"), "dependencies");
  EXPECT_EQ(KeptReasonClass("its candidate 1.1 is refused: held"), "dependencies");
  EXPECT_EQ(KeptReasonClass("cannot be upgraded together with the other upgrades"), "dependencies");
  EXPECT_EQ(KeptReasonClass("could not be marked for upgrade (its dependencies cannot be "
                            "resolved)"),
            "dependencies");
  EXPECT_EQ(KeptReasonClass("something new"), "other");
  EXPECT_EQ(KeptReasonClass(""), "other");
}

TEST(IsSecurityOriginTest, ArchiveCodenameOrLabel) {
  EXPECT_TRUE(
      IsSecurityOrigin("o=Debian,a=stable-security,n=bookworm-security,l=Debian-Security,"
                       "c=main,site=security.debian.org"));
  EXPECT_TRUE(IsSecurityOrigin("o=Ubuntu,a=jammy-security,n=jammy,l=Ubuntu,c=main"));
  EXPECT_TRUE(IsSecurityOrigin("o=NodeOS,n=bookworm-security"));
  EXPECT_TRUE(IsSecurityOrigin("o=Debian,a=oldoldstable,n=stretch/updates,c=main"));
  EXPECT_TRUE(IsSecurityOrigin("l=Debian-Security"));
  EXPECT_FALSE(IsSecurityOrigin("o=Debian,a=stable,n=bookworm,l=Debian,c=main"));
  EXPECT_FALSE(IsSecurityOrigin("o=Debian,a=stable-updates,n=bookworm-updates,l=Debian"));
  // Only the field's value counts, and an escaped comma stays inside it.
  EXPECT_FALSE(IsSecurityOrigin("o=my-security,a=stable"));
  EXPECT_FALSE(IsSecurityOrigin("o=x\\,a=bookworm-security,a=stable"));
  EXPECT_FALSE(IsSecurityOrigin("now"));
  EXPECT_FALSE(IsSecurityOrigin(""));
}

apt::UpgradePlan SamplePlan() {
  apt::UpgradePlan plan;
  plan.upgrades = {
      {"libc6", "2.36-9+deb12u8", "2.36-9+deb12u9", "o=Debian,a=stable-security,l=Debian-Security"},
      {"openssl", "3.0.15", "3.0.16", "o=Debian,n=bookworm-security"},
      {"tzdata", "2024a", "2025a", "o=Debian,a=stable-updates"},
  };
  plan.kept = {{"kubelet", "held (tended holds)"},
               {"kubeadm", "held (dpkg hold)"},
               {"linux-image-amd64", "blacklisted (Package-Blacklist \"linux-\")"},
               {"app", "needs blk >= 1.1, which is blacklisted"}};
  return plan;
}

TEST(AptPlanStatusTest, SummarizesAndKeepsTheLastPlanThroughAFailure) {
  AptPlanStatus status;
  EXPECT_FALSE(status.Get().has_value());

  const absl::Time first = absl::FromUnixSeconds(1767225600);
  status.PlanComputed(SamplePlan(), first);
  std::optional<AptPlanSummary> summary = status.Get();
  ASSERT_TRUE(summary.has_value());
  EXPECT_FALSE(summary->failed);
  EXPECT_EQ(summary->attempt_time, first);
  EXPECT_EQ(summary->plan_time, first);
  EXPECT_EQ(summary->upgrades, 3);
  EXPECT_EQ(summary->security_upgrades, 2);
  EXPECT_EQ(summary->kept.size(), std::size(kKeptReasons));
  EXPECT_EQ(summary->kept["held"], 2);
  EXPECT_EQ(summary->kept["blacklisted"], 1);
  EXPECT_EQ(summary->kept["dependencies"], 1);
  EXPECT_EQ(summary->kept["origin"], 0);

  const absl::Time second = first + absl::Hours(1);
  status.PlanFailed(second);
  summary = status.Get();
  ASSERT_TRUE(summary.has_value());
  EXPECT_TRUE(summary->failed);
  EXPECT_EQ(summary->attempt_time, second);
  EXPECT_EQ(summary->plan_time, first) << "a failed attempt does not move the plan's time";
  EXPECT_EQ(summary->upgrades, 3);

  // A new plan clears the failure and replaces the counts.
  status.PlanComputed(apt::UpgradePlan(), second + absl::Hours(1));
  summary = status.Get();
  EXPECT_FALSE(summary->failed);
  EXPECT_EQ(summary->upgrades, 0);
  EXPECT_EQ(summary->security_upgrades, 0);
  EXPECT_EQ(summary->kept["held"], 0);

  status.Reset();
  EXPECT_FALSE(status.Get().has_value());
}

TEST(AptPlanStatusTest, AFailureBeforeAnyPlanHasNoPlanTime) {
  AptPlanStatus status;
  status.PlanFailed(absl::FromUnixSeconds(1767225600));
  std::optional<AptPlanSummary> summary = status.Get();
  ASSERT_TRUE(summary.has_value());
  EXPECT_TRUE(summary->failed);
  EXPECT_FALSE(summary->plan_time.has_value());
}

}  // namespace
}  // namespace tended::agent
