// The coordinator's configuration as refused, and how: unknown and duplicate keys, YAML
// and type errors, bad values and cross-field rules, each named with its file, line and key;
// and ValidateCoordinatorConfig on configurations built in code.
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/config/config_test_util.h"

namespace tended::coordinator {
namespace {

using config_test::ErrorOf;
using config_test::kMon;
using config_test::ParseOneWindow;
using config_test::RebootWithWindow;
using tended::v1::LEASE_KIND_REBOOT;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

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

}  // namespace
}  // namespace tended::coordinator
