#include "coordinator/observability/metrics_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/observability/observability.h"
#include "coordinator/state_store.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;

// Sample lines ("name{labels}" exactly as written) to values.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    size_t space = line.rfind(' ');
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

class CoordinatorMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_file = dir_.Path("state.json");
    config_.fleet.report_deadline = absl::Minutes(2);
    config_.fleet.report_interval = absl::Seconds(30);
    LeasePolicy reboot;
    reboot.soak = absl::Hours(1);
    reboot.renew_deadline = absl::Minutes(10);
    config_.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    store_ = std::make_unique<FileStateStore>(config_.state_file);
    auto created = Coordinator::Create(config_, clock_, store_.get(), nullptr);
    ASSERT_TRUE(created.ok()) << created.status();
    coordinator_ = *std::move(created);
    auto wired = CoordinatorObservability::Start(*coordinator_, clock_, "127.0.0.1:0");
    ASSERT_TRUE(wired.ok()) << wired.status();
    observability_ = *std::move(wired);
    ASSERT_GT(observability_->metrics_port(), 0);
  }

  std::string ScrapeText() {
    auto response = testing::HttpRequestLoopback(observability_->metrics_port(), "GET", "/metrics",
                                                 absl::Seconds(10));
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return "";
    EXPECT_EQ(response->status, 200);
    return response->body;
  }
  std::map<std::string, double> Scrape() { return Samples(ScrapeText()); }

  void Report(const std::string& node, const std::string& boot_id, bool reboot_required) {
    ASSERT_TRUE(
        coordinator_->ReportFacts(testing::FactsReport(node, boot_id, reboot_required)).ok());
  }

  tended::v1::AcquireLeaseResponse Ask(const std::string& node) {
    auto response =
        coordinator_->AcquireLease(testing::RebootLeaseRequest(node, "reboot-required"));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : tended::v1::AcquireLeaseResponse();
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  CoordinatorConfig config_;
  std::unique_ptr<FileStateStore> store_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorObservability> observability_;
};

TEST_F(CoordinatorMetricsTest, LeasesNodesGatesAndEventsOverHttp) {
  const absl::Time start = clock_.Now();
  Report("node-a", "boot-1", true);
  Report("node-b", "boot-1", false);
  auto samples = Scrape();
  EXPECT_EQ(samples["tended_node_reboot_required{node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_node_reboot_required{node=\"node-b\"}"], 0);
  EXPECT_EQ(samples["tended_node_reporting{node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_node_last_report_timestamp_seconds{node=\"node-a\"}"],
            absl::ToUnixSeconds(start));
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"halt\"}"], 1);
  EXPECT_EQ(samples["tended_gates_would_grant{kind=\"reboot\"}"], 1);
  EXPECT_EQ(samples["tended_halted"], 0);
  EXPECT_EQ(samples["tended_disruptions_total{kind=\"reboot\"}"], 0);
  EXPECT_EQ(samples["tended_events_total{type=\"node_registered\"}"], 2);
  EXPECT_THAT(samples, Not(Contains(Key(HasSubstr("tended_lease_held")))));
  // Kinds not enabled in the configuration are left out.
  EXPECT_THAT(samples, Not(Contains(Key(HasSubstr("os_upgrade")))));

  tended::v1::AcquireLeaseResponse granted = Ask("node-a");
  ASSERT_TRUE(granted.has_lease());
  clock_.Advance(absl::Minutes(5));
  tended::v1::BeginDisruptionRequest begin;
  begin.set_lease_id(granted.lease().id());
  begin.set_fencing_token(granted.lease().fencing_token());
  begin.set_step("reboot");
  ASSERT_TRUE(coordinator_->BeginDisruption(begin).ok());
  Report("node-b", "boot-1", true);
  EXPECT_FALSE(Ask("node-b").has_lease());
  clock_.Advance(absl::Seconds(30));

  samples = Scrape();
  EXPECT_EQ(samples["tended_lease_held{kind=\"reboot\",node=\"node-a\",phase=\"DISRUPTING\"}"], 1);
  EXPECT_EQ(samples["tended_lease_age_seconds{kind=\"reboot\",node=\"node-a\"}"], 330);
  EXPECT_EQ(samples["tended_lease_overdue{kind=\"reboot\",node=\"node-a\"}"], 0);
  EXPECT_EQ(samples["tended_disruptions_total{kind=\"reboot\"}"], 1);
  EXPECT_EQ(samples["tended_events_total{type=\"lease_granted\"}"], 1);
  EXPECT_EQ(samples["tended_events_total{type=\"lease_phase_changed\"}"], 1);
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"concurrency\"}"], 0);
  EXPECT_EQ(samples["tended_gates_would_grant{kind=\"reboot\"}"], 0);
  EXPECT_EQ(samples["tended_lease_requests_waiting{kind=\"reboot\"}"], 1);

  // The node does not come back: past the return deadline the lease is overdue, and the
  // silent node stops counting as reporting.
  clock_.Advance(absl::Hours(1));
  Report("node-b", "boot-1", true);
  coordinator_->Tick();
  samples = Scrape();
  EXPECT_EQ(samples["tended_lease_overdue{kind=\"reboot\",node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_node_reporting{node=\"node-a\"}"], 0);
  EXPECT_EQ(samples["tended_node_reporting{node=\"node-b\"}"], 1);
  EXPECT_EQ(samples["tended_events_total{type=\"lease_overdue\"}"], 1);

  tended::v1::HaltRequest halt;
  halt.set_reason("incident");
  ASSERT_TRUE(coordinator_->Halt(halt).ok());
  samples = Scrape();
  EXPECT_EQ(samples["tended_halted"], 1);
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"halt\"}"], 0);
}

TEST_F(CoordinatorMetricsTest, OutputPassesPromtool) {
  if (testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  Report("node-a", "boot-1", true);
  ASSERT_TRUE(Ask("node-a").has_lease());
  auto result = testing::RunPromtool({"check", "metrics"}, dir_.path(), ScrapeText());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_EQ(result->output, "");
}

TEST(EventTypeLabelTest, LowercaseWithoutPrefix) {
  EXPECT_EQ(EventTypeLabel(tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED), "lease_force_released");
  EXPECT_EQ(EventTypeLabel(tended::v1::EVENT_TYPE_HALTED), "halted");
}

}  // namespace
}  // namespace tended::coordinator
