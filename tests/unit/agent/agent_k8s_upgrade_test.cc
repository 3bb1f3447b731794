// The Agent under a K8S_UPGRADE lease, against a scripted coordinator: each typed step
// behind its own BeginDisruption and journaled in flight first, a lease whose work must not
// run here refused and reported as the step's failure, a step journaled in flight before a
// crash run again, an agent without Kubernetes steps giving the lease back, and the
// installed versions in every report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/synchronization/notification.h"
#include "common/k8s_steps.h"
#include "tests/fakes/fake_k8s_node.h"
#include "tests/unit/agent/agent_fixture.h"

namespace tended::agent {
namespace {

using tended::v1::LEASE_KIND_K8S_UPGRADE;
using tended::v1::LEASE_PHASE_GRANTED;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AgentK8sUpgradeTest : public AgentFixture {
 protected:
  AgentK8sUpgradeTest()
      : installed_(&packages_, /*control_plane=*/false),
        steps_({&packages_, &commands_, &installed_, nullptr}, root_, k8s::StepRunnerOptions{}) {
    packages_.installed = {
        {"kubeadm", "1.31.2-1.1"}, {"kubelet", "1.31.2-1.1"}, {"kubectl", "1.31.2-1.1"}};
    packages_.available_versions = {{"kubeadm", {"1.31.4-1.1", "1.31.2-1.1"}},
                                    {"kubelet", {"1.31.4-1.1", "1.31.2-1.1"}},
                                    {"kubectl", {"1.31.4-1.1", "1.31.2-1.1"}}};
  }

  std::unique_ptr<Agent> StartK8sAgent(bool with_steps = true) {
    Agent::Dependencies deps;
    deps.clock = &clock_;
    deps.coordinator = &client_;
    deps.rebooter = &rebooter_;
    if (with_steps) {
      deps.k8s_steps = &steps_;
      deps.k8s_installed = &installed_;
      deps.k8s_in_background = false;
    }
    auto agent = Agent::Create(config_, kNode, root_, deps);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *std::move(agent) : nullptr;
  }

  tended::v1::Lease WorkerLease(const std::string& target) {
    tended::v1::Lease lease = MakeLease(LEASE_KIND_K8S_UPGRADE, LEASE_PHASE_GRANTED);
    tended::v1::K8sUpgradeWork* work = lease.mutable_k8s_work();
    work->set_rollout_id("k8s-1");
    work->set_role(tended::v1::K8S_NODE_ROLE_WORKER);
    work->set_target_version(target);
    work->set_drain(true);
    for (auto kind :
         {tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE, tended::v1::K8S_STEP_KIND_KUBEADM_NODE,
          tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES, tended::v1::K8S_STEP_KIND_KUBELET_RESTART}) {
      tended::v1::K8sStep* step = work->add_steps();
      step->set_kind(kind);
      step->set_target_version(target);
    }
    return lease;
  }

  // The scripted coordinator records each reported step as done, like the real one.
  void RecordReportedSteps() {
    client_.report_step.otherwise = [this](const tended::v1::ReportStepRequest& request)
        -> absl::StatusOr<tended::v1::ReportStepResponse> {
      if (request.report().state() == tended::v1::STEP_STATE_SUCCEEDED) {
        held_->add_k8s_steps_done(request.report().k8s_step());
      }
      tended::v1::ReportStepResponse response;
      *response.mutable_lease() = *held_;
      return response;
    };
  }

  void Grant(Agent& agent, const tended::v1::Lease& lease) {
    RunFor(agent, absl::Seconds(1));
    ASSERT_TRUE(client_.SendDirective(Granted(lease)));
  }

  tended::testing::FakeCommandRunner commands_;
  tended::testing::FakeInstalledK8s installed_;
  k8s::K8sStepRunner steps_;
};

TEST_F(AgentK8sUpgradeTest, RunsEachStepBehindItsOwnFenceJournaledFirst) {
  tended::v1::Lease lease = WorkerLease("1.31.4");
  CoordinatorHolds(lease);
  RecordReportedSteps();
  std::vector<std::string> in_flight_at_run;
  commands_.OnRun([&](const std::vector<std::string>&) {
    in_flight_at_run.push_back(tended::v1::K8sStepKind_Name(JournalOnDisk().k8s_step_in_flight()));
  });
  auto agent = StartK8sAgent();
  ASSERT_NE(agent, nullptr);
  Grant(*agent, lease);
  RunFor(*agent, absl::Seconds(30));

  std::vector<std::string> begun;
  for (const auto& request : client_.begin_disruption.requests) begun.push_back(request.step());
  EXPECT_THAT(
      begun, ElementsAre("kubeadm_package", "kubeadm_node", "kubelet_packages", "kubelet_restart"));
  ASSERT_EQ(client_.report_step.calls(), 4);
  for (const auto& request : client_.report_step.requests) {
    EXPECT_EQ(request.report().state(), tended::v1::STEP_STATE_SUCCEEDED)
        << request.report().message();
  }
  EXPECT_THAT(in_flight_at_run,
              ElementsAre("K8S_STEP_KIND_KUBEADM_NODE", "K8S_STEP_KIND_KUBELET_RESTART",
                          "K8S_STEP_KIND_KUBELET_RESTART"));
  EXPECT_EQ(packages_.installed["kubelet"], "1.31.4-1.1");
  // The facts after the steps carry the new versions, for the coordinator's verification.
  ASSERT_GT(client_.report_facts.calls(), 1);
  EXPECT_EQ(client_.report_facts.last().facts().k8s().kubelet_version(), "1.31.4-1.1");
  EXPECT_EQ(JournalOnDisk().k8s_step_in_flight(), tended::v1::K8S_STEP_KIND_UNSPECIFIED);
}

TEST_F(AgentK8sUpgradeTest, WorkThatWouldDowngradeIsRefusedAndReportedAsTheStepsFailure) {
  tended::v1::Lease lease = WorkerLease("1.31.1");  // Below the installed 1.31.2.
  CoordinatorHolds(lease);
  auto agent = StartK8sAgent();
  ASSERT_NE(agent, nullptr);
  Grant(*agent, lease);
  RunFor(*agent, absl::Minutes(5));

  ASSERT_EQ(client_.report_step.calls(), 1);
  const tended::v1::StepReport& report = client_.report_step.last().report();
  EXPECT_EQ(report.state(), tended::v1::STEP_STATE_FAILED);
  EXPECT_EQ(report.k8s_step(), tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE);
  EXPECT_THAT(report.message(), HasSubstr("refused by the agent"));
  EXPECT_THAT(report.message(), HasSubstr("downgrade"));
  EXPECT_TRUE(commands_.calls().empty());
  EXPECT_TRUE(packages_.pinned.empty());
  // Held for an operator: nothing more is begun.
  EXPECT_EQ(client_.begin_disruption.calls(), 1);
  EXPECT_THAT(agent->status(), HasSubstr("held for an operator"));
}

TEST_F(AgentK8sUpgradeTest, AStepInFlightBeforeACrashIsBegunAndRunAgain) {
  tended::v1::Lease lease = WorkerLease("1.31.4");
  lease.add_k8s_steps_done(tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE);
  lease.set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
  CoordinatorHolds(lease);
  RecordReportedSteps();
  // What the crashed process left: kubeadm_node begun, not reported.
  tended::state::v1::AgentState journal;
  journal.set_format_version(1);
  *journal.mutable_lease() = lease;
  journal.set_step("kubeadm_node");
  journal.set_k8s_step_in_flight(tended::v1::K8S_STEP_KIND_KUBEADM_NODE);
  journal.add_k8s_steps_done(tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE);
  ASSERT_TRUE(MakeDirectories(StatePath("")).ok());
  ASSERT_TRUE(WriteProtoJsonFile(StatePath("agent-state.json"), journal).ok());
  packages_.installed["kubeadm"] = "1.31.4-1.1";

  auto agent = StartK8sAgent();
  ASSERT_NE(agent, nullptr);
  RunFor(*agent, absl::Seconds(30));
  ASSERT_GE(client_.begin_disruption.calls(), 1);
  EXPECT_EQ(client_.begin_disruption.requests[0].step(), "kubeadm_node");
  ASSERT_FALSE(commands_.calls().empty());
  EXPECT_THAT(commands_.calls()[0], HasSubstr("kubeadm upgrade node"));
  EXPECT_EQ(client_.report_step.requests[0].report().k8s_step(),
            tended::v1::K8S_STEP_KIND_KUBEADM_NODE);
}

TEST_F(AgentK8sUpgradeTest, AnAgentWithoutKubernetesStepsGivesTheLeaseBack) {
  tended::v1::Lease lease = WorkerLease("1.31.4");
  CoordinatorHolds(lease);
  auto agent = StartK8sAgent(/*with_steps=*/false);
  ASSERT_NE(agent, nullptr);
  Grant(*agent, lease);
  RunFor(*agent, absl::Seconds(10));
  ASSERT_EQ(client_.release_lease.calls(), 1);
  EXPECT_THAT(client_.release_lease.last().reason(), HasSubstr("k8s.enabled"));
  EXPECT_EQ(client_.begin_disruption.calls(), 0);
  EXPECT_FALSE(agent->journal().has_lease());
}

}  // namespace
}  // namespace tended::agent

namespace tended::agent {
namespace {

// A lease that ends while its step still runs (an operator force-released it mid-kubeadm)
// must not let the node start anything else, a reboot least of all, until the step ended.
TEST_F(AgentK8sUpgradeTest, NothingElseStartsWhileAStepOfAnEndedLeaseStillRuns) {
  tended::v1::Lease lease = WorkerLease("1.31.4");
  CoordinatorHolds(lease);
  RecordReportedSteps();
  absl::Notification step_may_end;
  std::atomic<bool> step_started{false};
  commands_.OnRun([&](const std::vector<std::string>&) {
    step_started = true;
    step_may_end.WaitForNotificationWithTimeout(absl::Seconds(60));
  });
  Agent::Dependencies deps;
  deps.clock = &clock_;
  deps.coordinator = &client_;
  deps.rebooter = &rebooter_;
  deps.k8s_steps = &steps_;
  deps.k8s_installed = &installed_;
  deps.k8s_in_background = true;
  auto created = Agent::Create(config_, kNode, root_, deps);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Agent> agent = *std::move(created);
  Grant(*agent, lease);
  for (int i = 0; i < 6000 && !step_started; ++i) {
    RunFor(*agent, absl::Seconds(1));
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(step_started) << "kubeadm upgrade node never started";

  // The lease ends (force-released) while kubeadm runs; then the node needs a reboot.
  tended::v1::Lease revoked = lease;
  revoked.set_phase(tended::v1::LEASE_PHASE_RELEASED);
  ASSERT_TRUE(client_.SendDirective(Revoked(revoked)));
  NeedReboot();
  client_.acquire_lease.otherwise = [&](const tended::v1::AcquireLeaseRequest&) {
    tended::v1::AcquireLeaseResponse response;
    response.set_queue_position(1);
    return absl::StatusOr<tended::v1::AcquireLeaseResponse>(response);
  };
  RunFor(*agent, absl::Minutes(5));
  EXPECT_EQ(client_.acquire_lease.calls(), 0) << "asked for a lease while kubeadm runs";
  EXPECT_EQ(rebooter_.reboots(), 0);
  EXPECT_THAT(agent->status(), HasSubstr("still runs"));

  // Once the step ended, the reboot is asked for as usual.
  step_may_end.Notify();
  for (int i = 0; i < 6000 && client_.acquire_lease.calls() == 0; ++i) {
    RunFor(*agent, absl::Seconds(1));
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(client_.acquire_lease.calls(), 1);
}

}  // namespace
}  // namespace tended::agent
