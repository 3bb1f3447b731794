// The OS rollout's canary gate and the vetting of package versions, as pure functions. The
// rollout driven through the Coordinator is in tests/unit/coordinator/core/os_rollout_test.cc.
#include "coordinator/gates/canary_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/proto_time.h"

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

TEST(CanaryGateTest, ACanaryNotHeardSinceTheStartBlocksTheOthers) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({});
  facts.nodes["node4"].last_report = absl::InfinitePast();
  EXPECT_THAT(CanaryGateForNode(facts, "node1", kNow).reason,
              HasSubstr("has not reported since the coordinator started"));
}

TEST(CanaryGateTest, APlanTooLongToListCannotBeVouchedFor) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({{"libfoo", "1.1"}});
  facts.nodes["node1"].os.set_upgrades_available(900);
  facts.nodes["node1"].os.set_planned_truncated(true);
  Vet(facts, "libfoo", "1.1", kNow - absl::Hours(48));
  GateOutcome outcome = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("plans 900 upgrades, more than it can list"));
}

TEST(CanaryGateTest, NothingPlannedThatTheCanaryHasNotVettedPasses) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({});
  GateOutcome outcome = CanaryGateForNode(facts, "node1", kNow);
  EXPECT_TRUE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("plans nothing it has not vetted"));
  // An unknown node is not let through.
  EXPECT_FALSE(CanaryGateForNode(facts, "node9", kNow).pass);
}

TEST(CanaryGateTest, NoneOfSeveralWaitingNodesMayGoUntilTheEarliestSoakEnds) {
  OsRolloutFacts facts = Fleet();
  facts.nodes["node1"].os = Plan({{"app", "2.0"}});
  facts.nodes["node2"].os = Plan({{"libfoo", "1.1"}});
  Vet(facts, "app", "2.0", kNow - absl::Hours(1));
  Vet(facts, "libfoo", "1.1", kNow - absl::Hours(5));
  std::string first = "unchanged";
  GateOutcome outcome = CanaryGate(facts, {"node1", "node2"}, kNow, &first);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("none of the 2 waiting nodes may go yet; first: "));
  EXPECT_THAT(outcome.earliest_pass, ::testing::Optional(kNow + absl::Hours(19)));
  EXPECT_EQ(first, "unchanged");
  facts.nodes["node4"].last_report = kNow + absl::Hours(19);
  EXPECT_TRUE(CanaryGate(facts, {"node1", "node2"}, kNow + absl::Hours(19), &first).pass);
  EXPECT_EQ(first, "node2");
}

TEST(CheckVettedTest, NamesWhatTheCanaryDidNotInstallAndTheLatestVetting) {
  OsRolloutFacts facts = Fleet();
  Vet(facts, "libfoo", "1.1", kNow - absl::Hours(3));
  Vet(facts, "app", "2.0", kNow - absl::Hours(1));
  auto version = [](const std::string& name, const std::string& v) {
    tended::v1::PackageVersion package;
    package.set_name(name);
    package.set_version(v);
    return package;
  };
  VettingResult result = CheckVetted(facts.state, {version("libfoo", "1.1"), version("app", "2.0"),
                                                   version("app", "2.1"), version("zlib", "1")});
  EXPECT_THAT(result.unvetted, ::testing::ElementsAre("app 2.1", "zlib 1"));
  EXPECT_EQ(result.latest_vetted, kNow - absl::Hours(1));
  VettingResult none = CheckVetted(facts.state, {});
  EXPECT_TRUE(none.unvetted.empty());
  EXPECT_EQ(none.latest_vetted, absl::InfinitePast());
}

}  // namespace
}  // namespace tended::coordinator
