#include "coordinator/gates/core_gates.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::tended::v1::LEASE_KIND_K8S_UPGRADE;
using ::tended::v1::LEASE_KIND_OS_UPGRADE;
using ::tended::v1::LEASE_KIND_REBOOT;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 3, 30, 3, 0);  // Monday 04:00 BST.

CoordinatorConfig BaseConfig() {
  CoordinatorConfig config;
  config.leases[LEASE_KIND_REBOOT] = LeasePolicy{};
  config.leases[LEASE_KIND_OS_UPGRADE] = LeasePolicy{};
  config.fleet.report_deadline = absl::Minutes(2);
  return config;
}

GateFacts HealthyFacts() {
  GateFacts facts;
  facts.fleet.known = 3;  // k8s-node1..3, every one reporting.
  return facts;
}

Alert MakeAlert(const std::string& name, const std::string& state,
                std::map<std::string, std::string> labels = {}) {
  labels["alertname"] = name;
  return Alert{name, state, std::move(labels)};
}

CoordinatorConfig AlertsConfigured() {
  CoordinatorConfig config = BaseConfig();
  config.alerts.prometheus_url = "http://prometheus.example:9090";
  return config;
}

GateFacts WithAlerts(std::vector<Alert> alerts) {
  GateFacts facts = HealthyFacts();
  AlertSnapshot snapshot;
  snapshot.status = absl::OkStatus();
  snapshot.alerts = std::move(alerts);
  snapshot.fetched_at = kNow;
  facts.alerts = std::move(snapshot);
  return facts;
}

TEST(HaltGateTest, PassesWhenNotHalted) {
  GateOutcome outcome = HaltGate(HealthyFacts());
  EXPECT_EQ(outcome.gate, "halt");
  EXPECT_TRUE(outcome.pass);
  EXPECT_FALSE(outcome.reason.empty());
}

TEST(HaltGateTest, BlocksWithOperatorsReason) {
  GateFacts facts = HealthyFacts();
  facts.halted = true;
  facts.halt_reason = "storage migration in progress";
  GateOutcome outcome = HaltGate(facts);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("storage migration in progress"));
  EXPECT_FALSE(outcome.earliest_pass.has_value());
}

TEST(ConcurrencyGateTest, PassesBelowTheLimit) {
  CoordinatorConfig config = BaseConfig();
  config.leases[LEASE_KIND_REBOOT].concurrency = 2;
  GateFacts facts = HealthyFacts();
  facts.active_leases = {{"k8s-node1", LEASE_KIND_REBOOT}};
  GateOutcome outcome = ConcurrencyGate(LEASE_KIND_REBOOT, facts, config);
  EXPECT_EQ(outcome.gate, "concurrency");
  EXPECT_TRUE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("1 of 2"));
}

TEST(ConcurrencyGateTest, BlocksAtTheLimitNamingHolders) {
  CoordinatorConfig config = BaseConfig();
  GateFacts facts = HealthyFacts();
  facts.active_leases = {{"k8s-node2", LEASE_KIND_REBOOT}};
  GateOutcome outcome = ConcurrencyGate(LEASE_KIND_REBOOT, facts, config);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("k8s-node2"));
  EXPECT_FALSE(outcome.earliest_pass.has_value());
}

TEST(ConcurrencyGateTest, OtherKindBlocksUnlessOverlapIsAllowed) {
  CoordinatorConfig config = BaseConfig();
  GateFacts facts = HealthyFacts();
  facts.active_leases = {{"k8s-node2", LEASE_KIND_OS_UPGRADE}};

  GateOutcome blocked = ConcurrencyGate(LEASE_KIND_REBOOT, facts, config);
  EXPECT_FALSE(blocked.pass);
  EXPECT_THAT(blocked.reason, HasSubstr("an os_upgrade lease is active on k8s-node2"));

  config.allow_kind_overlap = true;
  EXPECT_TRUE(ConcurrencyGate(LEASE_KIND_REBOOT, facts, config).pass);

  // Overlap does not lift the per-kind limit.
  facts.active_leases.push_back({"k8s-node3", LEASE_KIND_REBOOT});
  EXPECT_FALSE(ConcurrencyGate(LEASE_KIND_REBOOT, facts, config).pass);
}

TEST(ConcurrencyGateTest, UnconfiguredKindBlocks) {
  GateOutcome outcome = ConcurrencyGate(LEASE_KIND_K8S_UPGRADE, HealthyFacts(), BaseConfig());
  EXPECT_FALSE(outcome.pass);
}

TEST(SoakGateTest, PassesWhenNothingWasDisrupted) {
  EXPECT_TRUE(SoakGate(LeasePolicy{}, HealthyFacts(), kNow).pass);
}

TEST(SoakGateTest, BlocksUntilTheLatestDisruptionHasSoaked) {
  LeasePolicy policy;
  policy.soak = absl::Hours(24);
  GateFacts facts = HealthyFacts();
  // The coordinator passes the latest disruption's end (k8s-node1's, 30h ago, is older).
  facts.last_disruption_node = "k8s-node3";
  facts.last_disruption_end = kNow - absl::Hours(21);

  GateOutcome outcome = SoakGate(policy, facts, kNow);
  EXPECT_EQ(outcome.gate, "soak");
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.earliest_pass, Optional(kNow + absl::Hours(3)));
  EXPECT_THAT(outcome.reason, HasSubstr("k8s-node3"));
  EXPECT_THAT(outcome.reason, HasSubstr("2026-03-30 06:00 UTC"));

  EXPECT_FALSE(SoakGate(policy, facts, kNow + absl::Hours(3) - absl::Seconds(1)).pass);
  GateOutcome later = SoakGate(policy, facts, kNow + absl::Hours(3));
  EXPECT_TRUE(later.pass);
  EXPECT_FALSE(later.earliest_pass.has_value());
  EXPECT_THAT(later.reason, HasSubstr("k8s-node3"));
}

TEST(FleetHealthGateTest, PassesWhenEveryNodeReports) {
  GateOutcome outcome = FleetHealthGate(HealthyFacts(), BaseConfig(), kNow);
  EXPECT_EQ(outcome.gate, "fleet_health");
  EXPECT_TRUE(outcome.pass);
}

TEST(FleetHealthGateTest, BlocksNamingSilentNodes) {
  GateFacts facts = HealthyFacts();
  facts.fleet.known = 4;
  facts.fleet.silent = {{"k8s-node4", absl::InfinitePast()},
                        {"k8s-node2", kNow - absl::Minutes(5)}};
  GateOutcome outcome = FleetHealthGate(facts, BaseConfig(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, AllOf(HasSubstr("2 nodes have not reported within 2m: "),
                                    HasSubstr("k8s-node2 (silent for 5m)"),
                                    HasSubstr("k8s-node4 (not since the coordinator started)"),
                                    Not(HasSubstr("k8s-node1"))));
  // Sorted by name, whatever order the coordinator listed them in.
  EXPECT_LT(outcome.reason.find("k8s-node2"), outcome.reason.find("k8s-node4"));
  EXPECT_FALSE(outcome.earliest_pass.has_value());
}

TEST(FleetHealthGateTest, ManySilentNodesAreCapped) {
  GateFacts facts;
  facts.fleet.known = 1000;
  for (int i = 0; i < 12; ++i) {
    facts.fleet.silent.push_back({absl::StrCat("node-", 10 + i), kNow - absl::Minutes(3)});
  }
  GateOutcome outcome = FleetHealthGate(facts, BaseConfig(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, AllOf(HasSubstr("12 nodes have not reported"), HasSubstr("node-14"),
                                    Not(HasSubstr("node-15")), HasSubstr("and 7 more")));
}

// The coordinator leaves lease holders out of `silent` and counts them in `holders`.
TEST(FleetHealthGateTest, LeaseHoldersAreNotCounted) {
  GateFacts facts = HealthyFacts();
  facts.fleet.holders = 1;
  GateOutcome outcome = FleetHealthGate(facts, BaseConfig(), kNow);
  EXPECT_TRUE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("2 nodes reported within 2m (1 lease holder not counted)"));
  facts.fleet.holders = 3;
  outcome = FleetHealthGate(facts, BaseConfig(), kNow);
  EXPECT_TRUE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("every known node holds a lease"));
}

TEST(FleetHealthGateTest, NoNodesKnownPasses) {
  GateOutcome outcome = FleetHealthGate(GateFacts{}, BaseConfig(), kNow);
  EXPECT_TRUE(outcome.pass);
  EXPECT_EQ(outcome.reason, "no nodes known");
}

TEST(AlertsGateTest, NotConfiguredPasses) {
  GateOutcome outcome = AlertsGate(HealthyFacts(), BaseConfig(), kNow);
  EXPECT_EQ(outcome.gate, "alerts");
  EXPECT_TRUE(outcome.pass);
}

TEST(AlertsGateTest, UnreachableSourceBlocks) {
  GateFacts facts = WithAlerts({});
  facts.alerts->status = absl::UnavailableError("connection refused");
  GateOutcome outcome = AlertsGate(facts, AlertsConfigured(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("connection refused"));
}

TEST(AlertsGateTest, MissingSnapshotBlocks) {
  EXPECT_FALSE(AlertsGate(HealthyFacts(), AlertsConfigured(), kNow).pass);
}

TEST(AlertsGateTest, NoAlertsPasses) {
  EXPECT_TRUE(AlertsGate(WithAlerts({}), AlertsConfigured(), kNow).pass);
}

TEST(AlertsGateTest, FiringAlertBlocksAndIsNamedOnce) {
  GateFacts facts = WithAlerts({MakeAlert("NodeFilesystemAlmostFull", "firing", {{"i", "1"}}),
                                MakeAlert("NodeFilesystemAlmostFull", "firing", {{"i", "2"}}),
                                MakeAlert("KubeNodeNotReady", "firing")});
  GateOutcome outcome = AlertsGate(facts, AlertsConfigured(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("KubeNodeNotReady, NodeFilesystemAlmostFull"));
}

TEST(AlertsGateTest, IgnoredAlertPasses) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.ignore_regex_text = "^(Watchdog|InfoInhibitor)$";
  config.alerts.ignore_regex = *CompileIgnoreRegex(config.alerts.ignore_regex_text);
  GateFacts facts = WithAlerts({MakeAlert("Watchdog", "firing")});
  EXPECT_TRUE(AlertsGate(facts, config, kNow).pass);

  facts.alerts->alerts.push_back(MakeAlert("WatchdogDown", "firing"));
  GateOutcome outcome = AlertsGate(facts, config, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("WatchdogDown"));
}

TEST(AlertsGateTest, IgnoreRegexIsSearchedNotAnchored) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.ignore_regex_text = "Info";
  config.alerts.ignore_regex = *CompileIgnoreRegex(config.alerts.ignore_regex_text);
  EXPECT_TRUE(
      AlertsGate(WithAlerts({MakeAlert("CPUThrottlingInfoHigh", "firing")}), config, kNow).pass);
}

// Prometheus passes any label value. A 50 KB alert name against an ignore pattern with
// `.*`: std::regex backtracked by recursion, once per character, and overflowed the stack.
TEST(AlertsGateTest, HugeAlertNameIsJudgedWithoutCrashing) {
  absl::StatusOr<CoordinatorConfig> config = ParseCoordinatorConfig(
      "alerts:\n  prometheus_url: http://prometheus.example:9090\n"
      "  ignore: '^(Watchdog|.*Info.*)$'\n",
      "c.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string huge(50 * 1024, 'A');
  GateFacts facts = WithAlerts({MakeAlert(huge + "Info" + huge, "firing")});
  EXPECT_TRUE(AlertsGate(facts, *config, kNow).pass);
  facts.alerts->alerts.push_back(MakeAlert(huge, "firing"));
  GateOutcome outcome = AlertsGate(facts, *config, kNow);
  EXPECT_FALSE(outcome.pass);
  // The reason goes into leases, events and notifications: the name is clipped there.
  EXPECT_THAT(outcome.reason, HasSubstr("...(51200 bytes)"));
  EXPECT_LT(outcome.reason.size(), 512u) << outcome.reason.substr(0, 300);
}

// A configuration built in code with the text only: the gate compiles it itself.
TEST(AlertsGateTest, UncompiledIgnoreTextIsCompiledOrBlocks) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.ignore_regex_text = "^Watchdog$";
  EXPECT_TRUE(AlertsGate(WithAlerts({MakeAlert("Watchdog", "firing")}), config, kNow).pass);
  config.alerts.ignore_regex_text = "(a)\\1";
  GateOutcome outcome = AlertsGate(WithAlerts({}), config, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("not a regular expression RE2 accepts"));
}

TEST(AlertsGateTest, FreshSnapshotPassesUpToMaxAge) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.max_age = absl::Seconds(60);
  GateFacts facts = WithAlerts({});
  facts.alerts->fetched_at = kNow - absl::Seconds(60);
  EXPECT_TRUE(AlertsGate(facts, config, kNow).pass);
}

TEST(AlertsGateTest, StaleSnapshotBlocks) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.max_age = absl::Seconds(60);
  GateFacts facts = WithAlerts({});
  facts.alerts->fetched_at = kNow - absl::Seconds(95);
  GateOutcome outcome = AlertsGate(facts, config, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason,
              HasSubstr("alerts were last read 1m35s ago (more than max_age 1m) from "
                        "http://prometheus.example:9090"));
  // Never read at all, though the snapshot says OK.
  facts.alerts->fetched_at = absl::InfinitePast();
  EXPECT_FALSE(AlertsGate(facts, config, kNow).pass);
}

TEST(AlertsGateTest, FailedFetchBlocksEvenWhenFresh) {
  GateFacts facts = WithAlerts({});
  facts.alerts->status = absl::DeadlineExceededError("no complete answer within 10s");
  facts.alerts->fetched_at = kNow;
  GateOutcome outcome = AlertsGate(facts, AlertsConfigured(), kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("no complete answer within 10s"));
}

TEST(AlertsGateTest, PendingAlertBlocksOnlyWithoutFiringOnly) {
  CoordinatorConfig config = AlertsConfigured();
  GateFacts facts = WithAlerts({MakeAlert("KubeNodeNotReady", "pending")});
  config.alerts.firing_only = true;
  EXPECT_TRUE(AlertsGate(facts, config, kNow).pass);
  config.alerts.firing_only = false;
  GateOutcome outcome = AlertsGate(facts, config, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, HasSubstr("KubeNodeNotReady"));
}

TEST(AlertsGateTest, MatchLabelsSelectWhichAlertsBlock) {
  CoordinatorConfig config = AlertsConfigured();
  config.alerts.match_labels = {{"severity", "critical"}, {"cluster", "home"}};
  GateFacts facts =
      WithAlerts({MakeAlert("DiskSlow", "firing", {{"severity", "warning"}, {"cluster", "home"}}),
                  MakeAlert("EtcdDown", "firing", {{"severity", "critical"}})});
  EXPECT_TRUE(AlertsGate(facts, config, kNow).pass);

  facts.alerts->alerts.push_back(
      MakeAlert("EtcdNoLeader", "firing", {{"severity", "critical"}, {"cluster", "home"}}));
  GateOutcome outcome = AlertsGate(facts, config, kNow);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, AllOf(HasSubstr("EtcdNoLeader"), Not(HasSubstr("EtcdDown")),
                                    Not(HasSubstr("DiskSlow"))));
}

TEST(StateGateTest, PassesWhileTheStateIsDurableAndComplete) {
  GateOutcome outcome = StateGate(HealthyFacts());
  EXPECT_EQ(outcome.gate, "state");
  EXPECT_TRUE(outcome.pass);
}

TEST(StateGateTest, BlocksOnAFailedLedger) {
  GateFacts facts = HealthyFacts();
  facts.state_health = absl::DataLossError("fsync: Input/output error");
  GateOutcome outcome = StateGate(facts);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, AllOf(HasSubstr("cannot be written"),
                                    HasSubstr("fsync: Input/output error"), HasSubstr("restart")));
}

TEST(StateGateTest, BlocksWithWhatRecoveryWaitsFor) {
  GateFacts facts = HealthyFacts();
  facts.recovery_wait = "node-b has not reported since the start on an empty state";
  GateOutcome outcome = StateGate(facts);
  EXPECT_FALSE(outcome.pass);
  EXPECT_EQ(outcome.reason, "node-b has not reported since the start on an empty state");
}

}  // namespace
}  // namespace tended::coordinator
