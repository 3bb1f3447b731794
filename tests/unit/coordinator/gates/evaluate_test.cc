// The gates of one lease kind put together: the fleet-wide set each decision evaluates once,
// and the smaller set re-checked right before a disruptive act under a granted lease.
#include "coordinator/gates/evaluate.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::tended::v1::LEASE_KIND_K8S_UPGRADE;
using ::tended::v1::LEASE_KIND_OS_UPGRADE;
using ::tended::v1::LEASE_KIND_REBOOT;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 3, 30, 3, 0, 0), absl::UTCTimeZone());

CoordinatorConfig BaseConfig() {
  CoordinatorConfig config;
  config.leases[LEASE_KIND_REBOOT] = LeasePolicy{};
  config.leases[LEASE_KIND_OS_UPGRADE] = LeasePolicy{};
  config.fleet.report_deadline = absl::Minutes(2);
  return config;
}

GateFacts HealthyFacts() {
  GateFacts facts;
  facts.fleet.known = 3;
  return facts;
}

std::vector<std::string> Names(const std::vector<GateOutcome>& outcomes) {
  std::vector<std::string> names;
  for (const GateOutcome& outcome : outcomes) names.push_back(outcome.gate);
  return names;
}

std::vector<std::string> Blocking(const std::vector<GateOutcome>& outcomes) {
  std::vector<std::string> names;
  for (const GateOutcome& outcome : outcomes) {
    if (!outcome.pass) names.push_back(outcome.gate);
  }
  return names;
}

TEST(EvaluateFleetGatesTest, ReturnsEveryGateInOrder) {
  std::vector<GateOutcome> outcomes =
      EvaluateFleetGates(LEASE_KIND_REBOOT, HealthyFacts(), BaseConfig(), kNow);
  EXPECT_THAT(Names(outcomes), ElementsAre("state", "halt", "window", "concurrency", "soak",
                                           "fleet_health", "alerts"));
  EXPECT_TRUE(AllPass(outcomes));
  for (const GateOutcome& outcome : outcomes) EXPECT_FALSE(outcome.reason.empty()) << outcome.gate;
}

TEST(EvaluateFleetGatesTest, OneBlockingGateFailsAllPass) {
  GateFacts facts = HealthyFacts();
  facts.halted = true;
  facts.halt_reason = "investigating";
  std::vector<GateOutcome> outcomes =
      EvaluateFleetGates(LEASE_KIND_REBOOT, facts, BaseConfig(), kNow);
  ASSERT_EQ(outcomes.size(), 7u);
  EXPECT_THAT(Blocking(outcomes), ElementsAre("halt"));
  EXPECT_FALSE(AllPass(outcomes));
}

TEST(EvaluateFleetGatesTest, UnconfiguredOrDisabledKindYieldsPolicyBlock) {
  CoordinatorConfig config = BaseConfig();
  std::vector<GateOutcome> missing =
      EvaluateFleetGates(LEASE_KIND_K8S_UPGRADE, HealthyFacts(), config, kNow);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].gate, "policy");
  EXPECT_FALSE(missing[0].pass);
  EXPECT_THAT(missing[0].reason, HasSubstr("k8s_upgrade leases are not configured"));
  EXPECT_FALSE(AllPass(missing));

  config.leases[LEASE_KIND_REBOOT].enabled = false;
  std::vector<GateOutcome> disabled =
      EvaluateFleetGates(LEASE_KIND_REBOOT, HealthyFacts(), config, kNow);
  ASSERT_EQ(disabled.size(), 1u);
  EXPECT_EQ(disabled[0].gate, "policy");
  EXPECT_FALSE(disabled[0].pass);
  EXPECT_THAT(disabled[0].reason, HasSubstr("disabled"));
}

TEST(EvaluateFleetGatesTest, KubernetesGatesFollowWhenEnabled) {
  CoordinatorConfig config = BaseConfig();
  config.kubernetes.enabled = true;
  std::vector<GateOutcome> outcomes =
      EvaluateFleetGates(LEASE_KIND_REBOOT, HealthyFacts(), config, kNow);
  EXPECT_THAT(Names(outcomes),
              ElementsAre("state", "halt", "window", "concurrency", "soak", "fleet_health",
                          "alerts", "kubernetes", "node_ready", "ready_soak"));
  // Nothing read from the API yet: closed.
  EXPECT_THAT(Blocking(outcomes), ElementsAre("kubernetes", "node_ready", "ready_soak"));
}

// What the grant settled (concurrency, soak) is not asked again before the act: the lease
// itself is counted by then. What can change after the grant is.
TEST(RecheckBeforeActTest, ChecksStateHaltWindowAlertsAndFleetHealthOnly) {
  CoordinatorConfig config = BaseConfig();
  config.leases[LEASE_KIND_REBOOT].soak = absl::Hours(24);
  GateFacts facts = HealthyFacts();
  facts.active_leases = {{"k8s-node1", LEASE_KIND_REBOOT}};  // At the limit of 1.
  facts.last_disruption_node = "k8s-node2";
  facts.last_disruption_end = kNow - absl::Hours(1);  // Still soaking.
  facts.fleet.holders = 1;
  std::vector<GateOutcome> recheck = RecheckBeforeAct(LEASE_KIND_REBOOT, facts, config, kNow);
  EXPECT_THAT(Names(recheck), ElementsAre("state", "halt", "window", "alerts", "fleet_health"));
  EXPECT_TRUE(AllPass(recheck));
  // The same facts block a new grant.
  EXPECT_THAT(Blocking(EvaluateFleetGates(LEASE_KIND_REBOOT, facts, config, kNow)),
              ElementsAre("concurrency", "soak"));
}

TEST(RecheckBeforeActTest, EachRecheckedGateCanStopTheAct) {
  CoordinatorConfig config = BaseConfig();
  GateFacts facts = HealthyFacts();
  facts.halted = true;
  facts.halt_reason = "storage incident";
  EXPECT_THAT(Blocking(RecheckBeforeAct(LEASE_KIND_REBOOT, facts, config, kNow)),
              ElementsAre("halt"));

  facts = HealthyFacts();
  facts.state_health = absl::ResourceExhaustedError("no space left on device");
  EXPECT_THAT(Blocking(RecheckBeforeAct(LEASE_KIND_REBOOT, facts, config, kNow)),
              ElementsAre("state"));

  facts = HealthyFacts();
  facts.fleet.known = 4;
  facts.fleet.silent = {{"k8s-node4", kNow - absl::Minutes(10)}};
  EXPECT_THAT(Blocking(RecheckBeforeAct(LEASE_KIND_REBOOT, facts, config, kNow)),
              ElementsAre("fleet_health"));

  config.alerts.prometheus_url = "http://prometheus.example:9090";
  facts = HealthyFacts();
  AlertSnapshot snapshot;
  snapshot.fetched_at = kNow;
  snapshot.alerts.push_back({"NodeDiskFull", "firing", {{"alertname", "NodeDiskFull"}}});
  facts.alerts = snapshot;
  EXPECT_THAT(Blocking(RecheckBeforeAct(LEASE_KIND_REBOOT, facts, config, kNow)),
              ElementsAre("alerts"));
}

TEST(RecheckBeforeActTest, TheActMustStillFitInTheWindow) {
  CoordinatorConfig config = BaseConfig();
  MaintenanceWindow window;
  window.days = {absl::Weekday::monday};
  window.start = absl::Hours(2);
  window.end = absl::Hours(4);
  window.time_zone_name = "UTC";
  window.time_zone = absl::UTCTimeZone();
  config.leases[LEASE_KIND_REBOOT].windows = {window};
  config.leases[LEASE_KIND_REBOOT].expected_duration = absl::Minutes(30);
  // Monday 03:00 UTC: 60 minutes left.
  EXPECT_TRUE(AllPass(RecheckBeforeAct(LEASE_KIND_REBOOT, HealthyFacts(), config, kNow)));
  // 03:31: a 30-minute act no longer fits.
  std::vector<GateOutcome> late =
      RecheckBeforeAct(LEASE_KIND_REBOOT, HealthyFacts(), config, kNow + absl::Minutes(31));
  EXPECT_THAT(Blocking(late), ElementsAre("window"));
}

TEST(RecheckBeforeActTest, UnconfiguredOrDisabledKindYieldsPolicyBlock) {
  CoordinatorConfig config = BaseConfig();
  std::vector<GateOutcome> missing =
      RecheckBeforeAct(LEASE_KIND_K8S_UPGRADE, HealthyFacts(), config, kNow);
  EXPECT_THAT(Names(missing), ElementsAre("policy"));
  EXPECT_FALSE(AllPass(missing));
  config.leases[LEASE_KIND_OS_UPGRADE].enabled = false;
  EXPECT_THAT(Blocking(RecheckBeforeAct(LEASE_KIND_OS_UPGRADE, HealthyFacts(), config, kNow)),
              ElementsAre("policy"));
}

}  // namespace
}  // namespace tended::coordinator
