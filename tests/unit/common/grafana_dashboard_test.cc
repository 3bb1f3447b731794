// The shipped Grafana dashboard (packaging/grafana/tended-dashboard.json): valid JSON in
// Grafana's shape, and every metric its queries use is documented in docs/metrics.md and
// exported by one of the programs' metrics exporters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"

namespace tended {
namespace {

constexpr char kDashboard[] = TENDED_SOURCE_DIR "/packaging/grafana/tended-dashboard.json";
constexpr char kMetricsDoc[] = TENDED_SOURCE_DIR "/docs/metrics.md";
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

TEST(GrafanaDashboardHelpersTest, FindsNamesAndDocumentedRows) {
  EXPECT_EQ(MetricNames("sum by (kind) (tended_lease_held{job=\"x\"}) / tended_halted"),
            (std::set<std::string>{"tended_lease_held", "tended_halted"}));
  EXPECT_EQ(DocumentedMetrics("| `tended_a_total` | counter |\n| `other` |\ntext `tended_b`\n"),
            std::set<std::string>{"tended_a_total"});
}

}  // namespace
}  // namespace tended
