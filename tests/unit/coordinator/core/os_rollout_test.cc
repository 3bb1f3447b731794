// The canary-first OS rollout through the Coordinator: the canary goes first, its verified
// step vets the versions the others may install after canary_soak, a failed or unhealthy
// canary (or any failed step) stops the rollout across restarts until ResumeRollout, and
// step reports are fenced like every holder call.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using tended::v1::Lease;
using tended::v1::LEASE_KIND_OS_UPGRADE;
using ::testing::HasSubstr;

coordinator::CoordinatorConfig RolloutConfig() {
  coordinator::CoordinatorConfig config = SmallFleetConfig();
  coordinator::LeasePolicy os;
  os.concurrency = 1;
  os.soak = absl::ZeroDuration();
  os.expected_duration = absl::Minutes(5);
  os.renew_deadline = absl::Minutes(5);
  os.return_deadline = absl::Minutes(15);
  os.canary = "node4";
  os.canary_soak = absl::Hours(1);
  config.leases[LEASE_KIND_OS_UPGRADE] = os;
  return config;
}

tended::v1::PackageChange Libfoo() {
  tended::v1::PackageChange change;
  change.set_name("libfoo");
  change.set_from_version("1.0");
  change.set_to_version("1.1");
  return change;
}

class OsRolloutTest : public FleetFixture {
 protected:
  OsRolloutTest() : FleetFixture(RolloutConfig()) {}

  // The node reports its OS facts: libfoo 1.1 planned (or nothing), and the lease of the
  // last step it ran.
  absl::Status Plan(const std::string& node, bool libfoo, const std::string& last_step_lease = "") {
    tended::v1::ReportFactsRequest request = FactsReport(node, BootOf(node), false);
    tended::v1::OsUpgradeFacts* os = request.mutable_facts()->mutable_os_upgrade();
    if (libfoo) {
      os->set_upgrades_available(1);
      auto* planned = os->add_planned_upgrades();
      planned->set_name("libfoo");
      planned->set_version("1.1");
    }
    if (!last_step_lease.empty()) os->mutable_last_step()->set_lease_id(last_step_lease);
    return coordinator().ReportFacts(request).status();
  }

  void PlanAll(const std::vector<std::string>& nodes, bool libfoo) {
    for (const std::string& node : nodes) ASSERT_TRUE(Plan(node, libfoo).ok()) << node;
  }

  tended::v1::BeginDisruptionRequest Dpkg(const Lease& lease) {
    tended::v1::BeginDisruptionRequest begin = BeginRequest(lease, "dpkg");
    *begin.add_packages() = Libfoo();
    return begin;
  }

  tended::v1::ReportStepRequest Step(const Lease& lease, tended::v1::StepState state,
                                     const std::string& message) {
    tended::v1::ReportStepRequest request;
    request.set_lease_id(lease.id());
    request.set_fencing_token(lease.fencing_token());
    request.set_agent_instance_id(InstanceOf(lease.node_name()));
    tended::v1::StepReport* report = request.mutable_report();
    report->set_lease_id(lease.id());
    report->set_step("dpkg");
    report->set_state(state);
    report->set_message(message);
    if (state == tended::v1::STEP_STATE_SUCCEEDED) *report->add_packages() = Libfoo();
    return request;
  }

  // Begins the dpkg step under `lease` and reports its end.
  void RunStep(const Lease& lease, tended::v1::StepState state, const std::string& message) {
    auto begun = coordinator().BeginDisruption(Dpkg(lease));
    ASSERT_TRUE(begun.ok()) << begun.status();
    auto reported = coordinator().ReportStep(Step(lease, state, message));
    ASSERT_TRUE(reported.ok()) << reported.status();
  }

  Lease AskOs(const std::string& node) {
    auto asked = Ask(node, LEASE_KIND_OS_UPGRADE);
    EXPECT_TRUE(asked.ok()) << asked.status();
    return asked.ok() ? asked->lease() : Lease();
  }

  std::string Canary() { return GateReason(LEASE_KIND_OS_UPGRADE, "canary"); }

  // node4 installs libfoo 1.1 and is verified; the clock then passes its soak.
  void CanaryVetsLibfoo() {
    BringUp({"node1", "node2", "node4"});
    PlanAll({"node1", "node2", "node4"}, true);
    const Lease lease = AskOs("node4");
    ASSERT_FALSE(lease.id().empty()) << Canary();
    RunStep(lease, tended::v1::STEP_STATE_SUCCEEDED, "1 installed");
    ASSERT_TRUE(Plan("node4", false, lease.id()).ok());
    ASSERT_TRUE(Active().empty());
    clock().Advance(absl::Hours(1));
    PlanAll({"node1", "node2", "node4"}, true);
    ASSERT_TRUE(Plan("node4", false).ok());
  }
};

TEST_F(OsRolloutTest, CanaryFirstThenVerifiedThenSoakThenTheOthers) {
  BringUp({"node1", "node2", "node4"});
  PlanAll({"node1", "node2", "node4"}, true);
  EXPECT_TRUE(AskOs("node1").id().empty());
  EXPECT_THAT(Canary(), HasSubstr("canary node4 has 1 upgrades available and goes first"));
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty());
  EXPECT_TRUE(AskOs("node2").id().empty());

  RunStep(canary, tended::v1::STEP_STATE_SUCCEEDED, "1 installed");
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].phase(), tended::v1::LEASE_PHASE_VERIFYING);
  // A report that does not carry the step's result does not verify it.
  ASSERT_TRUE(Plan("node4", false).ok());
  ASSERT_EQ(Active().size(), 1u);
  // The canary's next report carrying the result verifies it; then it soaks.
  ASSERT_TRUE(Plan("node4", false, canary.id()).ok());
  EXPECT_TRUE(Active().empty());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_RELEASED), 1);
  ASSERT_TRUE(Plan("node1", true).ok());
  EXPECT_THAT(Canary(), HasSubstr("soak ends"));
  EXPECT_TRUE(Active().empty());

  clock().Advance(absl::Hours(1));
  PlanAll({"node1", "node2"}, true);
  ASSERT_TRUE(Plan("node4", false).ok());
  coordinator().Tick();
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].node_name(), "node1");  // The oldest request among the others.
  // It may install exactly what the canary vetted.
  auto begun = coordinator().BeginDisruption(Dpkg(active[0]));
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_EQ(begun->lease().approved_packages_size(), 1);
  EXPECT_EQ(begun->lease().approved_packages(0).to_version(), "1.1");
  // The same call again (its answer was lost) is accepted; another set is not.
  EXPECT_TRUE(coordinator().BeginDisruption(Dpkg(active[0])).ok());
  tended::v1::BeginDisruptionRequest other = Dpkg(active[0]);
  other.mutable_packages(0)->set_to_version("1.2");
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().BeginDisruption(other).status()));
}

TEST_F(OsRolloutTest, AFailedCanaryStopsTheRolloutAcrossARestartUntilResumed) {
  BringUp({"node1", "node4"});
  PlanAll({"node1", "node4"}, true);
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty());
  EXPECT_TRUE(AskOs("node1").id().empty());
  RunStep(canary, tended::v1::STEP_STATE_FAILED, "dpkg returned an error code (1)");
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_ROLLOUT_STOPPED), 1);

  ASSERT_TRUE(harness_.Restart().ok());
  EXPECT_THAT(Canary(), HasSubstr("canary node4 failed: dpkg returned an error code (1)"));
  EXPECT_THAT(Canary(), HasSubstr("ResumeRollout"));
  // The failed canary keeps its lease until an operator force-releases it.
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].phase(), tended::v1::LEASE_PHASE_VERIFYING);
  EXPECT_THAT(active[0].status_message(), HasSubstr("force-releases"));
  tended::v1::ForceReleaseLeaseRequest release;
  release.set_lease_id(active[0].id());
  release.set_reason("repaired by hand");
  ASSERT_TRUE(coordinator().ForceReleaseLease(release).ok());
  ASSERT_TRUE(Plan("node4", false).ok());
  ASSERT_TRUE(Plan("node1", true).ok());
  coordinator().Tick();
  EXPECT_TRUE(Active().empty());
  EXPECT_THAT(Canary(), HasSubstr("stopped"));
  // Even the canary is not granted while stopped.
  ASSERT_TRUE(Plan("node4", true).ok());
  EXPECT_TRUE(AskOs("node4").id().empty());
  ASSERT_TRUE(coordinator()
                  .CancelLeaseRequest([] {
                    tended::v1::CancelLeaseRequestRequest cancel;
                    cancel.set_node_name("node4");
                    cancel.set_kind(LEASE_KIND_OS_UPGRADE);
                    cancel.set_agent_instance_id(InstanceOf("node4"));
                    return cancel;
                  }())
                  .ok());
  ASSERT_TRUE(Plan("node4", false).ok());

  tended::v1::ResumeRolloutRequest resume;
  resume.set_kind(LEASE_KIND_OS_UPGRADE);
  EXPECT_FALSE(coordinator().ResumeRollout(resume).ok());  // A reason is required.
  resume.set_reason("fixed the postinst");
  resume.set_kind(tended::v1::LEASE_KIND_REBOOT);
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ResumeRollout(resume).status()));
  resume.set_kind(LEASE_KIND_OS_UPGRADE);
  auto resumed = coordinator().ResumeRollout(resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->cleared().stopped());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_ROLLOUT_RESUMED), 1);
  // Still not vetted: node1 waits for the canary to install libfoo 1.1 and verify.
  EXPECT_THAT(Canary(), HasSubstr("has not installed and verified: libfoo 1.1"));
  // Resuming what is not stopped changes nothing.
  auto again = coordinator().ResumeRollout(resume);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->cleared().stopped());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_ROLLOUT_RESUMED), 1);
}

TEST_F(OsRolloutTest, AFailedStepOnAnyNodeStopsTheRollout) {
  CanaryVetsLibfoo();
  const Lease lease = AskOs("node1");
  ASSERT_FALSE(lease.id().empty()) << Canary();
  RunStep(lease, tended::v1::STEP_STATE_FAILED, "dpkg was killed");
  EXPECT_THAT(Canary(), HasSubstr("node1's OS upgrade failed: dpkg was killed"));
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_EQ(Active()[0].phase(), tended::v1::LEASE_PHASE_VERIFYING);
}

TEST_F(OsRolloutTest, ACanaryBackWithAFiringAlertStopsTheRollout) {
  harness_.mutable_config().alerts.prometheus_url = "http://127.0.0.1:9/";
  ASSERT_TRUE(harness_.Restart().ok());
  harness_.SetFiring("");
  BringUp({"node1", "node4"});
  harness_.SetFiring("");
  PlanAll({"node1", "node4"}, true);
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty()) << Canary();
  RunStep(canary, tended::v1::STEP_STATE_SUCCEEDED, "1 installed");
  harness_.SetFiring("KubeletDown");
  ASSERT_TRUE(Plan("node4", false, canary.id()).ok());
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_THAT(Active()[0].status_message(), HasSubstr("upgraded, but not verified"));
  EXPECT_THAT(Active()[0].status_message(), HasSubstr("KubeletDown"));
  EXPECT_THAT(Canary(), HasSubstr("canary node4 came back unhealthy"));
}

TEST_F(OsRolloutTest, AStaleAlertAnswerMakesTheCanaryWaitButDoesNotStopTheRollout) {
  harness_.mutable_config().alerts.prometheus_url = "http://127.0.0.1:9/";
  ASSERT_TRUE(harness_.Restart().ok());
  harness_.SetFiring("");
  BringUp({"node1", "node4"});
  harness_.SetFiring("");
  PlanAll({"node1", "node4"}, true);
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty()) << Canary();
  RunStep(canary, tended::v1::STEP_STATE_SUCCEEDED, "1 installed");
  clock().Advance(harness_.config().alerts.max_age + absl::Seconds(1));  // Prometheus is silent.
  ASSERT_TRUE(Plan("node4", false, canary.id()).ok());
  ASSERT_EQ(Active().size(), 1u);
  EXPECT_THAT(Active()[0].status_message(), HasSubstr("upgraded, but not verified"));
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_ROLLOUT_STOPPED), 0);
  harness_.SetFiring("");  // Prometheus answers again, nothing fires.
  clock().Advance(absl::Seconds(1));
  ASSERT_TRUE(Plan("node4", false, canary.id()).ok());
  EXPECT_TRUE(Active().empty());
}

TEST_F(OsRolloutTest, StepReportsAreFencedAndChecked) {
  BringUp({"node4"});
  ASSERT_TRUE(Plan("node4", true).ok());
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty());
  tended::v1::ReportStepRequest request = Step(canary, tended::v1::STEP_STATE_SUCCEEDED, "");
  // Not begun yet.
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().ReportStep(request).status()));
  request.set_fencing_token(canary.fencing_token() + 7);
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().ReportStep(request).status()));
  request = Step(canary, tended::v1::STEP_STATE_SUCCEEDED, "");
  request.set_agent_instance_id("someone-else");
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().ReportStep(request).status()));
  request = Step(canary, tended::v1::STEP_STATE_SUCCEEDED, "");
  request.mutable_report()->clear_state();
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ReportStep(request).status()));
  request = Step(canary, tended::v1::STEP_STATE_SUCCEEDED, "");
  request.mutable_report()->set_lease_id("os_upgrade-node4-999");
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ReportStep(request).status()));
}

TEST_F(OsRolloutTest, ARebootLeaseReportsNoSteps) {
  BringUp({"node1"});
  ASSERT_TRUE(Report("node1", true).ok());
  const Lease lease = Ask("node1")->lease();
  ASSERT_FALSE(lease.id().empty());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  auto reported = coordinator().ReportStep(Step(lease, tended::v1::STEP_STATE_SUCCEEDED, ""));
  EXPECT_TRUE(absl::IsFailedPrecondition(reported.status())) << reported.status();
  EXPECT_THAT(std::string(reported.status().message()), HasSubstr("only os_upgrade leases"));
}

TEST_F(OsRolloutTest, ProgressIsShownAndAFinalReportCountsOnce) {
  BringUp({"node4"});
  ASSERT_TRUE(Plan("node4", true).ok());
  const Lease canary = AskOs("node4");
  ASSERT_FALSE(canary.id().empty());
  ASSERT_TRUE(coordinator().BeginDisruption(Dpkg(canary)).ok());
  tended::v1::ReportStepRequest progress =
      Step(canary, tended::v1::STEP_STATE_RUNNING, "unpacking");
  progress.mutable_report()->set_percent(40);
  auto shown = coordinator().ReportStep(progress);
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_EQ(shown->lease().status_message(), "dpkg: unpacking (40%)");
  EXPECT_EQ(shown->lease().phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_STEP_REPORTED), 0);

  const tended::v1::ReportStepRequest done = Step(canary, tended::v1::STEP_STATE_SUCCEEDED, "ok");
  ASSERT_TRUE(coordinator().ReportStep(done).ok());
  auto again = coordinator().ReportStep(done);  // Its answer was lost: sent again.
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->lease().phase(), tended::v1::LEASE_PHASE_VERIFYING);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_STEP_REPORTED), 1);
}

}  // namespace
}  // namespace tended::testing
