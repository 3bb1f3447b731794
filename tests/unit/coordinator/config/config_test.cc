#include "coordinator/config/config.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using tended::v1::LEASE_KIND_K8S_UPGRADE;
using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_KIND_REBOOT;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Weekday kMon = absl::Weekday::monday;
constexpr absl::Weekday kTue = absl::Weekday::tuesday;
constexpr absl::Weekday kWed = absl::Weekday::wednesday;
constexpr absl::Weekday kThu = absl::Weekday::thursday;
constexpr absl::Weekday kFri = absl::Weekday::friday;
constexpr absl::Weekday kSat = absl::Weekday::saturday;
constexpr absl::Weekday kSun = absl::Weekday::sunday;

absl::StatusOr<CoordinatorConfig> Parse(const std::string& yaml) {
  return ParseCoordinatorConfig(yaml, "c.yaml");
}

// The error message, or "OK" when the document parsed.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<CoordinatorConfig> config = Parse(yaml);
  if (config.ok()) return "OK";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// A reboot lease with one window; `window_lines` are the window's keys, six spaces deep.
std::string RebootWithWindow(const std::string& window_lines) {
  return "leases:\n"
         "  reboot:\n"
         "    windows:\n"
         "      - " +
         window_lines;
}

absl::StatusOr<MaintenanceWindow> ParseOneWindow(const std::string& days, const std::string& start,
                                                 const std::string& end) {
  absl::StatusOr<CoordinatorConfig> config = Parse(RebootWithWindow(
      "days: " + days + "\n        start: \"" + start + "\"\n        end: \"" + end + "\"\n"));
  if (!config.ok()) return config.status();
  return config->leases.at(LEASE_KIND_REBOOT).windows.at(0);
}

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
  ASSERT_EQ(config->leases.count(LEASE_KIND_K8S_UPGRADE), 1u);
  EXPECT_TRUE(config->leases.at(LEASE_KIND_K8S_UPGRADE).enabled);
  EXPECT_EQ(config->leases.at(LEASE_KIND_K8S_UPGRADE).concurrency, 1);
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

TEST(CoordinatorConfigErrorTest, UnknownTopLevelKey) {
  EXPECT_THAT(ErrorOf("listen: \"0.0.0.0:7443\"\nhistory_limit: 100\nlisten_port: 7443\n"),
              StartsWith("c.yaml:3: listen_port: unknown key (allowed here: listen, "));
}

TEST(CoordinatorConfigErrorTest, UnknownNestedKeys) {
  EXPECT_THAT(ErrorOf("fleet:\n  report_deadline: 2m\n  report_every: 30s\n"),
              StartsWith("c.yaml:3: fleet.report_every: unknown key"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    concurrency: 1\n    max_unavailable: 1\n"),
              StartsWith("c.yaml:4: leases.reboot.max_unavailable: unknown key"));
  EXPECT_THAT(ErrorOf("leases:\n  service:\n    concurrency: 1\n"),
              StartsWith("c.yaml:2: leases.service: unknown key (allowed here: reboot, "
                         "os_upgrade, k8s_upgrade)"));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"06:00\"\n"
                                       "        zone: UTC\n")),
              StartsWith("c.yaml:7: leases.reboot.windows[0].zone: unknown key"));
  EXPECT_THAT(ErrorOf("alerts:\n  prometheus_url: ''\n  silence: true\n"),
              StartsWith("c.yaml:3: alerts.silence: unknown key"));
}

TEST(CoordinatorConfigErrorTest, DuplicateKey) {
  EXPECT_THAT(ErrorOf("history_limit: 100\nhistory_limit: 200\n"),
              StartsWith("c.yaml:2: history_limit: duplicate key"));
}

TEST(CoordinatorConfigErrorTest, YamlSyntaxErrorWithLine) {
  EXPECT_THAT(ErrorOf("listen: \"0.0.0.0:7443\"\nfleet:\n  report_deadline: [2m\n"),
              StartsWith("c.yaml:"));
  EXPECT_THAT(ErrorOf("a: 1\n b: 2\n"), StartsWith("c.yaml:2: not valid YAML"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot: {concurrency: 1\nlisten: x\n"),
              HasSubstr("not valid YAML"));
}

TEST(CoordinatorConfigErrorTest, WrongTypes) {
  EXPECT_THAT(ErrorOf("- listen\n"), StartsWith("c.yaml:1: expected a mapping"));
  EXPECT_THAT(ErrorOf("fleet:\n  - report_deadline: 2m\n"),
              StartsWith("c.yaml:2: fleet: expected a mapping"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot: [1]\n"),
              StartsWith("c.yaml:2: leases.reboot: expected a mapping"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    windows:\n      days: [mon]\n"),
              StartsWith("c.yaml:4: leases.reboot.windows: expected a list of windows"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    windows:\n      - mon\n"),
              StartsWith("c.yaml:4: leases.reboot.windows[0]: expected a window"));
  EXPECT_THAT(ErrorOf("alerts:\n  match_labels: [severity]\n"),
              StartsWith("c.yaml:2: alerts.match_labels: expected a mapping"));
  EXPECT_THAT(ErrorOf("alerts:\n  match_labels:\n    severity: [critical]\n"),
              StartsWith("c.yaml:3: alerts.match_labels.severity: expected a string"));
  EXPECT_THAT(ErrorOf("listen: [a, b]\n"), StartsWith("c.yaml:1: listen: expected a string"));
  EXPECT_THAT(ErrorOf("allow_kind_overlap: maybe\n"),
              StartsWith("c.yaml:1: allow_kind_overlap: expected true or false"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    concurrency: one\n"),
              StartsWith("c.yaml:3: leases.reboot.concurrency: expected a whole number"));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"06:00\"\n"
                                       "        time_zone: [UTC]\n")),
              StartsWith("c.yaml:7: leases.reboot.windows[0].time_zone: expected a string"));
}

TEST(CoordinatorConfigErrorTest, BadDuration) {
  EXPECT_THAT(ErrorOf("fleet:\n  report_deadline: 2 minutes\n"),
              StartsWith("c.yaml:2: fleet.report_deadline: not a duration: \"2 minutes\""));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    soak: 24\n"),
              StartsWith("c.yaml:3: leases.reboot.soak: not a duration"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    soak: -1h\n"),
              StartsWith("c.yaml:3: leases.reboot.soak: a duration cannot be negative"));
}

TEST(CoordinatorConfigErrorTest, BadTimeZone) {
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"06:00\"\n"
                                       "        time_zone: Europe/Atlantis\n")),
              StartsWith("c.yaml:7: leases.reboot.windows[0].time_zone: unknown time zone "
                         "\"Europe/Atlantis\""));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"06:00\"\n"
                                       "        time_zone: ''\n")),
              StartsWith("c.yaml:7: leases.reboot.windows[0].time_zone: unknown time zone"));
}

TEST(CoordinatorConfigErrorTest, BadRegex) {
  EXPECT_THAT(ErrorOf("alerts:\n  firing_only: true\n  ignore: '^(Watchdog|Info'\n"),
              StartsWith("c.yaml:3: alerts.ignore: not a regular expression RE2 accepts: "
                         "\"^(Watchdog|Info\": missing )"));
  EXPECT_THAT(ErrorOf("alerts:\n  ignore: '[z-a]'\n"),
              StartsWith("c.yaml:2: alerts.ignore: not a regular expression RE2 accepts"));
}

// What std::regex (ECMAScript) took but RE2 cannot do in linear time: a configuration
// error naming the key and line and what RE2 said, never a crash.
TEST(CoordinatorConfigErrorTest, RegexSyntaxRe2DoesNotSupport) {
  EXPECT_THAT(ErrorOf("alerts:\n  ignore: '^(Info)\\1$'\n"),
              AllOf(StartsWith("c.yaml:2: alerts.ignore: not a regular expression RE2 accepts: "
                               "\"^(Info)\\1$\": invalid escape sequence: \\1"),
                    HasSubstr("no backreferences or lookaround")));
  EXPECT_THAT(ErrorOf("alerts:\n  ignore: '^(?!Watchdog)'\n"),
              StartsWith("c.yaml:2: alerts.ignore: not a regular expression RE2 accepts: "
                         "\"^(?!Watchdog)\": invalid perl operator: (?!"));
  EXPECT_THAT(ErrorOf("alerts:\n  ignore: 'Info(?<=o)'\n"),
              StartsWith("c.yaml:2: alerts.ignore: not a regular expression RE2 accepts"));
}

TEST(CoordinatorConfigErrorTest, AlertTiming) {
  EXPECT_THAT(ErrorOf("alerts:\n  poll_interval: 1m\n  max_age: 1m\n"),
              StartsWith("c.yaml:3: alerts.max_age: (1m) must be longer than poll_interval (1m)"));
  EXPECT_THAT(ErrorOf("alerts:\n  poll_interval: 2m\n"),
              StartsWith("c.yaml:2: alerts.poll_interval: (2m) must be shorter than max_age (1m)"));
  EXPECT_THAT(ErrorOf("alerts:\n  poll_interval: 0s\n"),
              StartsWith("c.yaml:2: alerts.poll_interval: must be longer than 0"));
  EXPECT_THAT(ErrorOf("alerts:\n  timeout: 0s\n"),
              StartsWith("c.yaml:2: alerts.timeout: must be longer than 0"));
}

TEST(CoordinatorConfigErrorTest, BadDays) {
  std::string window_rest = "        start: \"02:00\"\n        end: \"06:00\"\n";
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon, funday]\n" + window_rest)),
              StartsWith("c.yaml:4: leases.reboot.windows[0].days[1]: unknown day \"funday\""));
  EXPECT_THAT(
      ErrorOf(RebootWithWindow("days:\n          - mon\n          - fri-xyz\n" + window_rest)),
      StartsWith("c.yaml:6: leases.reboot.windows[0].days[1]: unknown day"));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon-]\n" + window_rest)),
              HasSubstr("unknown day \"mon-\""));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: []\n" + window_rest)),
              StartsWith("c.yaml:4: leases.reboot.windows[0].days: the list of days is empty"));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: mon-fri\n" + window_rest)),
              StartsWith("c.yaml:4: leases.reboot.windows[0].days: expected a list of days"));
  EXPECT_THAT(ErrorOf(RebootWithWindow("start: \"02:00\"\n        end: \"06:00\"\n")),
              StartsWith("c.yaml:4: leases.reboot.windows[0]: missing required key \"days\""));
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n        start: \"02:00\"\n")),
              StartsWith("c.yaml:4: leases.reboot.windows[0]: missing required key \"end\""));
}

TEST(CoordinatorConfigErrorTest, BadTimes) {
  for (const char* bad_start : {"25:00", "2:00", "24:00", "12:60", "12:00:60", "noon", "1200"}) {
    absl::StatusOr<MaintenanceWindow> window = ParseOneWindow("[mon]", bad_start, "23:00");
    ASSERT_FALSE(window.ok()) << bad_start;
    EXPECT_THAT(std::string(window.status().message()),
                StartsWith("c.yaml:5: leases.reboot.windows[0].start: not a time of day"))
        << bad_start;
  }
  for (const char* bad_end : {"24:01", "24:00:01", "6", "-1:00"}) {
    absl::StatusOr<MaintenanceWindow> window = ParseOneWindow("[mon]", "02:00", bad_end);
    ASSERT_FALSE(window.ok()) << bad_end;
    EXPECT_THAT(std::string(window.status().message()),
                StartsWith("c.yaml:6: leases.reboot.windows[0].end: not a time of day"))
        << bad_end;
  }
}

TEST(CoordinatorConfigErrorTest, EndEqualsStart) {
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"02:00:00\"\n")),
              StartsWith("c.yaml:6: leases.reboot.windows[0].end: end equals start"));
}

TEST(CoordinatorConfigErrorTest, ConcurrencyOutOfRange) {
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    concurrency: 0\n"),
              StartsWith("c.yaml:3: leases.reboot.concurrency: must be between 1 and 1000, "
                         "got 0"));
  EXPECT_THAT(ErrorOf("leases:\n  os_upgrade:\n    concurrency: 1001\n"),
              StartsWith("c.yaml:3: leases.os_upgrade.concurrency: must be between 1 and 1000"));
}

TEST(CoordinatorConfigErrorTest, BadListenAddress) {
  for (const char* bad : {"7443", "0.0.0.0", "0.0.0.0:65536", ":7443", "::1:7443", "[::1:7443",
                          "[]:7443", "host:port", "host:-1", "ho st:7443", "0.0.0.0:7443x"}) {
    EXPECT_THAT(ErrorOf(std::string("listen: \"") + bad + "\"\n"), StartsWith("c.yaml:1: listen: "))
        << bad;
  }
  // Port 0 asks the kernel for a free port (tests, the demo).
  for (const char* good :
       {"[::1]:7443", "[::]:1", "localhost:65535", "10.0.0.1:7443", "127.0.0.1:0"}) {
    EXPECT_EQ(ErrorOf(std::string("listen: \"") + good + "\"\n"), "OK") << good;
  }
}

TEST(CoordinatorConfigErrorTest, OtherFieldChecks) {
  EXPECT_THAT(ErrorOf("state_file: state.json\n"),
              StartsWith("c.yaml:1: state_file: must be an absolute path"));
  EXPECT_THAT(ErrorOf("state_dir: state\n"),
              StartsWith("c.yaml:1: state_dir: must be an absolute path"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    begin_wait: 0s\n"),
              HasSubstr("begin_wait: must be longer than 0"));
  EXPECT_THAT(ErrorOf("fleet:\n  return_backoff: -5m\n"),
              StartsWith("c.yaml:2: fleet.return_backoff: a duration cannot be negative"));
  EXPECT_THAT(ErrorOf("fleet:\n  return_backof: 5m\n"), HasSubstr("return_backof"));
  EXPECT_THAT(ErrorOf("history_limit: 9\n"),
              StartsWith("c.yaml:1: history_limit: must be between 10 and 100000"));
  EXPECT_THAT(ErrorOf("history_limit: 100001\n"), StartsWith("c.yaml:1: history_limit: "));
  EXPECT_THAT(ErrorOf("alerts:\n  prometheus_url: prometheus:9090\n"),
              StartsWith("c.yaml:2: alerts.prometheus_url: must start with http://"));
  EXPECT_THAT(ErrorOf("alerts:\n  prometheus_url: 'http://'\n"),
              StartsWith("c.yaml:2: alerts.prometheus_url: missing host"));
  EXPECT_EQ(ErrorOf("alerts:\n  prometheus_url: ''\n"), "OK");
  EXPECT_THAT(ErrorOf("alerts:\n  match_labels:\n    1bad: x\n"),
              StartsWith("c.yaml:3: alerts.match_labels.1bad: \"1bad\" is not a Prometheus "
                         "label name"));
  EXPECT_THAT(ErrorOf("alerts:\n  timeout: 0s\n"),
              StartsWith("c.yaml:2: alerts.timeout: must be longer than 0"));
}

TEST(CoordinatorConfigCrossFieldTest, WindowShorterThanExpectedDuration) {
  EXPECT_THAT(ErrorOf("leases:\n"
                      "  reboot:\n"
                      "    expected_duration: 30m\n"
                      "    windows:\n"
                      "      - days: [mon]\n"
                      "        start: \"02:00\"\n"
                      "        end: \"06:00\"\n"
                      "      - days: [tue-wed]\n"
                      "        start: \"23:50\"\n"
                      "        end: \"00:10\"\n"),
              StartsWith("c.yaml:8: leases.reboot.windows[1]: window Tue,Wed 23:50-00:10 UTC is "
                         "shorter than expected_duration (30m)"));
  // The default expected_duration (30m) applies when the key is absent.
  EXPECT_THAT(ErrorOf(RebootWithWindow("days: [mon]\n"
                                       "        start: \"02:00\"\n"
                                       "        end: \"02:20\"\n")),
              HasSubstr("is shorter than expected_duration (30m)"));
}

TEST(CoordinatorConfigCrossFieldTest, Deadlines) {
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    renew_deadline: 0s\n"),
              StartsWith("c.yaml:3: leases.reboot.renew_deadline: must be longer than 0"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    expected_duration: 0\n"),
              StartsWith("c.yaml:3: leases.reboot.expected_duration: must be longer than 0"));
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    expected_duration: 1h\n    return_deadline: 30m\n"),
              StartsWith("c.yaml:4: leases.reboot.return_deadline: (30m) is shorter than "
                         "expected_duration (1h)"));
  // return_deadline left at its default (30m) is named with the policy's line.
  EXPECT_THAT(ErrorOf("leases:\n  reboot:\n    expected_duration: 1h\n"),
              StartsWith("c.yaml:3: leases.reboot: return_deadline (30m) is shorter"));
  EXPECT_THAT(ErrorOf("fleet:\n  report_deadline: 30s\n  report_interval: 30s\n"),
              StartsWith("c.yaml:3: fleet.report_interval: (30s) must be shorter than "
                         "report_deadline (30s)"));
  EXPECT_THAT(ErrorOf("fleet:\n  report_deadline: 10s\n"),
              StartsWith("c.yaml:2: fleet: report_interval (30s) must be shorter"));
  EXPECT_THAT(ErrorOf("fleet:\n  report_interval: 0s\n"),
              StartsWith("c.yaml:2: fleet.report_interval: must be longer than 0"));
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

CoordinatorConfig ValidConfigInCode() {
  CoordinatorConfig config;
  LeasePolicy policy;
  MaintenanceWindow window;
  window.days = {kMon};
  window.start = absl::Hours(2);
  window.end = absl::Hours(6);
  window.time_zone_name = "UTC";
  policy.windows.push_back(window);
  config.leases[LEASE_KIND_REBOOT] = policy;
  return config;
}

TEST(ValidateCoordinatorConfigTest, AcceptsValidConfigInCode) {
  EXPECT_TRUE(ValidateCoordinatorConfig(CoordinatorConfig()).ok());
  EXPECT_TRUE(ValidateCoordinatorConfig(ValidConfigInCode()).ok());
  CoordinatorConfig whole_day = ValidConfigInCode();
  whole_day.leases[LEASE_KIND_REBOOT].windows[0].end = absl::Hours(2);  // == start: 24 h.
  EXPECT_TRUE(ValidateCoordinatorConfig(whole_day).ok());
}

TEST(ValidateCoordinatorConfigTest, NamesTheBrokenRule) {
  auto message = [](const CoordinatorConfig& config) {
    return std::string(ValidateCoordinatorConfig(config).message());
  };
  CoordinatorConfig config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].renew_deadline = absl::ZeroDuration();
  EXPECT_EQ(message(config), "leases.reboot.renew_deadline: must be longer than 0");

  config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].expected_duration = absl::Hours(5);
  config.leases[LEASE_KIND_REBOOT].return_deadline = absl::Hours(6);
  EXPECT_EQ(message(config),
            "leases.reboot.windows[0]: window Mon 02:00-06:00 UTC is shorter than "
            "expected_duration (5h)");

  config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].concurrency = 0;
  EXPECT_THAT(message(config), StartsWith("leases.reboot.concurrency: must be between 1"));

  config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].windows[0].days.clear();
  EXPECT_THAT(message(config), StartsWith("leases.reboot.windows[0]: the list of days"));

  config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].windows[0].end = absl::Hours(24);
  EXPECT_THAT(message(config), StartsWith("leases.reboot.windows[0]: start and end"));

  config = ValidConfigInCode();
  config.fleet.report_interval = absl::Minutes(5);
  EXPECT_THAT(message(config), StartsWith("fleet.report_interval: (5m) must be shorter"));

  config = ValidConfigInCode();
  config.alerts.ignore_regex_text = "^Watchdog$";
  EXPECT_THAT(message(config), StartsWith("alerts.ignore: the expression was not compiled"));
  config.alerts.ignore_regex = *CompileIgnoreRegex("^Other$");
  EXPECT_THAT(message(config), StartsWith("alerts.ignore: the expression was not compiled"));
  config.alerts.ignore_regex = *CompileIgnoreRegex("^Watchdog$");
  EXPECT_EQ(message(config), "");
  config.alerts.ignore_regex_text = "(";
  EXPECT_THAT(message(config), StartsWith("alerts.ignore: not a regular expression RE2 accepts"));

  config = ValidConfigInCode();
  config.alerts.max_age = config.alerts.poll_interval;
  EXPECT_THAT(message(config), StartsWith("alerts.max_age: (15s) must be longer than"));

  config = ValidConfigInCode();
  config.leases[LEASE_KIND_REBOOT].begin_wait = absl::ZeroDuration();
  EXPECT_EQ(message(config), "leases.reboot.begin_wait: must be longer than 0");

  config = ValidConfigInCode();
  config.state_dir = "relative/state";
  EXPECT_EQ(message(config), "state_dir: must be an absolute path");

  config = ValidConfigInCode();
  config.leases[tended::v1::LEASE_KIND_UNSPECIFIED] = LeasePolicy();
  EXPECT_THAT(message(config), StartsWith("leases: unknown lease kind"));

  config = ValidConfigInCode();
  config.listen_address = "nowhere";
  EXPECT_THAT(message(config), StartsWith("listen: "));
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

TEST(CoordinatorConfigErrorTest, BadMetricsAndNotifications) {
  EXPECT_THAT(ErrorOf("metrics_listen: 9477\n"), StartsWith("c.yaml:1: metrics_listen: "));
  EXPECT_THAT(ErrorOf("notifications:\n  urls:\n    - slack://T1/B2/X3\n"
                      "    - teams://group@tenant/a/b\n"),
              AllOf(StartsWith("c.yaml:4: notifications.urls"),
                    HasSubstr("unsupported notification service \"teams\"")));
  EXPECT_THAT(ErrorOf("notifications:\n  urls: [\"slack://xoxb:1-2@C1\"]\n"),
              AllOf(StartsWith("c.yaml:2: notifications.urls"), HasSubstr("bot tokens")));
  EXPECT_THAT(ErrorOf("notifications:\n  templates:\n    drained: x\n"),
              AllOf(StartsWith("c.yaml:3: notifications.templates.drained: "),
                    HasSubstr("unknown transition")));
  EXPECT_THAT(ErrorOf("notifications:\n  templates:\n    verified: \"{host} ok\"\n"),
              AllOf(StartsWith("c.yaml:3: notifications.templates.verified: "),
                    HasSubstr("unknown placeholder {host}")));
  EXPECT_THAT(ErrorOf("notifications:\n  timeout: 0s\n"),
              StartsWith("c.yaml:2: notifications.timeout: "));
  EXPECT_THAT(ErrorOf("notifications:\n  webhook: x\n"),
              StartsWith("c.yaml:2: notifications.webhook: unknown key"));
  EXPECT_THAT(ErrorOf("notifications:\n  slack_api_base: hooks.local\n"),
              StartsWith("c.yaml:2: notifications.slack_api_base: "));
}

TEST(CoordinatorConfigTest, ShippedExampleServesMetrics) {
  absl::StatusOr<CoordinatorConfig> config =
      LoadCoordinatorConfig(TENDED_SOURCE_DIR "/packaging/examples/coordinator.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "0.0.0.0:9477");
  EXPECT_TRUE(config->notifications.urls.empty());
  EXPECT_EQ(config->notifications.blocked_threshold, absl::Hours(6));
}

}  // namespace
}  // namespace tended::coordinator
