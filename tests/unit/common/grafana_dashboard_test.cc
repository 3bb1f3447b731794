// The shipped Grafana dashboard (packaging/grafana/tended-dashboard.json): valid JSON in
// Grafana's shape, every query parses (promtool), and every metric its queries use is
// documented in docs/metrics.md and exported by one of the programs' metrics exporters.
// Then the real programs: a
// tended-coordinator and a tended-agent (on a throwaway root, planning with apt, rebooting
// simulated) run on loopback, and every metric the dashboard and the alert rules use is in
// their /metrics, unless it is listed as appearing only after an event this run does not
// cause; promtool checks both scrapes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/node_root.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

constexpr char kDashboard[] = TENDED_SOURCE_DIR "/packaging/grafana/tended-dashboard.json";
constexpr char kMetricsDoc[] = TENDED_SOURCE_DIR "/docs/metrics.md";
constexpr char kRules[] = TENDED_SOURCE_DIR "/packaging/prometheus/tended-alerts.yaml";
constexpr char kCoordinator[] = TENDED_BINARY_DIR "/coordinator/tended-coordinator";
constexpr char kAgent[] = TENDED_BINARY_DIR "/agent/tended-agent";
const char* const kExporters[] = {
    TENDED_SOURCE_DIR "/coordinator/observability/metrics_exporter.cc",
    TENDED_SOURCE_DIR "/coordinator/notify/notifier.cc",
    TENDED_SOURCE_DIR "/agent/metrics_exporter.cc",
};

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  return contents.ok() ? *contents : "";
}

// Metric names in a PromQL expression: identifiers starting with tended_.
std::set<std::string> MetricNames(const std::string& expr) {
  static const std::regex kName("tended_[a-z0-9_]+");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName);
       it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

// The metrics documented in docs/metrics.md: the first cell of table rows, "| `name` |".
std::set<std::string> DocumentedMetrics(const std::string& markdown) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (!absl::StartsWith(line, "| `tended_")) continue;
    line.remove_prefix(3);
    names.insert(std::string(line.substr(0, line.find('`'))));
  }
  return names;
}

struct Query {
  std::string panel;
  std::string expr;
};

std::vector<Query> Queries(const nlohmann::json& dashboard) {
  std::vector<Query> queries;
  for (const auto& panel : dashboard.at("panels")) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel.at("targets")) {
      queries.push_back({panel.value("title", ""), target.value("expr", "")});
    }
  }
  return queries;
}

class GrafanaDashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dashboard_ = nlohmann::json::parse(Read(kDashboard), nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(dashboard_.is_discarded()) << kDashboard << " is not valid JSON";
  }
  nlohmann::json dashboard_;
};

TEST_F(GrafanaDashboardTest, HasGrafanasShape) {
  EXPECT_EQ(dashboard_.value("uid", ""), "tended-fleet");
  EXPECT_FALSE(dashboard_.value("title", "").empty());
  ASSERT_TRUE(dashboard_.contains("panels"));
  std::set<int> ids;
  int queried = 0;
  for (const auto& panel : dashboard_.at("panels")) {
    std::string title = panel.value("title", "");
    EXPECT_FALSE(title.empty());
    EXPECT_TRUE(ids.insert(panel.value("id", -1)).second) << "duplicate panel id: " << title;
    const auto& grid = panel.at("gridPos");
    EXPECT_LE(grid.value("x", 0) + grid.value("w", 0), 24) << title;
    EXPECT_GT(grid.value("h", 0), 0) << title;
    if (panel.value("type", "") == "row") continue;
    ASSERT_TRUE(panel.contains("targets")) << title;
    EXPECT_FALSE(panel.at("targets").empty()) << title;
    std::set<std::string> ref_ids;
    for (const auto& target : panel.at("targets")) {
      EXPECT_FALSE(target.value("expr", "").empty()) << title;
      EXPECT_TRUE(ref_ids.insert(target.value("refId", "")).second) << title;
    }
    ++queried;
  }
  EXPECT_GE(queried, 20);
}

TEST_F(GrafanaDashboardTest, CoversFleetLeasesGatesRolloutsAndUpgrades) {
  std::set<std::string> used;
  for (const Query& query : Queries(dashboard_)) {
    for (const std::string& name : MetricNames(query.expr)) used.insert(name);
  }
  for (const char* needed :
       {"tended_node_reporting", "tended_halted", "tended_lease_held", "tended_gate_passing",
        "tended_disruptions_total", "tended_k8s_upgrade_in_flight", "tended_events_total"}) {
    EXPECT_EQ(used.count(needed), 1u) << needed;
  }
}

TEST_F(GrafanaDashboardTest, EveryMetricIsDocumentedAndExported) {
  std::set<std::string> documented = DocumentedMetrics(Read(kMetricsDoc));
  ASSERT_GE(documented.size(), 25u) << "docs/metrics.md tables not found";
  std::string exporters;
  for (const char* path : kExporters) exporters += Read(path);
  int checked = 0;
  for (const Query& query : Queries(dashboard_)) {
    for (const std::string& name : MetricNames(query.expr)) {
      ++checked;
      EXPECT_EQ(documented.count(name), 1u)
          << query.panel << ": " << name << " is not in docs/metrics.md";
      EXPECT_NE(exporters.find(absl::StrCat("\"", name, "\"")), std::string::npos)
          << query.panel << ": " << name << " is not exported by any metrics exporter";
    }
  }
  EXPECT_GT(checked, 0);
}

// A rule file with one recording rule per query, the dashboard's variables filled in, for
// promtool to parse.
std::string QueriesAsRules(const std::vector<Query>& queries) {
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  int n = 0;
  for (const Query& query : queries) {
    std::string expr =
        std::regex_replace(query.expr, std::regex("\\$coordinator_job"), "tended-coordinator");
    expr = std::regex_replace(expr, std::regex("\\$agent_job"), "tended-agent");
    absl::StrAppend(&rules, "      - record: dashboard_query_", ++n,
                    "\n        expr: ", nlohmann::json(expr).dump(), "\n");
  }
  return rules;
}

TEST_F(GrafanaDashboardTest, EveryQueryParses) {
  if (testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  testing::TempDir dir;
  const std::vector<Query> queries = Queries(dashboard_);
  ASSERT_TRUE(WriteFileAtomically(dir.Path("queries.yaml"), QueriesAsRules(queries)).ok());
  auto checked = testing::RunPromtool({"check", "rules", dir.Path("queries.yaml")}, dir.path());
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_TRUE(checked->success) << checked->output;
  EXPECT_THAT(checked->output, ::testing::HasSubstr(absl::StrCat(queries.size(), " rules found")));

  // So it can fail: PromQL's precedence makes `x == 1 * on (i) y` a parse error.
  ASSERT_TRUE(WriteFileAtomically(dir.Path("bad.yaml"),
                                  QueriesAsRules({{"bad", "a == 1 * on (instance) b"}}))
                  .ok());
  auto bad = testing::RunPromtool({"check", "rules", dir.Path("bad.yaml")}, dir.path());
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_FALSE(bad->success) << bad->output;
}

TEST(GrafanaDashboardHelpersTest, FindsNamesAndDocumentedRows) {
  EXPECT_EQ(MetricNames("sum by (kind) (tended_lease_held{job=\"x\"}) / tended_halted"),
            (std::set<std::string>{"tended_lease_held", "tended_halted"}));
  EXPECT_EQ(DocumentedMetrics("| `tended_a_total` | counter |\n| `other` |\ntext `tended_b`\n"),
            std::set<std::string>{"tended_a_total"});
}

// Metric names the alert rules use: those in lines that are not comments.
std::set<std::string> RuleMetricNames(const std::string& rules) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(rules, '\n')) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#")) continue;
    for (const std::string& name : MetricNames(std::string(line))) names.insert(name);
  }
  return names;
}

// Metric names with at least one sample in a text exposition.
std::set<std::string> ScrapedNames(const std::string& exposition) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(exposition, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    names.insert(std::string(line.substr(0, line.find_first_of("{ "))));
  }
  return names;
}

// Used by the dashboard or the rules, but exported only once something happened that the
// run below does not cause. Each entry says what.
const std::map<std::string, std::string>& OnlyAfterAnEvent() {
  static const auto* const kNames = new std::map<std::string, std::string>{
      {"tended_k8s_upgrade_available",
       "one series per upgrade a control plane's Kubernetes version check found"},
      {"tended_k8s_version_check_last_run_timestamp_seconds",
       "once a control plane's agent (k8s.enabled) reported a successful version check"},
      {"tended_k8s_upgrade_last_progress_timestamp_seconds", "once a Kubernetes rollout started"},
      {"tended_agent_os_upgrade_last_result", "once the node ran its first OS upgrade step"},
      // This scrape's coordinator is --insecure; MtlsProgramsTest scrapes both over mTLS.
      {"tended_crl_expired", "only with tls.crl_directory"},
      {"tended_crl_files_rejected", "only with tls.crl_directory"},
  };
  return *kNames;
}

std::string Scrape(int port) {
  auto response = testing::HttpRequestLoopback(port, "GET", "/metrics", absl::Seconds(30));
  return response.ok() && response->status == 200 ? response->body : "";
}

absl::Status MakeDpkgRoot(const std::string& root) {
  for (const char* dir :
       {"etc/apt/apt.conf.d", "etc/apt/sources.list.d", "etc/apt/preferences.d",
        "var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers",
        "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"}) {
    if (absl::Status made = MakeDirectories(absl::StrCat(root, "/", dir)); !made.ok()) return made;
  }
  for (const char* file : {"var/lib/dpkg/status", "var/lib/dpkg/available"}) {
    if (absl::Status written = WriteFileAtomically(absl::StrCat(root, "/", file), "");
        !written.ok()) {
      return written;
    }
  }
  return WriteFileAtomically(absl::StrCat(root, "/etc/os-release"),
                             "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
}

TEST(LiveScrapeTest, EveryMetricTheDashboardAndRulesUseIsInARealScrape) {
  nlohmann::json dashboard =
      nlohmann::json::parse(Read(kDashboard), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(dashboard.is_discarded());
  std::set<std::string> used = RuleMetricNames(Read(kRules));
  ASSERT_GE(used.size(), 10u) << "no metric names found in " << kRules;
  for (const Query& query : Queries(dashboard)) {
    for (const std::string& name : MetricNames(query.expr)) used.insert(name);
  }
  for (const auto& [name, why] : OnlyAfterAnEvent()) {
    EXPECT_EQ(used.count(name), 1u) << name << " is listed as event-only but nothing uses it";
  }

  testing::TempDir dir;
  auto coordinator_metrics = testing::PickFreeLoopbackPort();
  auto agent_metrics = testing::PickFreeLoopbackPort();
  auto closed = testing::PickFreeLoopbackPort();  // A webhook nobody answers.
  ASSERT_TRUE(coordinator_metrics.ok() && agent_metrics.ok() && closed.ok());
  ASSERT_NE(*coordinator_metrics, *agent_metrics);
  const std::string coordinator_config = dir.Path("coordinator.yaml");
  ASSERT_TRUE(
      WriteFileAtomically(coordinator_config,
                          absl::StrCat("listen: 127.0.0.1:0\nstate_dir: ", dir.Path("state"),
                                       "\nmetrics_listen: 127.0.0.1:", *coordinator_metrics,
                                       "\nfleet:\n  report_deadline: 10s\n  report_interval: 1s\n"
                                       "leases:\n  reboot:\n    concurrency: 1\n    soak: 1s\n"
                                       "    renew_deadline: 30s\n    return_deadline: 2h\n"
                                       "  os_upgrade: {}\n"
                                       "notifications:\n  urls: [\"generic+http://127.0.0.1:",
                                       *closed, "/hook\"]\n"))
          .ok());
  auto coordinator = testing::CoordinatorProcess::Start(
      kCoordinator, coordinator_config, dir.Path("coordinator.log"), {}, absl::Seconds(60));
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();

  // The node needs a reboot, which it waits an hour for once its lease is DISRUPTING: the
  // lease's metrics stay. It plans with apt on an empty dpkg root (no upgrades).
  const std::string root = dir.Path("node-a");
  ASSERT_TRUE(testing::PrepareNodeRoot(root, "5d1c7f0e-2b3a-4c5d-8e9f-0a1b2c3d4e5f").ok());
  ASSERT_TRUE(MakeDpkgRoot(root).ok());
  ASSERT_TRUE(testing::MarkRebootRequired(root, "linux-image-6.1.0-28-amd64").ok());
  const std::string agent_config = dir.Path("node-a.yaml");
  ASSERT_TRUE(WriteFileAtomically(
                  agent_config,
                  absl::StrCat("node_name: node-a\ncoordinator: 127.0.0.1:", (*coordinator)->port(),
                               "\ninsecure: true\nroot: ", root,
                               "\nstate_dir: /var/lib/tended\nreport_interval: 1s\n"
                               "reconnect:\n  initial_backoff: 200ms\n  max_backoff: 2s\n"
                               "reboot:\n  method: simulate\n  delay: 1h\n"
                               "apt:\n  enabled: true\n  plan_interval: 1h\n"
                               "  update_interval: 0s\n"
                               "metrics_listen: 127.0.0.1:",
                               *agent_metrics, "\n"))
                  .ok());
  auto agent =
      testing::ChildProcess::Start({kAgent, "--config", agent_config}, dir.Path("node-a.log"));
  ASSERT_TRUE(agent.ok()) << agent.status();

  // Until the lease is DISRUPTING and the agent has planned (the coordinator first waits
  // for every known node and a report deadline after a start on an empty state).
  std::string coordinator_text;
  std::string agent_text;
  absl::Status ready = testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        coordinator_text = Scrape(*coordinator_metrics);
        agent_text = Scrape(*agent_metrics);
        return absl::StrContains(coordinator_text, "phase=\"DISRUPTING\"} 1") &&
               absl::StrContains(agent_text, "tended_agent_apt_upgrades_planned ") &&
               absl::StrContains(agent_text, "tended_agent_coordinator_connected 1");
      },
      absl::Seconds(120), "a DISRUPTING reboot lease and the agent's first plan", agent->get(),
      absl::Milliseconds(250));
  ASSERT_TRUE(ready.ok()) << ready << "\ncoordinator:\n"
                          << coordinator_text << "\nagent:\n"
                          << agent_text << "\ncoordinator log:\n"
                          << (*coordinator)->LogTail() << "\nagent log:\n"
                          << (*agent)->LogTail();

  std::set<std::string> scraped = ScrapedNames(coordinator_text);
  for (const std::string& name : ScrapedNames(agent_text)) scraped.insert(name);
  EXPECT_GE(scraped.size(), 30u);
  for (const std::string& name : used) {
    auto event_only = OnlyAfterAnEvent().find(name);
    if (event_only != OnlyAfterAnEvent().end()) {
      EXPECT_EQ(scraped.count(name), 0u)
          << name << " is in the scrape now: take it off the event-only list ("
          << event_only->second << ")";
      continue;
    }
    EXPECT_EQ(scraped.count(name), 1u)
        << name << " is used by the dashboard or the rules but not in a real scrape";
  }

  if (testing::FindPromtool().empty()) {
    GTEST_SKIP() << "promtool is not installed: the scrapes were not linted";
  }
  for (const std::string* text : {&coordinator_text, &agent_text}) {
    auto linted = testing::RunPromtool({"check", "metrics"}, dir.path(), *text);
    ASSERT_TRUE(linted.ok()) << linted.status();
    EXPECT_TRUE(linted->success) << linted->exit << "\n" << linted->output << "\n" << *text;
    EXPECT_EQ(linted->output, "") << *text;
  }
  (*agent)->Stop();
  (*coordinator)->Stop();
}

TEST(LiveScrapeHelpersTest, ScrapedAndRuleNames) {
  EXPECT_EQ(ScrapedNames("# HELP tended_a x\n# TYPE tended_a gauge\ntended_a 1\n"
                         "tended_b{kind=\"reboot\"} 0\n"),
            (std::set<std::string>{"tended_a", "tended_b"}));
  EXPECT_EQ(RuleMetricNames("    # tended_in_a_comment\n    expr: tended_x == 1\n"),
            std::set<std::string>{"tended_x"});
}

}  // namespace
}  // namespace tended
