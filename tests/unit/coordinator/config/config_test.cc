#include <sys/stat.h>

// The coordinator's configuration as accepted: defaults, a full document, the previous
// format's state_file key, the shipped example, days and windows, metrics and
// notifications. What is refused is config_errors_test.cc.
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/config/config_test_util.h"

namespace tended::coordinator {
namespace {

using config_test::ErrorOf;
using config_test::kFri;
using config_test::kMon;
using config_test::kSat;
using config_test::kSun;
using config_test::kThu;
using config_test::kTue;
using config_test::kWed;
using config_test::Parse;
using config_test::ParseOneWindow;
using config_test::RebootWithWindow;
using tended::v1::LEASE_KIND_K8S_UPGRADE;
using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_KIND_REBOOT;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(CoordinatorConfigTest, EmptyDocumentGivesDefaults) {
  absl::StatusOr<CoordinatorConfig> config = Parse("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address, "0.0.0.0:7443");
  EXPECT_EQ(config->state_dir, "/var/lib/tended-coordinator");
  EXPECT_EQ(config->legacy_state_file, "/var/lib/tended-coordinator/state.json");
  EXPECT_EQ(config->history_limit, 1000);
  EXPECT_FALSE(config->allow_kind_overlap);
  EXPECT_EQ(config->fleet.report_deadline, absl::Minutes(2));
  EXPECT_EQ(config->fleet.report_interval, absl::Seconds(30));
  EXPECT_EQ(config->fleet.return_backoff, absl::Minutes(5));
  EXPECT_EQ(config->fleet.return_backoff_max, absl::Hours(2));
  EXPECT_EQ(config->alerts.prometheus_url, "");
  EXPECT_EQ(config->alerts.ignore_regex, nullptr);
  EXPECT_TRUE(config->alerts.firing_only);
  EXPECT_EQ(config->alerts.poll_interval, absl::Seconds(15));
  EXPECT_EQ(config->alerts.max_age, absl::Seconds(60));
  EXPECT_TRUE(config->leases.empty());
}

TEST(CoordinatorConfigTest, PresentKindWithoutSettingsGetsPolicyDefaults) {
  absl::StatusOr<CoordinatorConfig> config = Parse("leases:\n  k8s_upgrade:\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->leases.size(), 1u);
  const LeasePolicy& policy = config->leases.at(LEASE_KIND_K8S_UPGRADE);
  EXPECT_TRUE(policy.enabled);
  EXPECT_EQ(policy.concurrency, 1);
  EXPECT_EQ(policy.soak, absl::Hours(24));
  EXPECT_EQ(policy.expected_duration, absl::Minutes(30));
  EXPECT_EQ(policy.renew_deadline, absl::Minutes(10));
  EXPECT_EQ(policy.return_deadline, absl::Minutes(30));
  EXPECT_EQ(policy.begin_wait, absl::Minutes(30));
  EXPECT_TRUE(policy.windows.empty());
  EXPECT_FALSE(policy.auto_start);
}

TEST(CoordinatorConfigTest, AutoStartIsAKubernetesRolloutSetting) {
  absl::StatusOr<CoordinatorConfig> config =
      Parse("leases:\n  k8s_upgrade:\n    auto_start: true\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->leases.at(LEASE_KIND_K8S_UPGRADE).auto_start);
  absl::StatusOr<CoordinatorConfig> reboot = Parse("leases:\n  reboot:\n    auto_start: true\n");
  ASSERT_FALSE(reboot.ok());
  EXPECT_THAT(std::string(reboot.status().message()),
              HasSubstr("only k8s_upgrade (Kubernetes rollouts) has this setting"));
  EXPECT_FALSE(Parse("leases:\n  k8s_upgrade:\n    auto_start: sometimes\n").ok());
}

TEST(CoordinatorConfigTest, FullValidParse) {
  const std::string yaml =
      "listen: \"[::1]:9443\"\n"
      "state_dir: /srv/tended\n"
      "history_limit: 500\n"
      "allow_kind_overlap: true\n"
      "fleet:\n"
      "  report_deadline: 5m\n"
      "  report_interval: 1m\n"
      "  return_backoff: 10m\n"
      "  return_backoff_max: 6h\n"
      "alerts:\n"
      "  prometheus_url: https://prom.example:9090/\n"
      "  ignore: '^(Watchdog|InfoInhibitor)$'\n"
      "  firing_only: false\n"
      "  match_labels: {severity: critical, team: platform}\n"
      "  timeout: 3s\n"
      "  poll_interval: 5s\n"
      "  max_age: 30s\n"
      "leases:\n"
      "  reboot:\n"
      "    enabled: false\n"
      "    concurrency: 2\n"
      "    soak: 2d\n"
      "    expected_duration: 45m\n"
      "    renew_deadline: 5m\n"
      "    return_deadline: 1h30m\n"
      "    begin_wait: 20m\n"
      "    windows:\n"
      "      - days: [mon-wed, Friday]\n"
      "        start: \"01:00\"\n"
      "        end: \"05:30:30\"\n"
      "        time_zone: Europe/London\n"
      "      - days: [sat]\n"
      "        start: \"22:00\"\n"
      "        end: \"02:00\"\n"
      "  os_upgrade:\n"
      "    concurrency: 3\n"
      "    soak: 0\n";
  absl::StatusOr<CoordinatorConfig> config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address, "[::1]:9443");
  EXPECT_EQ(config->state_dir, "/srv/tended");
  // A state file of the previous format in the folder is imported once.
  EXPECT_EQ(config->legacy_state_file, "/srv/tended/state.json");
  EXPECT_EQ(config->history_limit, 500);
  EXPECT_TRUE(config->allow_kind_overlap);
  EXPECT_EQ(config->fleet.report_deadline, absl::Minutes(5));
  EXPECT_EQ(config->fleet.report_interval, absl::Minutes(1));
  EXPECT_EQ(config->fleet.return_backoff, absl::Minutes(10));
  EXPECT_EQ(config->fleet.return_backoff_max, absl::Hours(6));

  const AlertsConfig& alerts = config->alerts;
  EXPECT_EQ(alerts.prometheus_url, "https://prom.example:9090/");
  EXPECT_EQ(alerts.ignore_regex_text, "^(Watchdog|InfoInhibitor)$");
  ASSERT_NE(alerts.ignore_regex, nullptr);
  EXPECT_TRUE(RE2::PartialMatch("Watchdog", *alerts.ignore_regex));
  EXPECT_FALSE(RE2::PartialMatch("KubeNodeNotReady", *alerts.ignore_regex));
  EXPECT_FALSE(alerts.firing_only);
  EXPECT_EQ(alerts.match_labels,
            (std::map<std::string, std::string>{{"severity", "critical"}, {"team", "platform"}}));
  EXPECT_EQ(alerts.timeout, absl::Seconds(3));
  EXPECT_EQ(alerts.poll_interval, absl::Seconds(5));
  EXPECT_EQ(alerts.max_age, absl::Seconds(30));

  ASSERT_EQ(config->leases.size(), 2u);
  EXPECT_EQ(config->leases.count(LEASE_KIND_K8S_UPGRADE), 0u);
  const LeasePolicy& reboot = config->leases.at(LEASE_KIND_REBOOT);
  EXPECT_FALSE(reboot.enabled);
  EXPECT_EQ(reboot.concurrency, 2);
  EXPECT_EQ(reboot.soak, absl::Hours(48));
  EXPECT_EQ(reboot.expected_duration, absl::Minutes(45));
  EXPECT_EQ(reboot.renew_deadline, absl::Minutes(5));
  EXPECT_EQ(reboot.return_deadline, absl::Minutes(90));
  EXPECT_EQ(reboot.begin_wait, absl::Minutes(20));
  ASSERT_EQ(reboot.windows.size(), 2u);
  const MaintenanceWindow& first = reboot.windows[0];
  EXPECT_THAT(first.days, ElementsAre(kMon, kTue, kWed, kFri));
  EXPECT_EQ(first.start, absl::Hours(1));
  EXPECT_EQ(first.end, absl::Hours(5) + absl::Minutes(30) + absl::Seconds(30));
  EXPECT_EQ(first.time_zone_name, "Europe/London");
  EXPECT_EQ(first.time_zone.name(), "Europe/London");
  const MaintenanceWindow& second = reboot.windows[1];
  EXPECT_THAT(second.days, ElementsAre(kSat));
  EXPECT_EQ(second.start, absl::Hours(22));
  EXPECT_EQ(second.end, absl::Hours(2));
  EXPECT_EQ(second.time_zone_name, "UTC");
  EXPECT_EQ(MaintenanceWindowLength(second), absl::Hours(4));

  const LeasePolicy& os = config->leases.at(LEASE_KIND_OS_UPGRADE);
  EXPECT_EQ(os.concurrency, 3);
  EXPECT_EQ(os.soak, absl::ZeroDuration());
  EXPECT_EQ(os.begin_wait, absl::Minutes(30));
  EXPECT_TRUE(os.windows.empty());
  EXPECT_TRUE(ValidateCoordinatorConfig(*config).ok());
}

TEST(CoordinatorConfigTest, MetricsTls) {
  EXPECT_FALSE(Parse("metrics_listen: 0.0.0.0:9477\n").value().metrics_tls.has_value());
  absl::StatusOr<CoordinatorConfig> config = Parse(
      "metrics_tls:\n"
      "  cert_file: /etc/tended/tls/tls.crt\n"
      "  key_file: /etc/tended/tls/tls.key\n"
      "  client_ca_file: /etc/tended/scrapers.crt\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->metrics_tls.has_value());
  EXPECT_EQ(config->metrics_tls->cert_file, "/etc/tended/tls/tls.crt");
  EXPECT_EQ(config->metrics_tls->key_file, "/etc/tended/tls/tls.key");
  EXPECT_EQ(config->metrics_tls->client_ca_file, "/etc/tended/scrapers.crt");
  absl::StatusOr<CoordinatorConfig> server_only =
      Parse("metrics_tls:\n  cert_file: /a.crt\n  key_file: /a.key\n");
  ASSERT_TRUE(server_only.ok()) << server_only.status();
  EXPECT_TRUE(server_only->metrics_tls->client_ca_file.empty());
  EXPECT_THAT(ErrorOf("metrics_tls:\n  cert_file: /a.crt\n"), HasSubstr("key_file is required"));
  EXPECT_THAT(ErrorOf("metrics_tls:\n  cert_file: /a.crt\n  key_file: /a.key\n"
                      "  client_ca_file: ca.crt\n"),
              StartsWith("c.yaml:4: metrics_tls.client_ca_file: must be an absolute path"));
  EXPECT_THAT(ErrorOf("metrics_tls:\n  reload_interval: 1s\n"), HasSubstr("unknown key"));
}

TEST(CoordinatorConfigTest, TlsCrlDirectory) {
  const std::string files =
      "tls:\n  cert_file: /c.crt\n  key_file: /c.key\n  client_ca_file: /ca.crt\n";
  absl::StatusOr<CoordinatorConfig> without = Parse(files);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(without->tls->crl_directory, "");  // No revocation check by default.
  absl::StatusOr<CoordinatorConfig> with = Parse(files + "  crl_directory: /etc/tended/crl\n");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->tls->crl_directory, "/etc/tended/crl");
  EXPECT_THAT(ErrorOf(files + "  crl_directory: crl\n"),
              StartsWith("c.yaml:5: tls.crl_directory: must be an absolute path"));
}

TEST(CoordinatorConfigTest, TlsAndOperators) {
  absl::StatusOr<CoordinatorConfig> config = Parse(
      "tls:\n"
      "  cert_file: /etc/tended/tls/server.crt\n"
      "  key_file: /etc/tended/tls/server.key\n"
      "  client_ca_file: /etc/kubernetes/pki/ca.crt\n"
      "  reload_interval: 30s\n"
      "operators:\n"
      "  alice: admin\n"
      "  bot: read\n"
      "  bob: none\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->cert_file, "/etc/tended/tls/server.crt");
  EXPECT_EQ(config->tls->key_file, "/etc/tended/tls/server.key");
  EXPECT_EQ(config->tls->client_ca_file, "/etc/kubernetes/pki/ca.crt");
  EXPECT_EQ(config->tls->reload_interval, absl::Seconds(30));
  EXPECT_EQ(config->operators, (std::map<std::string, OperatorRole>{{"alice", OperatorRole::kAdmin},
                                                                    {"bob", OperatorRole::kNone},
                                                                    {"bot", OperatorRole::kRead}}));
  EXPECT_FALSE(Parse("").value().tls.has_value());

  EXPECT_THAT(ErrorOf("tls:\n  cert_file: /a\n  key_file: /b\n"),
              HasSubstr("client_ca_file is required"));
  EXPECT_THAT(ErrorOf("tls:\n  cert_file: a.crt\n  key_file: /b\n  client_ca_file: /c\n"),
              StartsWith("c.yaml:2: tls.cert_file: must be an absolute path"));
  EXPECT_THAT(ErrorOf("tls:\n  cert: /a\n"), HasSubstr("unknown key"));
  EXPECT_THAT(ErrorOf("operators:\n  alice: root\n"),
              StartsWith("c.yaml:2: operators.alice: expected read, admin or none, got \"root\""));
}

// The previous format's key still works: its folder becomes the state_dir and the file is
// imported once into the empty ledger there.
TEST(CoordinatorConfigTest, StateFileIsTheLegacyKey) {
  absl::StatusOr<CoordinatorConfig> config = Parse("state_file: /srv/old/coordinator.json\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->state_dir, "/srv/old");
  EXPECT_EQ(config->legacy_state_file, "/srv/old/coordinator.json");
  EXPECT_THAT(ErrorOf("state_file: /srv/old/state.json\nstate_dir: /srv/new\n"),
              StartsWith("c.yaml:1: state_file: state_file is the previous format's key; give "
                         "state_dir only"));
}

TEST(CoordinatorConfigTest, ShippedExampleEncodesReferencePolicy) {
  absl::StatusOr<CoordinatorConfig> config =
      LoadCoordinatorConfig(TENDED_SOURCE_DIR "/packaging/examples/coordinator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->allow_kind_overlap);
  EXPECT_EQ(config->listen_address, "0.0.0.0:7443");
  EXPECT_FALSE(config->alerts.prometheus_url.empty());
  EXPECT_EQ(config->alerts.ignore_regex_text,
            "^(Watchdog|RebootRequired|KuredNodeWasNotDrained|InfoInhibitor)$");
  ASSERT_NE(config->alerts.ignore_regex, nullptr);
  for (const char* ignored :
       {"Watchdog", "RebootRequired", "KuredNodeWasNotDrained", "InfoInhibitor"}) {
    EXPECT_TRUE(RE2::PartialMatch(ignored, *config->alerts.ignore_regex)) << ignored;
  }
  EXPECT_FALSE(RE2::PartialMatch("WatchdogDown", *config->alerts.ignore_regex));
  EXPECT_FALSE(RE2::PartialMatch("KubeNodeNotReady", *config->alerts.ignore_regex));
  EXPECT_TRUE(config->alerts.firing_only);

  for (auto kind : {LEASE_KIND_REBOOT, LEASE_KIND_OS_UPGRADE}) {
    SCOPED_TRACE(LeaseKindConfigName(kind));
    ASSERT_EQ(config->leases.count(kind), 1u);
    const LeasePolicy& policy = config->leases.at(kind);
    EXPECT_TRUE(policy.enabled);
    EXPECT_EQ(policy.concurrency, 1);
    EXPECT_EQ(policy.soak, absl::Hours(24));
    ASSERT_EQ(policy.windows.size(), 1u);
    const MaintenanceWindow& window = policy.windows[0];
    EXPECT_THAT(window.days, ElementsAre(kMon, kTue, kWed, kThu, kFri));
    EXPECT_EQ(window.start, absl::Hours(2));
    EXPECT_EQ(window.end, absl::Hours(6));
    EXPECT_EQ(window.time_zone_name, "Europe/London");
    // 02:00 London on a summer Monday is 01:00 UTC: the zone really was loaded.
    EXPECT_EQ(absl::FromCivil(absl::CivilSecond(2026, 6, 1, 2, 0, 0), window.time_zone),
              absl::FromCivil(absl::CivilSecond(2026, 6, 1, 1, 0, 0), absl::UTCTimeZone()));
  }
  // The reference policy for Kubernetes rollouts is kept, switched off until they exist.
  ASSERT_EQ(config->leases.count(LEASE_KIND_K8S_UPGRADE), 1u);
  EXPECT_FALSE(config->leases.at(LEASE_KIND_K8S_UPGRADE).enabled);
  EXPECT_EQ(config->leases.at(LEASE_KIND_K8S_UPGRADE).concurrency, 1);
  EXPECT_EQ(config->leases.at(LEASE_KIND_K8S_UPGRADE).soak, absl::Minutes(10));
  // Detection announces; it starts no rollout by itself in the reference.
  EXPECT_FALSE(config->leases.at(LEASE_KIND_K8S_UPGRADE).auto_start);
  EXPECT_TRUE(ValidateCoordinatorConfig(*config).ok());
}

TEST(CoordinatorConfigTest, LoadUsesPathAsSource) {
  tended::testing::TempDir dir;
  std::string path = dir.Path("coordinator.yaml");
  {
    std::ofstream out(path);
    out << "listen: \"0.0.0.0:7443\"\nbogus: 1\n";
  }
  absl::StatusOr<CoordinatorConfig> config = LoadCoordinatorConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), StartsWith(path + ":2: bogus: "));
  EXPECT_FALSE(LoadCoordinatorConfig(dir.Path("missing.yaml")).ok());
}

TEST(CoordinatorConfigTest, AConfigurationOthersMayChangeIsRefusedWithItsPath) {
  tended::testing::TempDir dir;
  std::string path = dir.Path("coordinator.yaml");
  {
    std::ofstream out(path);
    out << "listen: \"0.0.0.0:7443\"\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0646), 0);
  absl::StatusOr<CoordinatorConfig> config = LoadCoordinatorConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_TRUE(LoadCoordinatorConfig(path).ok());
}

TEST(CoordinatorConfigDaysTest, RangesNamesAndDuplicates) {
  struct Case {
    std::string days;
    std::vector<absl::Weekday> want;
  };
  const std::vector<Case> cases = {
      {"[mon-fri]", {kMon, kTue, kWed, kThu, kFri}},
      {"[fri-mon]", {kMon, kFri, kSat, kSun}},
      {"[sun-sun]", {kSun}},
      {"[Sat - Sun]", {kSat, kSun}},
      {"[MONDAY, tuesday, Wed]", {kMon, kTue, kWed}},
      {"[wednesday-friday]", {kWed, kThu, kFri}},
      {"[mon, mon, Monday, mon-tue]", {kMon, kTue}},
      {"[daily]", {kMon, kTue, kWed, kThu, kFri, kSat, kSun}},
      {"['Every Day']", {kMon, kTue, kWed, kThu, kFri, kSat, kSun}},
      {"[sun, sat]", {kSat, kSun}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<MaintenanceWindow> window = ParseOneWindow(c.days, "02:00", "06:00");
    ASSERT_TRUE(window.ok()) << c.days << ": " << window.status();
    EXPECT_EQ(window->days, c.want) << c.days;
  }
}

TEST(CoordinatorConfigWindowTest, CrossingMidnightAndWholeDay) {
  absl::StatusOr<MaintenanceWindow> night = ParseOneWindow("[fri]", "22:00", "02:00");
  ASSERT_TRUE(night.ok()) << night.status();
  EXPECT_EQ(night->start, absl::Hours(22));
  EXPECT_EQ(night->end, absl::Hours(2));
  EXPECT_EQ(MaintenanceWindowLength(*night), absl::Hours(4));

  absl::StatusOr<MaintenanceWindow> whole = ParseOneWindow("[daily]", "00:00", "24:00");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->start, absl::ZeroDuration());
  EXPECT_EQ(whole->end, absl::ZeroDuration());
  EXPECT_EQ(MaintenanceWindowLength(*whole), absl::Hours(24));

  absl::StatusOr<MaintenanceWindow> late = ParseOneWindow("[sun]", "23:00", "24:00:00");
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->end, absl::ZeroDuration());
  EXPECT_EQ(MaintenanceWindowLength(*late), absl::Hours(1));

  absl::StatusOr<MaintenanceWindow> seconds = ParseOneWindow("[mon]", "01:30:15", "23:59:59");
  ASSERT_TRUE(seconds.ok()) << seconds.status();
  EXPECT_EQ(seconds->start, absl::Minutes(90) + absl::Seconds(15));
  EXPECT_EQ(seconds->end, absl::Hours(24) - absl::Seconds(1));
}

TEST(CoordinatorConfigWindowTest, UnquotedTimesAreAccepted) {
  absl::StatusOr<CoordinatorConfig> config =
      Parse(RebootWithWindow("days: [mon]\n        start: 02:00\n        end: 06:00\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->leases.at(LEASE_KIND_REBOOT).windows[0].start, absl::Hours(2));
}

TEST(CoordinatorConfigTest, MetricsAndNotifications) {
  absl::StatusOr<CoordinatorConfig> config = Parse(
      "metrics_listen: \"[::1]:9477\"\n"
      "notifications:\n"
      "  urls:\n"
      "    - slack://hook:T1-B2-X3@webhook\n"
      "    - generic+https://hooks.example.com/tended\n"
      "  blocked_threshold: 2h\n"
      "  timeout: 3s\n"
      "  templates:\n"
      "    disrupting: \"Draining {node}\"\n"
      "    resumed: \"\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "[::1]:9477");
  EXPECT_THAT(config->notifications.urls, ElementsAre("slack://hook:T1-B2-X3@webhook",
                                                      "generic+https://hooks.example.com/tended"));
  EXPECT_EQ(config->notifications.blocked_threshold, absl::Hours(2));
  EXPECT_EQ(config->notifications.timeout, absl::Seconds(3));
  EXPECT_EQ(config->notifications.templates.at("disrupting"), "Draining {node}");
  EXPECT_EQ(config->notifications.templates.at("resumed"), "");
  EXPECT_TRUE(ValidateCoordinatorConfig(*config).ok());

  absl::StatusOr<CoordinatorConfig> defaults = Parse("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->metrics_listen, "");
  EXPECT_TRUE(defaults->notifications.urls.empty());
  EXPECT_EQ(defaults->notifications.blocked_threshold, absl::Hours(1));
}

TEST(CoordinatorConfigTest, ShippedExampleServesMetrics) {
  absl::StatusOr<CoordinatorConfig> config =
      LoadCoordinatorConfig(TENDED_SOURCE_DIR "/packaging/examples/coordinator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "0.0.0.0:9477");
  EXPECT_TRUE(config->notifications.urls.empty());
  EXPECT_EQ(config->notifications.blocked_threshold, absl::Hours(6));
}

// The ConfigMap in packaging/kubernetes (kustomize's configMapGenerator reads this file).
TEST(CoordinatorConfigTest, KubernetesConfigMapIsAcceptedAndUsesTheServiceAccount) {
  absl::StatusOr<CoordinatorConfig> config =
      LoadCoordinatorConfig(TENDED_SOURCE_DIR "/packaging/kubernetes/coordinator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->kubernetes.enabled);
  EXPECT_TRUE(config->kubernetes.kubeconfig.empty());
  EXPECT_EQ(config->state_dir, "/var/lib/tended-coordinator");
  EXPECT_EQ(config->listen_address, "0.0.0.0:7443");
  EXPECT_EQ(config->metrics_listen, "0.0.0.0:9477");
  // mTLS from the Secret the Deployment mounts at /etc/tended/tls.
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->cert_file, "/etc/tended/tls/tls.crt");
  EXPECT_EQ(config->tls->key_file, "/etc/tended/tls/tls.key");
  EXPECT_EQ(config->tls->client_ca_file, "/etc/tended/tls/ca.crt");
}

}  // namespace
}  // namespace tended::coordinator
