// The Agent under a REBOOT lease: what BeginDisruption's answers mean at both fence checks,
// a lease adopted mid-disruption when no reboot is needed any more, and a refused release.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/agent/agent_fixture.h"

namespace tended::agent {
namespace {

using tended::v1::LEASE_KIND_REBOOT;
using tended::v1::LEASE_PHASE_DISRUPTING;
using tended::v1::LEASE_PHASE_GRANTED;
using ::testing::HasSubstr;

class AgentRebootTest : public AgentFixture {};

TEST_F(AgentRebootTest, UnavailableFromBeginDisruptionKeepsTheLeaseAndRebootsOnlyAfterOk) {
  NeedReboot();
  CoordinatorHolds(MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED));
  client_.begin_disruption.script.push_back(
      absl::UnavailableError("halted by alice: kernel regression"));
  client_.begin_disruption.script.push_back(
      absl::UnavailableError("outside the maintenance window"));
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);

  RunFor(*agent, absl::Seconds(1));  // Granted at once; the first fence check says wait.
  ASSERT_EQ(client_.begin_disruption.calls(), 1);
  EXPECT_TRUE(agent->journal().has_lease());
  EXPECT_EQ(agent->journal().step(), "");
  EXPECT_TRUE(agent->connected());
  EXPECT_THAT(agent->status(), HasSubstr("halted by alice: kernel regression"));
  EXPECT_EQ(client_.report_facts.calls(), 1);  // Not taken for a lost connection.

  RunFor(*agent, absl::Seconds(28));
  EXPECT_EQ(client_.begin_disruption.calls(), 1);
  RunFor(*agent, absl::Seconds(2));  // Asked again after 30 s, and renewed meanwhile.
  EXPECT_EQ(client_.begin_disruption.calls(), 2);
  EXPECT_GE(client_.renew_lease.calls(), 1);
  EXPECT_THAT(agent->status(), HasSubstr("outside the maintenance window"));
  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_TRUE(agent->journal().has_lease());

  RunFor(*agent, absl::Seconds(30));  // OK: the step is journaled, the pause begins.
  EXPECT_EQ(client_.begin_disruption.calls(), 3);
  EXPECT_EQ(JournalOnDisk().step(), kRebootStep);
  EXPECT_EQ(rebooter_.reboots(), 0);
  RunFor(*agent, config_.reboot.delay);  // The final check, then the reboot.
  EXPECT_EQ(client_.begin_disruption.calls(), 4);
  EXPECT_EQ(rebooter_.reboots(), 1);
  EXPECT_EQ(client_.release_lease.calls(), 0);
}

TEST_F(AgentRebootTest, UnavailableAtTheFinalCheckPostponesTheReboot) {
  NeedReboot();
  CoordinatorHolds(MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED));
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.begin_disruption.calls(), 1);
  ASSERT_EQ(agent->journal().step(), kRebootStep);

  client_.begin_disruption.script.push_back(absl::UnavailableError("an alert fires: NodeDown"));
  RunFor(*agent, config_.reboot.delay);
  EXPECT_EQ(client_.begin_disruption.calls(), 2);
  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_TRUE(agent->journal().has_lease());
  EXPECT_EQ(agent->journal().step(), kRebootStep);
  EXPECT_THAT(agent->status(), HasSubstr("NodeDown"));

  RunFor(*agent, absl::Seconds(28));  // The check is asked again 30 s after the refusal.
  EXPECT_EQ(rebooter_.reboots(), 0);
  RunFor(*agent, absl::Seconds(2));
  EXPECT_EQ(client_.begin_disruption.calls(), 3);
  EXPECT_EQ(rebooter_.reboots(), 1);
}

TEST_F(AgentRebootTest, FailedPreconditionFromBeginDisruptionForgetsTheLease) {
  NeedReboot();
  CoordinatorHolds(MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED));
  client_.begin_disruption.script.push_back(
      absl::FailedPreconditionError("fencing token 7 is stale"));
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  agent->RunOnce();
  EXPECT_EQ(client_.begin_disruption.calls(), 1);
  EXPECT_FALSE(agent->journal().has_lease());
  EXPECT_FALSE(JournalOnDisk().has_lease());
  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_EQ(client_.release_lease.calls(), 0);
}

// Fault 12: the journal was lost after BeginDisruption, the node did not reboot, and the
// reboot-required sentinel is gone. The coordinator re-sends the lease it holds.
TEST_F(AgentRebootTest, ALeaseAdoptedMidDisruptionWithNoRebootRequiredIsReleasedWithoutReboot) {
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_DISRUPTING);
  CoordinatorHolds(lease);
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  RunFor(*agent, absl::Minutes(2));

  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_EQ(client_.begin_disruption.calls(), 0);
  ASSERT_EQ(client_.release_lease.calls(), 1);
  EXPECT_EQ(client_.release_lease.last().lease_id(), lease.id());
  EXPECT_EQ(client_.release_lease.last().fencing_token(), lease.fencing_token());
  EXPECT_THAT(client_.release_lease.last().reason(), HasSubstr("did not reboot"));
  EXPECT_FALSE(agent->journal().has_lease());
}

TEST_F(AgentRebootTest, ALeaseAdoptedMidDisruptionThatStillNeedsItsRebootRebootsOnce) {
  NeedReboot();
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_DISRUPTING);
  CoordinatorHolds(lease);
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  RunFor(*agent, absl::Minutes(2));
  EXPECT_EQ(rebooter_.reboots(), 1);
  EXPECT_EQ(client_.release_lease.calls(), 0);
  EXPECT_EQ(client_.begin_disruption.calls(), 2);
}

TEST_F(AgentRebootTest, TheNeedGoingAwayDuringThePauseReturnsTheLeaseWithoutReboot) {
  NeedReboot();
  CoordinatorHolds(MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED));
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(agent->journal().step(), kRebootStep);
  RebootNoLongerNeeded();
  RunFor(*agent, config_.reboot.delay);
  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_EQ(client_.begin_disruption.calls(), 1);
  ASSERT_EQ(client_.release_lease.calls(), 1);
  EXPECT_THAT(client_.release_lease.last().reason(), HasSubstr("did not reboot"));
  EXPECT_FALSE(agent->journal().has_lease());
  EXPECT_FALSE(PathExists(root_.Resolve(config_.reboot.gated_sentinel)));
}

// Fault 12: a FAILED_PRECONDITION answer to ReleaseLease does not prove the lease gone.
TEST_F(AgentRebootTest, ARefusedReleaseKeepsALeaseTheCoordinatorStillRenews) {
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED);
  CoordinatorHolds(lease);
  for (int i = 0; i < 3; ++i) {
    client_.release_lease.script.push_back(
        absl::FailedPreconditionError("lease lease-7 is being returned; try again"));
  }
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));  // No reboot is required: give it back.
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.release_lease.calls(), 1);
  EXPECT_EQ(client_.renew_lease.calls(), 1);  // The check.
  EXPECT_TRUE(agent->journal().has_lease());
  EXPECT_TRUE(JournalOnDisk().has_lease());
  EXPECT_THAT(agent->status(), HasSubstr("refused to take it back"));

  // Held and renewed meanwhile; the release is asked again every 30 s.
  RunFor(*agent, absl::Seconds(58));
  EXPECT_EQ(client_.release_lease.calls(), 2);
  EXPECT_GE(client_.renew_lease.calls(), 2);
  EXPECT_TRUE(agent->journal().has_lease());
  RunFor(*agent, absl::Seconds(60));
  EXPECT_EQ(client_.release_lease.calls(), 4);  // The fourth is accepted.
  EXPECT_FALSE(agent->journal().has_lease());
  EXPECT_EQ(rebooter_.reboots(), 0);
}

TEST_F(AgentRebootTest, ARefusedReleaseDropsTheLeaseWhenTheRenewalIsRefusedToo) {
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED);
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  client_.release_lease.script.push_back(absl::FailedPreconditionError("no lease lease-7"));
  client_.renew_lease.script.push_back(absl::FailedPreconditionError("no lease lease-7"));
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  agent->RunOnce();
  EXPECT_EQ(client_.release_lease.calls(), 1);
  EXPECT_EQ(client_.renew_lease.calls(), 1);
  EXPECT_FALSE(agent->journal().has_lease());
  EXPECT_FALSE(JournalOnDisk().has_lease());
}

TEST_F(AgentRebootTest, AnUnreachableCoordinatorOnReleaseKeepsTheLease) {
  const tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED);
  CoordinatorHolds(lease);
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  client_.release_lease.script.push_back(absl::UnavailableError("connection refused"));
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  agent->RunOnce();
  EXPECT_FALSE(agent->connected());
  EXPECT_TRUE(agent->journal().has_lease());
  RunFor(*agent, absl::Seconds(5));  // Reconnects and gives it back.
  EXPECT_TRUE(agent->connected());
  EXPECT_EQ(client_.release_lease.calls(), 2);
  EXPECT_FALSE(agent->journal().has_lease());
}

}  // namespace
}  // namespace tended::agent
