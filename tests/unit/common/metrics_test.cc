#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended::metrics {
namespace {

using ::testing::HasSubstr;

// A strict reader of the text format as we write it: returns sample -> value, and checks
// HELP/TYPE appear once per family before its samples.
struct Parsed {
  std::map<std::string, double> samples;  // "name{a=\"x\"}" as written -> value
  std::map<std::string, std::string> types;
  std::map<std::string, std::string> helps;
  std::string error;
};

// Reads a label value up to its closing quote, undoing the escapes.
bool Unescape(absl::string_view* in, std::string* out) {
  while (!in->empty()) {
    char c = in->front();
    in->remove_prefix(1);
    if (c == '"') return true;
    if (c == '\\') {
      if (in->empty()) return false;
      char e = in->front();
      in->remove_prefix(1);
      if (e == 'n') {
        out->push_back('\n');
      } else if (e == '\\' || e == '"') {
        out->push_back(e);
      } else {
        return false;
      }
    } else {
      out->push_back(c);
    }
  }
  return false;
}

Parsed Parse(const std::string& text) {
  Parsed parsed;
  if (!text.empty() && text.back() != '\n') {
    parsed.error = "no final newline";
    return parsed;
  }
  std::string current_family;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "# HELP ")) {
      std::string name(line.substr(0, line.find(' ')));
      if (parsed.helps.count(name) > 0) parsed.error = "second HELP for " + name;
      parsed.helps[name] = std::string(line.substr(name.size() + 1));
      current_family = name;
      continue;
    }
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() != 2) parsed.error = "bad TYPE line";
      if (parsed.types.count(parts[0]) > 0) parsed.error = "second TYPE for " + parts[0];
      parsed.types[parts[0]] = parts[1];
      continue;
    }
    size_t name_end = line.find_first_of("{ ");
    std::string name(line.substr(0, name_end));
    if (name != current_family || parsed.types.count(name) == 0) {
      parsed.error = "sample before its TYPE: " + std::string(line);
    }
    std::string key = name;
    absl::string_view rest = line.substr(name_end);
    if (absl::ConsumePrefix(&rest, "{")) {
      key += "{";
      bool first = true;
      while (!absl::ConsumePrefix(&rest, "}")) {
        if (!first && !absl::ConsumePrefix(&rest, ",")) parsed.error = "missing comma";
        size_t eq = rest.find("=\"");
        if (eq == absl::string_view::npos) {
          parsed.error = "bad label";
          return parsed;
        }
        std::string value;
        std::string label(rest.substr(0, eq));
        rest.remove_prefix(eq + 2);
        if (!Unescape(&rest, &value)) {
          parsed.error = "bad label value";
          return parsed;
        }
        key += (first ? "" : ",") + label + "=" + value;
        first = false;
      }
      key += "}";
    }
    if (!absl::ConsumePrefix(&rest, " ")) parsed.error = "no space before value";
    double value = 0;
    if (rest == "+Inf") {
      value = std::numeric_limits<double>::infinity();
    } else if (rest == "NaN") {
      value = std::nan("");
    } else if (!absl::SimpleAtod(rest, &value)) {
      parsed.error = "bad value " + std::string(rest);
    }
    parsed.samples[key] = value;
  }
  return parsed;
}

TEST(MetricsTest, RendersExactTextFormat) {
  Registry registry;
  Counter& events = registry.AddCounter("demo_events_total", "Events seen.", {"type"});
  Gauge& held = registry.AddGauge("demo_held", "Held \\ now\nreally.", {"kind", "node"});
  Gauge& up = registry.AddGauge("demo_up", "Whether up.");
  events.Increment({"GRANTED"});
  events.Increment({"GRANTED"}, 2);
  events.Increment({"ALPHA"}, 0);
  held.Set({"reboot", "n\"1\\x\ny"}, 1);
  up.Set(0.25);
  EXPECT_EQ(registry.Render(),
            "# HELP demo_events_total Events seen.\n"
            "# TYPE demo_events_total counter\n"
            "demo_events_total{type=\"ALPHA\"} 0\n"
            "demo_events_total{type=\"GRANTED\"} 3\n"
            "# HELP demo_held Held \\\\ now\\nreally.\n"
            "# TYPE demo_held gauge\n"
            "demo_held{kind=\"reboot\",node=\"n\\\"1\\\\x\\ny\"} 1\n"
            "# HELP demo_up Whether up.\n"
            "# TYPE demo_up gauge\n"
            "demo_up 0.25\n");
}

TEST(MetricsTest, FamiliesWithoutSamplesAreLeftOut) {
  Registry registry;
  Gauge& gauge = registry.AddGauge("demo_gauge", "A gauge.", {"node"});
  EXPECT_EQ(registry.Render(), "");
  gauge.Set({"a"}, 1);
  gauge.Set({"b"}, 2);
  gauge.Remove({"a"});
  EXPECT_EQ(registry.Render(),
            "# HELP demo_gauge A gauge.\n# TYPE demo_gauge gauge\ndemo_gauge{node=\"b\"} 2\n");
  gauge.Clear();
  EXPECT_EQ(registry.Render(), "");
}

TEST(MetricsTest, ValuesRoundTrip) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1767225600), "1767225600");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  for (double v : {1e-9, 123456789.125, 1e300, 3.0 / 7}) {
    double back = 0;
    ASSERT_TRUE(absl::SimpleAtod(FormatValue(v), &back));
    EXPECT_EQ(back, v);
  }
}

TEST(MetricsTest, CollectorsRunAtEveryScrape) {
  Registry registry;
  int scrapes = 0;
  registry.AddGauge("demo_first", "First.").Set(1);
  registry.AddCollector({{"demo_leases", "Leases.", MetricType::kGauge, {"node"}},
                         {"demo_scrapes_total", "Scrapes.", MetricType::kCounter, {}}},
                        [&](Collection& out) {
                          ++scrapes;
                          for (int i = 0; i < scrapes; ++i) {
                            out.Add("demo_leases", {"node-" + std::to_string(i)}, i);
                          }
                          out.Add("demo_scrapes_total", {}, scrapes);
                        });
  registry.AddGauge("demo_last", "Last.").Set(2);
  registry.Render();
  Parsed parsed = Parse(registry.Render());
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(scrapes, 2);
  EXPECT_EQ(parsed.samples["demo_leases{node=node-0}"], 0);
  EXPECT_EQ(parsed.samples["demo_leases{node=node-1}"], 1);
  EXPECT_EQ(parsed.samples["demo_scrapes_total"], 2);
  EXPECT_EQ(parsed.types["demo_scrapes_total"], "counter");
  // Registration order is kept: first, the collector's two, last.
  std::string text = registry.Render();
  EXPECT_LT(text.find("demo_first"), text.find("demo_leases"));
  EXPECT_LT(text.find("demo_leases"), text.find("demo_scrapes_total"));
  EXPECT_LT(text.find("demo_scrapes_total"), text.find("demo_last"));
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  Counter& counter = registry.AddCounter("demo_hits_total", "Hits.", {"worker"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        counter.Increment({std::to_string(t % 2)});
        if (i % 100 == 0) (void)registry.Render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.Value({"0"}), 2000);
  EXPECT_EQ(counter.Value({"1"}), 2000);
}

TEST(MetricsDeathTest, ProgrammingErrorsAbort) {
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("demo_counter", "no suffix");
      },
      "must end in _total");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddGauge("demo_gauge", "x", {"__reserved"});
      },
      "bad label name");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddGauge("demo_gauge", "x");
        registry.AddGauge("demo_gauge", "x");
      },
      "registered twice");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddGauge("demo_gauge", "x", {"a"}).Set({"1", "2"}, 1);
      },
      "takes 1 label values");
  EXPECT_DEATH(
      {
        Registry registry;
        registry.AddCounter("demo_total", "x").Increment({}, -1);
      },
      "cannot go down");
}

TEST(MetricsTest, PromtoolAcceptsTheOutput) {
  if (tended::testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  Registry registry;
  registry.AddCounter("tended_demo_events_total", "Events by type.", {"type"})
      .Increment({"LEASE_GRANTED"});
  registry.AddGauge("tended_demo_lease_held", "Active leases.", {"kind", "node", "phase"})
      .Set({"reboot", "we\"ird\\node\n", "DISRUPTING"}, 1);
  registry.AddGauge("tended_demo_halted", "Halted.").Set(0);
  registry.AddGauge("tended_demo_age_seconds", "Age.").Set(std::numeric_limits<double>::infinity());
  tended::testing::TempDir dir;
  auto result = tended::testing::RunPromtool({"check", "metrics"}, dir.path(), registry.Render());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_EQ(result->output, "");

  // promtool can fail: the same check rejects a broken document.
  auto broken = tended::testing::RunPromtool({"check", "metrics"}, dir.path(),
                                             "# TYPE x counter\nx{a=\"b} 1\n");
  ASSERT_TRUE(broken.ok()) << broken.status();
  EXPECT_FALSE(broken->success);
  EXPECT_THAT(broken->output, HasSubstr("error"));
}

}  // namespace
}  // namespace tended::metrics
