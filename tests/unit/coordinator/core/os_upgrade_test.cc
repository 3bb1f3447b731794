// The canary vets what is installed: the exact set named when the dpkg step begins must be
// what the canary installed and verified, and the step must install nothing else.
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using ::testing::HasSubstr;
using tended::v1::Lease;

coordinator::CoordinatorConfig WithCanary() {
  coordinator::CoordinatorConfig config = SmallFleetConfig();
  coordinator::LeasePolicy os;
  os.concurrency = 1;
  os.soak = absl::ZeroDuration();
  os.expected_duration = absl::Minutes(5);
  os.renew_deadline = absl::Minutes(5);
  os.return_deadline = absl::Minutes(15);
  os.canary = "node-c";
  os.canary_soak = absl::Minutes(30);
  config.leases[tended::v1::LEASE_KIND_OS_UPGRADE] = os;
  config.allow_kind_overlap = false;
  return config;
}

tended::v1::PackageChange Change(const std::string& name, const std::string& from,
                                 const std::string& to) {
  tended::v1::PackageChange change;
  change.set_name(name);
  change.set_from_version(from);
  change.set_to_version(to);
  return change;
}

class OsUpgradeTest : public FleetFixture {
 protected:
  OsUpgradeTest() : FleetFixture(WithCanary()) {}

  // The node plans `pkg` at `version` (or nothing) and reports it.
  absl::Status Plan(const std::string& node, const std::string& version,
                    const std::string& last_step_lease = "") {
    tended::v1::ReportFactsRequest request = FactsReport(node, BootOf(node), false);
    tended::v1::OsUpgradeFacts* os = request.mutable_facts()->mutable_os_upgrade();
    if (!version.empty()) {
      os->set_upgrades_available(1);
      auto* planned = os->add_planned_upgrades();
      planned->set_name("pkg");
      planned->set_version(version);
    }
    if (!last_step_lease.empty()) os->mutable_last_step()->set_lease_id(last_step_lease);
    return coordinator().ReportFacts(request).status();
  }

  tended::v1::BeginDisruptionRequest Dpkg(const Lease& lease,
                                          std::vector<tended::v1::PackageChange> changes) {
    tended::v1::BeginDisruptionRequest begin = BeginRequest(lease, "dpkg");
    for (auto& change : changes) *begin.add_packages() = change;
    return begin;
  }

  absl::Status Succeeded(const Lease& lease, std::vector<tended::v1::PackageChange> installed) {
    tended::v1::ReportStepRequest step;
    step.set_lease_id(lease.id());
    step.set_fencing_token(lease.fencing_token());
    step.set_agent_instance_id(InstanceOf(lease.node_name()));
    step.mutable_report()->set_step("dpkg");
    step.mutable_report()->set_state(tended::v1::STEP_STATE_SUCCEEDED);
    for (auto& change : installed) *step.mutable_report()->add_packages() = change;
    return coordinator().ReportStep(step).status();
  }

  // The canary installs pkg 1 and is verified; the clock then passes its soak.
  void CanaryVetsVersion1() {
    BringUp({"node-b", "node-c"});
    ASSERT_TRUE(Plan("node-c", "1").ok());
    auto granted = Ask("node-c", tended::v1::LEASE_KIND_OS_UPGRADE);
    ASSERT_TRUE(granted.ok() && granted->has_lease()) << granted.status();
    const Lease lease = granted->lease();
    ASSERT_TRUE(coordinator().BeginDisruption(Dpkg(lease, {Change("pkg", "0", "1")})).ok());
    ASSERT_TRUE(Succeeded(lease, {Change("pkg", "0", "1")}).ok());
    ASSERT_TRUE(Plan("node-c", "", lease.id()).ok());
    ASSERT_TRUE(Active().empty()) << Active()[0].status_message();
    clock().Advance(absl::Minutes(31));
    ASSERT_TRUE(Plan("node-c", "").ok());
  }
};

TEST_F(OsUpgradeTest, AVersionTheCanaryDidNotVetIsRefusedAtTheStepAndTheLeaseReturned) {
  CanaryVetsVersion1();
  ASSERT_TRUE(Plan("node-b", "1").ok());
  auto granted = Ask("node-b", tended::v1::LEASE_KIND_OS_UPGRADE);
  ASSERT_TRUE(granted.ok() && granted->has_lease())
      << GateReason(tended::v1::LEASE_KIND_OS_UPGRADE, "canary");
  const Lease lease = granted->lease();
  // The plan was refreshed after the grant: version 2 appeared.
  auto begun = coordinator().BeginDisruption(Dpkg(lease, {Change("pkg", "0", "2")}));
  ASSERT_TRUE(absl::IsFailedPrecondition(begun.status())) << begun.status();
  EXPECT_THAT(std::string(begun.status().message()), HasSubstr("pkg 2"));
  EXPECT_TRUE(Active().empty());
}

TEST_F(OsUpgradeTest, TheVettedSetIsAcceptedAndAnythingElseInstalledStopsTheRollout) {
  CanaryVetsVersion1();
  ASSERT_TRUE(Plan("node-b", "1").ok());
  const Lease lease = Ask("node-b", tended::v1::LEASE_KIND_OS_UPGRADE)->lease();
  ASSERT_FALSE(lease.id().empty());
  auto begun = coordinator().BeginDisruption(Dpkg(lease, {Change("pkg", "0", "1")}));
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_EQ(begun->lease().approved_packages_size(), 1);
  // It installed more than it named.
  ASSERT_TRUE(Succeeded(lease, {Change("pkg", "0", "1"), Change("extra", "1", "3")}).ok());
  ASSERT_TRUE(Plan("node-b", "", lease.id()).ok());
  ASSERT_EQ(Active().size(), 1u) << "released although it installed what it had not named";
  EXPECT_THAT(Active()[0].status_message(), HasSubstr("extra 3"));
  EXPECT_THAT(GateReason(tended::v1::LEASE_KIND_OS_UPGRADE, "canary"), HasSubstr("stopped"));
}

TEST_F(OsUpgradeTest, ADpkgStepMustNameWhatItInstalls) {
  CanaryVetsVersion1();
  ASSERT_TRUE(Plan("node-b", "1").ok());
  const Lease lease = Ask("node-b", tended::v1::LEASE_KIND_OS_UPGRADE)->lease();
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().BeginDisruption(Dpkg(lease, {})).status()));
  EXPECT_EQ(Active().size(), 1u);
}

}  // namespace
}  // namespace tended::testing
