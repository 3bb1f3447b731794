// The canary gate as a pure function, and the rollout driven through the Coordinator:
// canary first, its failure stopping the rollout across a restart until ResumeRollout.
#include "coordinator/gates/canary_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/state_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01 00:00 UTC

tended::v1::OsUpgradeFacts Plan(std::vector<std::pair<std::string, std::string>> upgrades) {
  tended::v1::OsUpgradeFacts facts;
  facts.set_upgrades_available(static_cast<uint32_t>(upgrades.size()));
  for (const auto& [name, version] : upgrades) {
    auto* planned = facts.add_planned_upgrades();
    planned->set_name(name);
    planned->set_version(version);
  }
  return facts;
}

OsRolloutFacts Fleet() {
  OsRolloutFacts facts;
  facts.canary = "node4";
  facts.canary_soak = absl::Hours(24);
  facts.report_deadline = absl::Minutes(2);
  for (const char* name : {"node1", "node2", "node4"}) facts.nodes[name].last_report = kNow;
  return facts;
}

void Vet(OsRolloutFacts& facts, const std::string& name, const std::string& version,
         absl::Time at) {
  tended::v1::PackageChange change;
  change.set_name(name);
  change.set_to_version(version);
  AddVettedPackages({change}, at, 100, &facts.state);
}

TEST(CanaryGateTest, NoCanaryConfiguredPassesEveryone) {
  OsRolloutFacts facts = Fleet();
  facts.canary.clear();
  facts.nodes["node1"].os = Plan({{"libfoo", "1.1"}});
  std::string first;
  GateOutcome outcome = CanaryGate(facts, {"node1", "node2"}, kNow, &first);
  EXPECT_TRUE(outcome.pass);
  EXPECT_EQ(first, "node1");
}

TEST(CanaryGateTest, OnlyTheCanaryGoesWhileItHasUpgrades) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node4"].os = Plan({{"libfoo", "1.1"}});
  facts.nodes["node1"].os = Plan({{"libfoo", "1.1"}});
  EXPECT_TRUE(CanaryGateForNode(facts, "node4", kNow).pass);
  GateOutcome node1 = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_FALSE(node1.pass);
  EXPECT_THAT(node1.reason, HasSubstr("canary node4 has 1 upgrades available"));
  // node1 asked first; the gate picks the canary behind it.
  std::string first;
  GateOutcome kind = CanaryGate(facts, {"node1", "node4"}, kNow, &first);
  EXPECT_TRUE(kind.pass);
  EXPECT_EQ(first, "node4");
}

TEST(CanaryGateTest, OthersWaitWhileTheCanaryUpgrades) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node4"].upgrading = true;
  facts.nodes["node1"].os = Plan({{"libfoo", "1.1"}});
  std::string first = "unchanged";
  GateOutcome kind = CanaryGate(facts, {"node1"}, kNow, &first);
  EXPECT_FALSE(kind.pass);
  EXPECT_THAT(kind.reason, HasSubstr("node4 is upgrading"));
  EXPECT_EQ(first, "unchanged");
}

TEST(CanaryGateTest, UnvettedPackagesBlockAndVettedOnesSoak) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({{"libfoo", "1.1"}, {"app", "2.0"}});
  Vet(facts, "libfoo", "1.1", kNow - absl::Hours(1));
  GateOutcome outcome = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("has not installed and verified: app 2.0"));

  // A different version of app on the canary does not vouch for 2.0.
  Vet(facts, "app", "2.1", kNow - absl::Hours(1));
  EXPECT_FALSE(CanaryGateForNode(facts, "node1", kNow).pass);

  Vet(facts, "app", "2.0", kNow - absl::Hours(2));
  outcome = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("soak ends"));
  ASSERT_TRUE(outcome.earliest_pass.has_value());
  // The newest of its packages (libfoo, an hour ago) sets the end of the soak.
  EXPECT_EQ(*outcome.earliest_pass, kNow + absl::Hours(23));
  facts.nodes["node4"].last_report = kNow + absl::Hours(23);  // Still reporting then.
  EXPECT_FALSE(CanaryGateForNode(facts, "node1", kNow + absl::Hours(23) - absl::Seconds(1)).pass);
  EXPECT_TRUE(CanaryGateForNode(facts, "node1", kNow + absl::Hours(23)).pass);
}

TEST(CanaryGateTest, ASilentOrUnknownCanaryBlocksTheOthers) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({});
  facts.nodes["node4"].last_report = kNow - absl::Minutes(5);
  GateOutcome silent = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_FALSE(silent.pass);
  EXPECT_THAT(silent.reason, HasSubstr("has not reported for 5m"));
  facts.nodes.erase("node4");
  EXPECT_THAT(CanaryGateForNode(facts, "node1", kNow).reason, HasSubstr("not reported yet"));
}

TEST(CanaryGateTest, AStoppedRolloutBlocksEveryoneWithItsReason) {
  OsRolloutFacts facts = Fleet();
  facts.state.mutable_stop()->set_stopped(true);
  facts.state.mutable_stop()->set_reason("canary node4 failed: dpkg returned 1");
  *facts.state.mutable_stop()->mutable_since() = ToProtoTimestamp(kNow);
  for (const char* node : {"node1", "node4"}) {
    GateOutcome outcome = CanaryGateForNode(facts, node, kNow);
    EXPECT_FALSE(outcome.pass) << node;
    EXPECT_THAT(outcome.reason, HasSubstr("canary node4 failed: dpkg returned 1"));
    EXPECT_THAT(outcome.reason, HasSubstr("ResumeRollout"));
  }
  std::string first;
  EXPECT_FALSE(CanaryGate(facts, {}, kNow, &first).pass);
}

TEST(CanaryGateTest, VettedListIsBoundedAndDeduplicated) {
  tended::state::v1::OsRolloutState state;
  tended::v1::PackageChange a;
  a.set_name("a");
  a.set_to_version("1");
  tended::v1::PackageChange b;
  b.set_name("b");
  b.set_to_version("1");
  AddVettedPackages({a, b}, kNow, 2, &state);
  AddVettedPackages({a}, kNow + absl::Hours(1), 2, &state);
  ASSERT_EQ(state.vetted_packages_size(), 2);
  EXPECT_EQ(state.vetted_packages(0).name(), "b");
  EXPECT_EQ(state.vetted_packages(1).name(), "a");
  EXPECT_EQ(FromProtoTimestamp(state.vetted_packages(1).vetted_time()), kNow + absl::Hours(1));
  tended::v1::PackageChange c;
  c.set_name("c");
  c.set_to_version("1");
  AddVettedPackages({c}, kNow, 2, &state);
  ASSERT_EQ(state.vetted_packages_size(), 2);
  EXPECT_EQ(state.vetted_packages(0).name(), "a");
}

// Through the Coordinator: grants, step reports, verification, the stop and the resume.
class OsRolloutCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.Set(kNow);
    config_.state_file = dir_.Path("state.json");
    config_.fleet.report_deadline = absl::Minutes(2);
    config_.fleet.report_interval = absl::Seconds(30);
    LeasePolicy os;
    os.soak = absl::ZeroDuration();
    os.canary = "node4";
    os.canary_soak = absl::Hours(1);
    config_.leases[tended::v1::LEASE_KIND_OS_UPGRADE] = os;
    Restart();
  }

  void Restart() {
    coordinator_.reset();
    store_ = std::make_unique<FileStateStore>(config_.state_file);
    auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
    ASSERT_TRUE(created.ok()) << created.status();
    coordinator_ = *std::move(created);
  }

  void Report(const std::string& node, tended::v1::OsUpgradeFacts os,
              const tended::v1::StepReport* last = nullptr) {
    tended::v1::ReportFactsRequest request;
    request.mutable_facts()->set_node_name(node);
    request.mutable_facts()->set_boot_id("boot-" + node);
    *request.mutable_facts()->mutable_os_upgrade() = std::move(os);
    if (last != nullptr) *request.mutable_facts()->mutable_os_upgrade()->mutable_last_step() = *last;
    ASSERT_TRUE(coordinator_->ReportFacts(request).ok());
  }

  tended::v1::AcquireLeaseResponse Ask(const std::string& node) {
    tended::v1::AcquireLeaseRequest request;
    request.set_node_name(node);
    request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
    request.set_reason("upgrades");
    auto response = coordinator_->AcquireLease(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : tended::v1::AcquireLeaseResponse();
  }

  tended::v1::StepReport Run(const tended::v1::Lease& lease, tended::v1::StepState state,
                             const std::string& message) {
    tended::v1::BeginDisruptionRequest begin;
    begin.set_lease_id(lease.id());
    begin.set_fencing_token(lease.fencing_token());
    begin.set_step("dpkg");
    EXPECT_TRUE(coordinator_->BeginDisruption(begin).ok());
    tended::v1::ReportStepRequest request;
    request.set_lease_id(lease.id());
    request.set_fencing_token(lease.fencing_token());
    tended::v1::StepReport* report = request.mutable_report();
    report->set_lease_id(lease.id());
    report->set_step("dpkg");
    report->set_state(state);
    report->set_message(message);
    auto* change = report->add_packages();
    change->set_name("libfoo");
    change->set_from_version("1.0");
    change->set_to_version("1.1");
    auto answered = coordinator_->ReportStep(request);
    EXPECT_TRUE(answered.ok()) << answered.status();
    return *report;
  }

  std::string CanaryReason() {
    tended::v1::ExplainGatesRequest request;
    request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
    auto explained = coordinator_->ExplainGates(request);
    if (!explained.ok()) return "";
    for (const auto& gate : explained->explanations(0).gates()) {
      if (gate.gate() == "canary") return gate.reason();
    }
    return "";
  }

  testing::FakeClock clock_;
  testing::TempDir dir_;
  CoordinatorConfig config_;
  std::unique_ptr<FileStateStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(OsRolloutCoordinatorTest, CanaryFirstThenSoakThenTheOthers) {
  const auto plan = Plan({{"libfoo", "1.1"}});
  for (const char* node : {"node1", "node2", "node4"}) Report(node, plan);
  EXPECT_FALSE(Ask("node1").has_lease());
  tended::v1::AcquireLeaseResponse canary = Ask("node4");
  ASSERT_TRUE(canary.has_lease());
  EXPECT_FALSE(Ask("node2").has_lease());

  tended::v1::StepReport done = Run(canary.lease(), tended::v1::STEP_STATE_SUCCEEDED, "1 installed");
  // Verified on the canary's next report carrying the result; then it soaks.
  Report("node4", Plan({}), &done);
  tended::v1::ListLeasesRequest list;
  EXPECT_TRUE(coordinator_->ListLeases(list).leases().empty());
  Report("node1", plan);
  EXPECT_THAT(CanaryReason(), HasSubstr("soak ends"));
  EXPECT_EQ(coordinator_->ListLeases(list).leases_size(), 0);

  clock_.Advance(absl::Hours(1));
  for (const char* node : {"node1", "node2", "node4"}) Report(node, node[4] == '4' ? Plan({}) : plan);
  coordinator_->Tick();
  auto leases = coordinator_->ListLeases(list).leases();
  ASSERT_EQ(leases.size(), 1);
  EXPECT_EQ(leases[0].node_name(), "node1");  // The oldest request among the others.
}

TEST_F(OsRolloutCoordinatorTest, AFailedCanaryStopsTheRolloutAcrossARestartUntilResumed) {
  const auto plan = Plan({{"libfoo", "1.1"}});
  for (const char* node : {"node1", "node4"}) Report(node, plan);
  tended::v1::AcquireLeaseResponse canary = Ask("node4");
  ASSERT_TRUE(canary.has_lease());
  EXPECT_FALSE(Ask("node1").has_lease());
  Run(canary.lease(), tended::v1::STEP_STATE_FAILED, "dpkg returned an error code (1)");

  Restart();
  EXPECT_THAT(CanaryReason(), HasSubstr("canary node4 failed: dpkg returned an error code (1)"));
  // The failed canary keeps its lease until an operator force-releases it.
  tended::v1::ListLeasesRequest list;
  auto leases = coordinator_->ListLeases(list).leases();
  ASSERT_EQ(leases.size(), 1);
  EXPECT_EQ(leases[0].phase(), tended::v1::LEASE_PHASE_VERIFYING);
  tended::v1::ForceReleaseLeaseRequest release;
  release.set_lease_id(leases[0].id());
  release.set_reason("repaired by hand");
  ASSERT_TRUE(coordinator_->ForceReleaseLease(release).ok());
  Report("node4", Plan({}));
  Report("node1", plan);
  coordinator_->Tick();
  EXPECT_TRUE(coordinator_->ListLeases(list).leases().empty());
  EXPECT_THAT(CanaryReason(), HasSubstr("stopped"));

  tended::v1::ResumeRolloutRequest resume;
  resume.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
  EXPECT_FALSE(coordinator_->ResumeRollout(resume).ok());  // A reason is required.
  resume.set_reason("fixed the postinst");
  auto resumed = coordinator_->ResumeRollout(resume);
  ASSERT_TRUE(resumed.ok());
  EXPECT_TRUE(resumed->cleared().stopped());
  // Still not vetted: node1 waits for the canary to install libfoo 1.1 and verify.
  EXPECT_THAT(CanaryReason(), HasSubstr("has not installed and verified: libfoo 1.1"));
}

TEST_F(OsRolloutCoordinatorTest, StaleTokensAndBadReportsAreRefused) {
  Report("node4", Plan({{"libfoo", "1.1"}}));
  tended::v1::AcquireLeaseResponse canary = Ask("node4");
  ASSERT_TRUE(canary.has_lease());
  tended::v1::ReportStepRequest request;
  request.set_lease_id(canary.lease().id());
  request.set_fencing_token(canary.lease().fencing_token());
  request.mutable_report()->set_step("dpkg");
  request.mutable_report()->set_state(tended::v1::STEP_STATE_SUCCEEDED);
  // Not begun yet.
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator_->ReportStep(request).status()));
  request.set_fencing_token(canary.lease().fencing_token() + 7);
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator_->ReportStep(request).status()));
  request.mutable_report()->clear_state();
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator_->ReportStep(request).status()));
}

}  // namespace
}  // namespace tended::coordinator
