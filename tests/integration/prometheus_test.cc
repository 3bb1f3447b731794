// PrometheusAlertSource, the AlertPoller and the alerts gate against a real Prometheus
// (Debian's /usr/bin/prometheus) started on a free 127.0.0.1 port with rules that fire at
// once, stay pending, or fire but are ignored by the usual regex.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "coordinator/alerts/alert_poller.h"
#include "coordinator/alerts/prometheus_alert_source.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/core_gates.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kIgnoreRegex[] = "^(Watchdog|RebootRequired|KuredNodeWasNotDrained|InfoInhibitor)$";
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kRuleTimeout = absl::Seconds(30);

constexpr char kFiringRule[] = R"yaml(
      - alert: TendedTestFiring
        expr: vector(1)
        for: 0s
        labels:
          severity: critical
)yaml";
constexpr char kWatchdogRule[] = R"yaml(
      - alert: Watchdog
        expr: vector(1)
        labels:
          severity: none
)yaml";
constexpr char kPendingRule[] = R"yaml(
      - alert: TendedTestPending
        expr: vector(1)
        for: 1h
        labels:
          severity: warning
)yaml";

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out.good();
}

// One Prometheus process in a temp dir, stopped and reaped when this goes away.
class RealPrometheus {
 public:
  explicit RealPrometheus(const std::string& rules_body) : rules_path_(dir_.Path("rules.yml")) {
    start_status_ = Start(rules_body);
  }

  const absl::Status& start_status() const { return start_status_; }
  std::string base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  testing::ChildProcess* process() { return process_.get(); }

  // Replaces the rules and asks Prometheus to reload them.
  absl::Status SetRules(const std::string& rules_body) {
    if (!WriteFile(rules_path_, Rules(rules_body))) {
      return absl::InternalError(absl::StrCat("cannot write ", rules_path_));
    }
    absl::StatusOr<testing::HttpProbeResponse> response =
        testing::HttpRequestLoopback(port_, "POST", "/-/reload", absl::Seconds(10));
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::InternalError(
          absl::StrCat("reload answered HTTP ", response->status, ": ", response->body));
    }
    return absl::OkStatus();
  }

  void Stop() {
    if (process_ != nullptr) process_->Stop();
  }

 private:
  static std::string Rules(const std::string& rules_body) {
    return absl::StrCat("groups:\n  - name: tended-test\n    interval: 1s\n    rules:",
                        rules_body.empty() ? " []\n" : rules_body);
  }

  absl::Status Start(const std::string& rules_body) {
    if (!WriteFile(rules_path_, Rules(rules_body)) ||
        !WriteFile(dir_.Path("prometheus.yml"),
                   absl::StrCat("global:\n  scrape_interval: 1m\n  evaluation_interval: 1s\n"
                                "rule_files:\n  - ",
                                rules_path_, "\n"))) {
      return absl::InternalError("cannot write the Prometheus configuration");
    }
    absl::Status last;
    // The chosen port may be taken by someone else before Prometheus binds it: retry.
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
      if (!port.ok()) return port.status();
      port_ = *port;
      absl::StatusOr<std::unique_ptr<testing::ChildProcess>> process = testing::ChildProcess::Start(
          {kPrometheus, absl::StrCat("--config.file=", dir_.Path("prometheus.yml")),
           absl::StrCat("--storage.tsdb.path=", dir_.Path("data")),
           absl::StrCat("--web.listen-address=127.0.0.1:", port_),
           absl::StrCat("--web.console.templates=", dir_.Path("consoles")),
           absl::StrCat("--web.console.libraries=", dir_.Path("console_libraries")),
           "--web.enable-lifecycle"},
          dir_.Path(absl::StrCat("prometheus-", attempt, ".log")));
      if (!process.ok()) return process.status();
      process_ = *std::move(process);
      last = testing::WaitForHttpReady(port_, "/-/ready", kStartTimeout, process_.get());
      if (last.ok()) return last;
      process_->Stop();
      if (!absl::IsFailedPrecondition(last)) break;  // Timed out rather than exited.
    }
    return last;
  }

  testing::TempDir dir_;
  std::string rules_path_;
  int port_ = 0;
  std::unique_ptr<testing::ChildProcess> process_;
  absl::Status start_status_;
};

const Alert* FindAlert(const AlertSnapshot& snapshot, const std::string& name) {
  for (const Alert& alert : snapshot.alerts) {
    if (alert.name == name) return &alert;
  }
  return nullptr;
}

std::string Describe(const AlertSnapshot& snapshot) {
  if (!snapshot.status.ok()) return snapshot.status.ToString();
  std::vector<std::string> parts;
  for (const Alert& alert : snapshot.alerts) parts.push_back(alert.name + "=" + alert.state);
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

// Fetches until the alerts carry exactly `expected` (name -> state); returns the snapshot.
absl::StatusOr<AlertSnapshot> WaitForAlerts(PrometheusAlertSource& source,
                                            const std::map<std::string, std::string>& expected,
                                            testing::ChildProcess* process) {
  AlertSnapshot snapshot;
  absl::Status waited = testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        snapshot = source.Fetch();
        if (!snapshot.status.ok()) return absl::UnavailableError(snapshot.status.ToString());
        std::map<std::string, std::string> seen;
        for (const Alert& alert : snapshot.alerts) seen[alert.name] = alert.state;
        if (seen != expected) return absl::UnavailableError(Describe(snapshot));
        return true;
      },
      kRuleTimeout, "the expected alerts", process, absl::Milliseconds(200));
  if (!waited.ok()) return waited;
  return snapshot;
}

CoordinatorConfig GateConfig(const std::string& url, bool firing_only) {
  CoordinatorConfig config;
  config.alerts.prometheus_url = url;
  config.alerts.ignore_regex_text = kIgnoreRegex;
  config.alerts.ignore_regex = *CompileIgnoreRegex(kIgnoreRegex);
  config.alerts.firing_only = firing_only;
  return config;
}

// The gate as it judges `snapshot` the moment it was read.
GateOutcome Gate(const AlertSnapshot& snapshot, const CoordinatorConfig& config) {
  GateFacts facts;
  facts.alerts = snapshot;
  return AlertsGate(facts, config, snapshot.fetched_at);
}

class PrometheusIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPrometheus, X_OK) != 0) {
      GTEST_SKIP() << kPrometheus << " is not installed (Debian package prometheus)";
    }
  }

  testing::FakeClock clock_;
};

TEST_F(PrometheusIntegrationTest, AlertSourceAndGateFollowTheRules) {
  RealPrometheus prometheus(absl::StrCat(kFiringRule, kWatchdogRule, kPendingRule));
  ASSERT_TRUE(prometheus.start_status().ok()) << prometheus.start_status();
  PrometheusAlertSource source(prometheus.base_url(), absl::Seconds(5), clock_);

  absl::StatusOr<AlertSnapshot> snapshot = WaitForAlerts(
      source,
      {{"TendedTestFiring", "firing"}, {"Watchdog", "firing"}, {"TendedTestPending", "pending"}},
      prometheus.process());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->fetched_at, clock_.Now());
  const Alert* firing = FindAlert(*snapshot, "TendedTestFiring");
  ASSERT_NE(firing, nullptr);
  EXPECT_EQ(firing->labels.at("alertname"), "TendedTestFiring");
  EXPECT_EQ(firing->labels.at("severity"), "critical");
  const Alert* pending = FindAlert(*snapshot, "TendedTestPending");
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(pending->labels.at("severity"), "warning");

  // A firing alert outside the ignore regex blocks; the ignored Watchdog is not named.
  GateOutcome blocked = Gate(*snapshot, GateConfig(prometheus.base_url(), true));
  EXPECT_FALSE(blocked.pass) << blocked.reason;
  EXPECT_THAT(blocked.reason, HasSubstr("TendedTestFiring"));
  EXPECT_THAT(blocked.reason, Not(HasSubstr("Watchdog")));
  EXPECT_THAT(blocked.reason, Not(HasSubstr("TendedTestPending")));

  // Only Watchdog fires now, and the pending alert stays pending.
  ASSERT_TRUE(prometheus.SetRules(absl::StrCat(kWatchdogRule, kPendingRule)).ok());
  snapshot = WaitForAlerts(source, {{"Watchdog", "firing"}, {"TendedTestPending", "pending"}},
                           prometheus.process());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();

  GateOutcome firing_only = Gate(*snapshot, GateConfig(prometheus.base_url(), true));
  EXPECT_TRUE(firing_only.pass) << firing_only.reason;

  GateOutcome pending_too = Gate(*snapshot, GateConfig(prometheus.base_url(), false));
  EXPECT_FALSE(pending_too.pass) << pending_too.reason;
  EXPECT_THAT(pending_too.reason, HasSubstr("TendedTestPending"));
  EXPECT_THAT(pending_too.reason, Not(HasSubstr("Watchdog")));

  // No rules at all: an empty, successful answer.
  ASSERT_TRUE(prometheus.SetRules("").ok());
  snapshot = WaitForAlerts(source, {}, prometheus.process());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  GateOutcome quiet = Gate(*snapshot, GateConfig(prometheus.base_url(), false));
  EXPECT_TRUE(quiet.pass) << quiet.reason;
}

TEST_F(PrometheusIntegrationTest, StoppedPrometheusFailsTheFetchAndBlocksTheGate) {
  RealPrometheus prometheus(kWatchdogRule);
  ASSERT_TRUE(prometheus.start_status().ok()) << prometheus.start_status();
  PrometheusAlertSource source(prometheus.base_url(), absl::Seconds(5), clock_);
  absl::StatusOr<AlertSnapshot> snapshot =
      WaitForAlerts(source, {{"Watchdog", "firing"}}, prometheus.process());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  GateOutcome running = Gate(*snapshot, GateConfig(prometheus.base_url(), true));
  EXPECT_TRUE(running.pass) << running.reason;

  prometheus.Stop();
  AlertSnapshot stopped = source.Fetch();
  EXPECT_EQ(stopped.status.code(), absl::StatusCode::kUnavailable) << stopped.status;
  EXPECT_TRUE(stopped.alerts.empty());
  GateOutcome gate = Gate(stopped, GateConfig(prometheus.base_url(), true));
  EXPECT_FALSE(gate.pass) << gate.reason;
}

// What the coordinator runs: the AlertPoller asks Prometheus in the background and the
// gate judges its last answer (Current) without waiting for Prometheus.
TEST_F(PrometheusIntegrationTest, PollerFeedsTheGateItsLastAnswer) {
  RealPrometheus prometheus(absl::StrCat(kFiringRule, kWatchdogRule));
  ASSERT_TRUE(prometheus.start_status().ok()) << prometheus.start_status();
  const CoordinatorConfig config = GateConfig(prometheus.base_url(), true);
  AlertPoller poller(
      std::make_unique<PrometheusAlertSource>(prometheus.base_url(), absl::Seconds(5), clock_),
      clock_, absl::Milliseconds(100));
  EXPECT_FALSE(poller.Current().has_value());
  poller.Start();

  // Polls Current() until its alerts are exactly `expected`.
  auto wait_current = [&](const std::map<std::string, std::string>& expected) {
    std::optional<AlertSnapshot> current;
    absl::Status waited = testing::PollUntil(
        [&]() -> absl::StatusOr<bool> {
          current = poller.Current();
          if (!current.has_value()) return absl::UnavailableError("no answer yet");
          if (!current->status.ok()) return absl::UnavailableError(current->status.ToString());
          std::map<std::string, std::string> seen;
          for (const Alert& alert : current->alerts) seen[alert.name] = alert.state;
          if (seen != expected) return absl::UnavailableError(Describe(*current));
          return true;
        },
        kRuleTimeout, "the poller's answer", prometheus.process(), absl::Milliseconds(100));
    EXPECT_TRUE(waited.ok()) << waited;
    return current;
  };

  std::optional<AlertSnapshot> current =
      wait_current({{"TendedTestFiring", "firing"}, {"Watchdog", "firing"}});
  ASSERT_TRUE(current.has_value());
  GateOutcome blocked = Gate(*current, config);
  EXPECT_FALSE(blocked.pass) << blocked.reason;
  EXPECT_THAT(blocked.reason, HasSubstr("TendedTestFiring"));

  ASSERT_TRUE(prometheus.SetRules(kWatchdogRule).ok());
  current = wait_current({{"Watchdog", "firing"}});
  ASSERT_TRUE(current.has_value());
  GateOutcome quiet = Gate(*current, config);
  EXPECT_TRUE(quiet.pass) << quiet.reason;

  // The same answer, judged once it is older than alerts.max_age, blocks.
  GateFacts facts;
  facts.alerts = *current;
  GateOutcome stale =
      AlertsGate(facts, config, current->fetched_at + config.alerts.max_age + absl::Seconds(1));
  EXPECT_FALSE(stale.pass) << stale.reason;

  // Prometheus goes away: the next answer is a failure, and the gate blocks on it.
  prometheus.Stop();
  absl::Status failed = testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        current = poller.Current();
        if (current.has_value() && !current->status.ok()) return true;
        return absl::UnavailableError("still the last good answer");
      },
      kRuleTimeout, "a failed answer", nullptr, absl::Milliseconds(100));
  ASSERT_TRUE(failed.ok()) << failed;
  GateOutcome down = Gate(*current, config);
  EXPECT_FALSE(down.pass) << down.reason;

  const absl::Time stop_started = absl::Now();
  poller.Stop();
  EXPECT_LT(absl::Now() - stop_started, absl::Seconds(5));
}

// The helpers above, on ordinary programs.
TEST(TestProcessHelpersTest, MissingProgramIsReportedAtStart) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> process =
      testing::ChildProcess::Start({dir.Path("no-such-program")}, dir.Path("log"));
  EXPECT_EQ(process.status().code(), absl::StatusCode::kNotFound) << process.status();
}

TEST(TestProcessHelpersTest, StopTerminatesAndReaps) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> process =
      testing::ChildProcess::Start({"/bin/sleep", "600"}, dir.Path("log"));
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_TRUE((*process)->Running());
  (*process)->Stop();
  EXPECT_FALSE((*process)->Running());
  EXPECT_EQ((*process)->DescribeExit(), "killed by signal 15");
  EXPECT_NE(::kill((*process)->pid(), 0), 0);  // Reaped: the pid is gone.
}

TEST(TestProcessHelpersTest, ExitAndOutputAreVisible) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> process = testing::ChildProcess::Start(
      {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, dir.Path("log"));
  ASSERT_TRUE(process.ok()) << process.status();
  absl::Status waited =
      testing::PollUntil([&]() -> absl::StatusOr<bool> { return !(*process)->Running(); },
                         absl::Seconds(10), "sh to exit");
  ASSERT_TRUE(waited.ok()) << waited;
  EXPECT_EQ((*process)->DescribeExit(), "exited with 3");
  EXPECT_THAT((*process)->LogTail(), HasSubstr("to-stdout"));
  EXPECT_THAT((*process)->LogTail(), HasSubstr("to-stderr"));
}

TEST(TestProcessHelpersTest, WaitForHttpReadyGivesUpWhenTheServerExits) {
  testing::TempDir dir;
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> process =
      testing::ChildProcess::Start({"/bin/sh", "-c", "echo cannot-bind; exit 1"}, dir.Path("log"));
  ASSERT_TRUE(process.ok()) << process.status();
  absl::Status ready =
      testing::WaitForHttpReady(*port, "/-/ready", absl::Seconds(30), process->get());
  EXPECT_EQ(ready.code(), absl::StatusCode::kFailedPrecondition) << ready;
  EXPECT_THAT(std::string(ready.message()), HasSubstr("cannot-bind"));
}

TEST(TestProcessHelpersTest, WaitForHttpReadyIsBounded) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::Status ready = testing::WaitForHttpReady(*port, "/", absl::Milliseconds(300));
  EXPECT_EQ(ready.code(), absl::StatusCode::kDeadlineExceeded) << ready;
}

}  // namespace
}  // namespace tended::coordinator
