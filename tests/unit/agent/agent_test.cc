// The Agent's identity and reports: the persistent instance id on every call, the lease it
// holds, the highest fencing token and the coordinator's state id in every facts report,
// and the coordinator's report interval followed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent/instance_id.h"
#include "tests/unit/agent/agent_fixture.h"

namespace tended::agent {
namespace {

using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_KIND_REBOOT;
using tended::v1::LEASE_PHASE_GRANTED;
using ::testing::HasSubstr;

class AgentTest : public AgentFixture {};

TEST_F(AgentTest, MakesItsInstanceIdOnceAndKeepsItAcrossRestarts) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  const std::string id = agent->instance_id();
  EXPECT_TRUE(IsUuid(id)) << id;
  auto text = ReadFileToString(StatePath("agent-id"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, id + "\n");
  struct stat st;
  ASSERT_EQ(::stat(StatePath("agent-id").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  agent.reset();
  auto again = StartAgent();
  EXPECT_EQ(again->instance_id(), id);
  again->SimulateRestartForTest();
  EXPECT_EQ(again->instance_id(), id);
}

TEST_F(AgentTest, ReplacesAGarbageInstanceIdWithANewOne) {
  ASSERT_TRUE(MakeDirectories(root_.Resolve(config_.state_dir)).ok());
  ASSERT_TRUE(WriteFileAtomically(StatePath("agent-id"), "cloned from the golden image\n").ok());
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  const std::string id = agent->instance_id();
  EXPECT_TRUE(IsUuid(id)) << id;
  EXPECT_EQ(*ReadFileToString(StatePath("agent-id")), id + "\n");
  agent.reset();
  EXPECT_EQ(StartAgent()->instance_id(), id);
}

TEST_F(AgentTest, SendsItsInstanceIdWithEveryCall) {
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  const std::string id = agent->instance_id();

  // A reboot request waits, then is withdrawn: ReportFacts, WatchDirectives, AcquireLease,
  // CancelLeaseRequest.
  NeedReboot();
  RunFor(*agent, absl::Seconds(1));
  RebootNoLongerNeeded();
  agent->Wake();
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.cancel_lease_request.calls(), 1);

  // A reboot lease whose act must wait, renewed meanwhile, then given back: BeginDisruption,
  // RenewLease, ReleaseLease.
  NeedReboot();
  CoordinatorHolds(MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED, "lease-1", 1));
  client_.begin_disruption.script.push_back(absl::UnavailableError("halted"));
  client_.begin_disruption.script.push_back(absl::UnavailableError("halted"));
  RunFor(*agent, absl::Seconds(31));
  RebootNoLongerNeeded();
  RunFor(*agent, absl::Seconds(31));
  ASSERT_FALSE(agent->journal().has_lease());

  // An OS upgrade: its BeginDisruption and ReportStep.
  packages_.plan.upgrades.push_back({"openssl", "3.0.15-1", "3.0.16-1", "o=Debian"});
  CoordinatorHolds(MakeLease(LEASE_KIND_OS_UPGRADE, LEASE_PHASE_GRANTED, "lease-2", 2));
  agent->SimulateRestartForTest();  // Plans again at once.
  RunFor(*agent, absl::Seconds(5));
  ASSERT_EQ(packages_.applied.size(), 1u);

  auto expect_id = [&](const auto& method, const char* name) {
    EXPECT_GT(method.calls(), 0) << name << " was never called";
    for (const auto& request : method.requests) {
      EXPECT_EQ(request.agent_instance_id(), id) << name;
    }
  };
  expect_id(client_.report_facts, "ReportFacts");
  expect_id(client_.acquire_lease, "AcquireLease");
  expect_id(client_.renew_lease, "RenewLease");
  expect_id(client_.begin_disruption, "BeginDisruption");
  expect_id(client_.release_lease, "ReleaseLease");
  expect_id(client_.cancel_lease_request, "CancelLeaseRequest");
  expect_id(client_.report_step, "ReportStep");
  ASSERT_FALSE(client_.watches.empty());
  for (const auto& watch : client_.watches) {
    EXPECT_EQ(watch.agent_instance_id(), id);
    EXPECT_EQ(watch.node_name(), kNode);
  }
}

TEST_F(AgentTest, ReportsTheLeaseItHoldsTheHighestTokenAndTheCoordinatorsStateId) {
  std::string state_id = "state-1";
  client_.report_facts.otherwise = [&](const tended::v1::ReportFactsRequest&) {
    tended::v1::ReportFactsResponse response;
    response.set_state_id(state_id);
    return absl::StatusOr<tended::v1::ReportFactsResponse>(response);
  };
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  agent->RunOnce();
  ASSERT_EQ(client_.report_facts.calls(), 1);
  EXPECT_FALSE(client_.report_facts.last().has_held_lease());
  EXPECT_EQ(client_.report_facts.last().max_fencing_token_seen(), 0u);
  EXPECT_EQ(client_.report_facts.last().coordinator_state_id(), "");

  // A lease arrives (the coordinator drains first, so it is only held).
  NeedReboot();
  tended::v1::Lease lease = MakeLease(LEASE_KIND_REBOOT, LEASE_PHASE_GRANTED, "lease-41", 41);
  lease.set_preparing(true);
  CoordinatorHolds(lease);
  ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  ASSERT_TRUE(client_.SendDirective(ReportNow()));
  agent->RunOnce();
  ASSERT_EQ(client_.report_facts.calls(), 2);
  EXPECT_EQ(client_.report_facts.last().held_lease().id(), "lease-41");
  EXPECT_EQ(client_.report_facts.last().max_fencing_token_seen(), 41u);
  EXPECT_EQ(client_.report_facts.last().coordinator_state_id(), "state-1");

  // A restarted agent reports the same from its journal.
  agent.reset();
  state_id = "state-2";
  agent = StartAgent();
  agent->RunOnce();
  const tended::v1::ReportFactsRequest& first = client_.report_facts.last();
  EXPECT_EQ(first.held_lease().id(), "lease-41");
  EXPECT_EQ(first.held_lease().fencing_token(), 41u);
  EXPECT_EQ(first.max_fencing_token_seen(), 41u);
  EXPECT_EQ(first.coordinator_state_id(), "state-1");
  // It keeps the state id it was answered with.
  EXPECT_EQ(JournalOnDisk().coordinator_state_id(), "state-2");

  // The lease ends: nothing is held, and the highest token stays.
  held_.reset();
  ASSERT_TRUE(client_.SendDirective(Revoked(lease)));
  ASSERT_TRUE(client_.SendDirective(ReportNow()));
  agent->RunOnce();
  EXPECT_FALSE(client_.report_facts.last().has_held_lease());
  EXPECT_EQ(client_.report_facts.last().max_fencing_token_seen(), 41u);
  EXPECT_EQ(client_.report_facts.last().coordinator_state_id(), "state-2");
  EXPECT_EQ(JournalOnDisk().max_fencing_token_seen(), 41u);
}

TEST_F(AgentTest, FollowsTheCoordinatorsReportInterval) {
  // Configured slower than the coordinator's report deadline (2 minutes by default).
  config_.report_interval = absl::Minutes(10);
  client_.report_facts.otherwise = [](const tended::v1::ReportFactsRequest&) {
    tended::v1::ReportFactsResponse response;
    *response.mutable_report_interval() = ToProtoDuration(absl::Seconds(20));
    return absl::StatusOr<tended::v1::ReportFactsResponse>(response);
  };
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(61));
  EXPECT_EQ(client_.report_facts.calls(), 4);  // At 0, 20, 40 and 60 s.
  EXPECT_EQ(agent->report_interval(), absl::Seconds(20));
}

TEST_F(AgentTest, UsesItsOwnIntervalUntilTheCoordinatorNamesOne) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(61));
  EXPECT_EQ(client_.report_facts.calls(), 3);  // At 0, 30 and 60 s.
  EXPECT_EQ(agent->report_interval(), absl::Seconds(30));
}

TEST_F(AgentTest, ClampsTheCoordinatorsReportInterval) {
  absl::Duration told = absl::Milliseconds(100);
  client_.report_facts.otherwise = [&](const tended::v1::ReportFactsRequest&) {
    tended::v1::ReportFactsResponse response;
    if (told != absl::ZeroDuration()) *response.mutable_report_interval() = ToProtoDuration(told);
    return absl::StatusOr<tended::v1::ReportFactsResponse>(response);
  };
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(10));
  EXPECT_EQ(agent->report_interval(), absl::Seconds(1));
  EXPECT_EQ(client_.report_facts.calls(), 11);  // Every second, not every 100 ms.

  told = absl::Hours(10);
  RunFor(*agent, absl::Seconds(1));
  EXPECT_EQ(agent->report_interval(), absl::Hours(1));
  // An answer without an interval changes nothing.
  told = absl::ZeroDuration();
  RunFor(*agent, absl::Hours(1));
  EXPECT_EQ(agent->report_interval(), absl::Hours(1));
  // A restarted agent starts from its own again.
  agent->SimulateRestartForTest();
  EXPECT_EQ(agent->report_interval(), absl::Seconds(30));
}

TEST_F(AgentTest, CancelsOneKindsRequestWhenAnotherKindComesFirst) {
  // Waiting for an OS upgrade lease when a reboot becomes necessary: the reboot goes first.
  packages_.plan.upgrades.push_back({"openssl", "3.0.15-1", "3.0.16-1", "o=Debian"});
  auto agent = StartAgent(/*os_upgrades=*/true);
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.acquire_lease.calls(), 1);
  EXPECT_EQ(client_.acquire_lease.last().kind(), LEASE_KIND_OS_UPGRADE);
  EXPECT_THAT(agent->status(), HasSubstr("waiting for an OS upgrade lease"));

  NeedReboot();
  agent->Wake();
  RunFor(*agent, absl::Seconds(1));
  ASSERT_EQ(client_.cancel_lease_request.calls(), 1);
  EXPECT_EQ(client_.cancel_lease_request.last().kind(), LEASE_KIND_OS_UPGRADE);
  ASSERT_EQ(client_.acquire_lease.calls(), 2);
  EXPECT_EQ(client_.acquire_lease.last().kind(), LEASE_KIND_REBOOT);
  EXPECT_THAT(client_.acquire_lease.last().reason(), HasSubstr("linux-image-6.1.0-28-amd64"));
  EXPECT_THAT(agent->status(), HasSubstr("waiting for a reboot lease"));

  // A waiting request is repeated every check period, not more often.
  RunFor(*agent, config_.check_period - absl::Seconds(2));
  EXPECT_EQ(client_.acquire_lease.calls(), 2);
  RunFor(*agent, absl::Seconds(2));
  EXPECT_EQ(client_.acquire_lease.calls(), 3);
}

}  // namespace
}  // namespace tended::agent
