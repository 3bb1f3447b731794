// The Agent under an OS_UPGRADE lease: BeginDisruption("dpkg") names exactly the plan's
// packages and versions at that moment, that set is journaled before dpkg starts and is
// exactly what Apply gets, a "not yet" installs nothing, and an interrupted step is
// reported with the journaled set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/agent/agent_fixture.h"

namespace tended::agent {
namespace {

using tended::testing::FakePackageManager;
using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_PHASE_DISRUPTING;
using tended::v1::LEASE_PHASE_GRANTED;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Describe(
    const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& changes) {
  std::vector<std::string> lines;
  for (const auto& c : changes) {
    lines.push_back(absl::StrCat(c.name(), "=", c.from_version(), "->", c.to_version()));
  }
  return lines;
}

class AgentOsUpgradeTest : public AgentFixture {
 protected:
  static apt::UpgradePlan Plan(const std::string& openssl_to) {
    apt::UpgradePlan plan;
    plan.upgrades.push_back({"libc6", "2.36-9+deb12u8", "2.36-9+deb12u9", "o=Debian,a=stable"});
    plan.upgrades.push_back({"openssl", "3.0.15-1~deb12u1", openssl_to, "o=Debian,a=stable"});
    return plan;
  }
};

TEST_F(AgentOsUpgradeTest, InstallsExactlyTheSetNamedInBeginDisruptionAndJournaledFirst) {
  packages_.plan = Plan("3.0.16-1~deb12u1");
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED));
  tended::state::v1::AgentState journal_at_apply;
  packages_.on_apply = [&](const apt::UpgradePlan& plan) -> absl::StatusOr<apt::ApplyResult> {
    journal_at_apply = JournalOnDisk();
    apt::ApplyResult result;
    result.installed = plan.upgrades;
    return result;
  };
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(5));

  ASSERT_EQ(client_.begin_disruption.calls(), 1);
  EXPECT_EQ(client_.begin_disruption.last().step(), kDpkgStep);
  const std::vector<std::string> expected = {"libc6=2.36-9+deb12u8->2.36-9+deb12u9",
                                             "openssl=3.0.15-1~deb12u1->3.0.16-1~deb12u1"};
  EXPECT_EQ(Describe(client_.begin_disruption.last().packages()), expected);
  // Journaled before dpkg started.
  EXPECT_EQ(journal_at_apply.step(), kDpkgStep);
  EXPECT_EQ(Describe(journal_at_apply.step_packages()), expected);
  ASSERT_EQ(packages_.applied.size(), 1u);
  EXPECT_EQ(FakePackageManager::Describe(packages_.applied[0]), expected);
  ASSERT_EQ(client_.report_step.calls(), 1);
  EXPECT_EQ(client_.report_step.last().report().state(), tended::v1::STEP_STATE_SUCCEEDED);
  EXPECT_EQ(Describe(client_.report_step.last().report().packages()), expected);
}

TEST_F(AgentOsUpgradeTest,
       UnavailableFromTheDpkgFenceInstallsNothingAndTheNextAskNamesThePlanThen) {
  config_.apt.plan_interval = absl::Minutes(1);
  packages_.plan = Plan("3.0.16-1~deb12u1");
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED));
  for (int i = 0; i < 3; ++i) {
    client_.begin_disruption.script.push_back(
        absl::UnavailableError("the canary has not vetted openssl 3.0.16-1~deb12u1 yet"));
  }
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.begin_disruption.calls(), 1);
  EXPECT_TRUE(packages_.applied.empty());
  EXPECT_TRUE(agent->journal().has_lease());
  EXPECT_EQ(agent->journal().step(), "");
  EXPECT_TRUE(agent->journal().step_packages().empty());
  EXPECT_THAT(agent->status(), HasSubstr("has not vetted"));

  // A newer version appears; the plan is refreshed at 60 s.
  packages_.plan = Plan("3.0.17-1~deb12u1");
  RunFor(*agent, absl::Seconds(29));
  ASSERT_EQ(client_.begin_disruption.calls(), 2);  // At 30 s, with the plan of then.
  EXPECT_THAT(Describe(client_.begin_disruption.last().packages()),
              ElementsAre(HasSubstr("libc6"), "openssl=3.0.15-1~deb12u1->3.0.16-1~deb12u1"));
  RunFor(*agent, absl::Seconds(30));
  ASSERT_EQ(client_.begin_disruption.calls(), 3);  // At 60 s, after the refresh.
  EXPECT_THAT(Describe(client_.begin_disruption.last().packages()),
              ElementsAre(HasSubstr("libc6"), "openssl=3.0.15-1~deb12u1->3.0.17-1~deb12u1"));
  EXPECT_TRUE(packages_.applied.empty());

  RunFor(*agent, absl::Seconds(30));  // OK at 90 s.
  ASSERT_EQ(client_.begin_disruption.calls(), 4);
  ASSERT_EQ(packages_.applied.size(), 1u);
  EXPECT_THAT(FakePackageManager::Describe(packages_.applied[0]),
              ElementsAre(HasSubstr("libc6"), "openssl=3.0.15-1~deb12u1->3.0.17-1~deb12u1"));
  EXPECT_EQ(Describe(client_.begin_disruption.last().packages()),
            FakePackageManager::Describe(packages_.applied[0]));
}

TEST_F(AgentOsUpgradeTest, AnInterruptedDpkgStepIsReportedWithTheJournaledSet) {
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_DISRUPTING);
  CoordinatorHolds(lease);
  tended::state::v1::AgentState journal;
  journal.set_format_version(1);
  *journal.mutable_lease() = lease;
  journal.set_step(kDpkgStep);
  journal.set_boot_id_before_step(kBootId);
  *journal.mutable_step_start_time() = ToProtoTimestamp(clock_.Now() - absl::Minutes(3));
  tended::v1::PackageChange* change = journal.add_step_packages();
  change->set_name("openssl");
  change->set_from_version("3.0.15-1~deb12u1");
  change->set_to_version("3.0.16-1~deb12u1");
  ASSERT_TRUE(MakeDirectories(root_.Resolve(config_.state_dir)).ok());
  ASSERT_TRUE(WriteProtoJsonFile(StatePath("agent-state.json"), journal).ok());
  // By now the plan would name a newer version: the report names what dpkg was started on.
  packages_.plan = Plan("3.0.17-1~deb12u1");
  packages_.dpkg_interrupted = true;

  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(packages_.repairs, 1);
  ASSERT_EQ(agent->journal().step_report().state(), tended::v1::STEP_STATE_INTERRUPTED);
  EXPECT_THAT(Describe(agent->journal().step_report().packages()),
              ElementsAre("openssl=3.0.15-1~deb12u1->3.0.16-1~deb12u1"));
  RunFor(*agent, absl::Seconds(5));
  ASSERT_EQ(client_.report_step.calls(), 1);
  EXPECT_EQ(client_.report_step.last().report().state(), tended::v1::STEP_STATE_INTERRUPTED);
  EXPECT_THAT(Describe(client_.report_step.last().report().packages()),
              ElementsAre("openssl=3.0.15-1~deb12u1->3.0.16-1~deb12u1"));
  EXPECT_TRUE(packages_.applied.empty());  // Never redone.
  EXPECT_EQ(client_.begin_disruption.calls(), 0);
}

TEST_F(AgentOsUpgradeTest, AFailedApplyReportsTheRequestedSet) {
  packages_.plan = Plan("3.0.16-1~deb12u1");
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED));
  packages_.on_apply = [](const apt::UpgradePlan&) -> absl::StatusOr<apt::ApplyResult> {
    return absl::InternalError("dpkg returned an error code (1)");
  };
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(5));
  ASSERT_EQ(client_.report_step.calls(), 1);
  const tended::v1::StepReport& report = client_.report_step.last().report();
  EXPECT_EQ(report.state(), tended::v1::STEP_STATE_FAILED);
  EXPECT_EQ(Describe(report.packages()), Describe(client_.begin_disruption.last().packages()));
}

// Every plan's outcome reaches the status /metrics reads; a process restart forgets it.
TEST_F(AgentOsUpgradeTest, PlansArePublishedForMetrics) {
  config_.apt.plan_interval = absl::Minutes(1);
  packages_.plan = Plan("3.0.16-1~deb12u1");
  packages_.plan.upgrades[0].origin = "o=Debian,a=stable-security,l=Debian-Security";
  packages_.plan.kept = {{"kubelet", "held (tended holds)"}};
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  const absl::Time start = clock_.Now();
  RunFor(*agent, absl::Seconds(1));
  std::optional<AptPlanSummary> summary = plan_status_.Get();
  ASSERT_TRUE(summary.has_value());
  EXPECT_FALSE(summary->failed);
  EXPECT_EQ(summary->plan_time, start);
  EXPECT_EQ(summary->upgrades, 2);
  EXPECT_EQ(summary->security_upgrades, 1);
  EXPECT_EQ(summary->kept["held"], 1);

  packages_.plan_error = absl::InternalError("the lists are corrupt");
  RunFor(*agent, absl::Minutes(1));
  summary = plan_status_.Get();
  ASSERT_TRUE(summary.has_value());
  EXPECT_TRUE(summary->failed);
  EXPECT_EQ(summary->plan_time, start);
  EXPECT_EQ(summary->attempt_time, start + absl::Minutes(1));

  agent->SimulateRestartForTest();
  EXPECT_FALSE(plan_status_.Get().has_value());
}

// A refused step report does not prove the lease gone: the coordinator may still hold it (it
// refuses a report it cannot take, e.g. one for a phase it does not expect). Only a refused
// renewal drops the lease; while it is held the agent keeps it and its facts carry the result.
TEST_F(AgentOsUpgradeTest, ARefusedStepReportKeepsALeaseTheCoordinatorStillHolds) {
  packages_.plan = Plan("3.0.16-1~deb12u1");
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED));
  client_.report_step.script.push_back(
      absl::FailedPreconditionError("lease os_upgrade-node-a-7 does not take this report"));
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(30));
  ASSERT_EQ(client_.report_step.calls(), 1) << "a refused report is not sent again and again";
  ASSERT_TRUE(JournalOnDisk().has_lease()) << "the agent dropped a lease the coordinator holds";
  EXPECT_EQ(JournalOnDisk().lease().id(), held_->id());
  EXPECT_GT(client_.renew_lease.calls(), 0);
  EXPECT_EQ(client_.report_facts.last().facts().os_upgrade().last_step().state(),
            tended::v1::STEP_STATE_SUCCEEDED);

  // Once the coordinator no longer holds it, the next renewal drops it.
  held_.reset();
  RunFor(*agent, absl::Seconds(60));
  EXPECT_FALSE(JournalOnDisk().has_lease());
}

// A report refused as malformed never goes into the facts, which the same rules would refuse:
// the node keeps reporting.
TEST_F(AgentOsUpgradeTest, AMalformedStepReportIsNotCarriedInTheFacts) {
  packages_.plan = Plan("3.0.16-1~deb12u1");
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED));
  client_.report_step.script.push_back(absl::InvalidArgumentError("report.message: too long"));
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(30));
  ASSERT_GE(client_.report_step.calls(), 1);
  EXPECT_EQ(client_.report_step.requests[0].report().state(), tended::v1::STEP_STATE_SUCCEEDED);
  for (const tended::v1::ReportFactsRequest& report : client_.report_facts.requests) {
    EXPECT_NE(report.facts().os_upgrade().last_step().state(), tended::v1::STEP_STATE_SUCCEEDED)
        << "the refused report went into the facts";
  }
}

}  // namespace
}  // namespace tended::agent
