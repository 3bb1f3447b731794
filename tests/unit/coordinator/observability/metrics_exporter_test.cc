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
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
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
  static CoordinatorConfig Config() {
    CoordinatorConfig config;
    config.fleet.report_deadline = absl::Minutes(10);
    config.fleet.report_interval = absl::Seconds(30);
    LeasePolicy reboot;
    reboot.soak = absl::Hours(1);
    reboot.renew_deadline = absl::Minutes(10);
    config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    return config;
  }

  CoordinatorMetricsTest() : harness_(Config()) {}

  void SetUp() override {
    ASSERT_TRUE(harness_.Start().ok());
    coordinator_ = harness_.get();
    auto wired = CoordinatorObservability::Start(*coordinator_, clock_, "127.0.0.1:0");
    ASSERT_TRUE(wired.ok()) << wired.status();
    observability_ = *std::move(wired);
    ASSERT_GT(observability_->metrics_port(), 0);
  }
  void TearDown() override { observability_.reset(); }

  // A first start: the nodes report, and again once the recovery period has passed.
  void BringUp(bool node_a_needs_reboot) {
    Report("node-a", "boot-1", node_a_needs_reboot);
    Report("node-b", "boot-1", false);
    clock_.Advance(Config().fleet.report_deadline + absl::Seconds(1));
    Report("node-a", "boot-1", node_a_needs_reboot);
    Report("node-b", "boot-1", false);
    coordinator_->Tick();
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

  void Report(const std::string& node, const std::string& boot_id, bool reboot_required,
              const std::string& instance = "") {
    ASSERT_TRUE(
        coordinator_->ReportFacts(testing::FactsReport(node, boot_id, reboot_required, instance))
            .ok());
  }

  tended::v1::AcquireLeaseResponse Ask(const std::string& node) {
    auto response =
        coordinator_->AcquireLease(testing::RebootLeaseRequest(node, "reboot-required"));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : tended::v1::AcquireLeaseResponse();
  }

  testing::TempDir dir_;
  testing::CoordinatorHarness harness_;
  testing::FakeClock& clock_ = harness_.clock();
  Coordinator* coordinator_ = nullptr;
  std::unique_ptr<CoordinatorObservability> observability_;
};

TEST_F(CoordinatorMetricsTest, LeasesNodesGatesAndEventsOverHttp) {
  BringUp(/*node_a_needs_reboot=*/true);
  auto samples = Scrape();
  EXPECT_EQ(samples["tended_node_reboot_required{node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_node_reboot_required{node=\"node-b\"}"], 0);
  EXPECT_EQ(samples["tended_node_reporting{node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_node_last_report_timestamp_seconds{node=\"node-a\"}"],
            absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"halt\"}"], 1);
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"state\"}"], 1);
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
  ASSERT_TRUE(coordinator_->BeginDisruption(testing::BeginRequest(granted.lease(), "reboot")).ok());
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

TEST_F(CoordinatorMetricsTest, RecoveryRefusedTokensIdentityConflictsAndStreams) {
  // A first start on an empty state recovers until every agent could report.
  auto samples = Scrape();
  EXPECT_EQ(samples["tended_state_recovering"], 1);
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"state\"}"], 0);
  EXPECT_EQ(samples["tended_fencing_rejections_total"], 0);
  EXPECT_EQ(samples["tended_node_identity_conflicts"], 0);
  EXPECT_EQ(samples["tended_directive_streams"], 0);
  BringUp(/*node_a_needs_reboot=*/true);
  samples = Scrape();
  EXPECT_EQ(samples["tended_state_recovering"], 0);
  EXPECT_EQ(samples["tended_gate_passing{kind=\"reboot\",gate=\"state\"}"], 1);

  // Refused holder calls count, however many there are.
  const tended::v1::Lease lease = Ask("node-a").lease();
  ASSERT_FALSE(lease.id().empty());
  tended::v1::RenewLeaseRequest stale = testing::RenewRequest(lease);
  stale.set_fencing_token(lease.fencing_token() + 1);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(coordinator_->RenewLease(stale).ok());
  EXPECT_FALSE(coordinator_->RenewLease(testing::RenewRequest(lease, "cloned-vm")).ok());
  EXPECT_EQ(Scrape()["tended_fencing_rejections_total"], 4);

  // A second agent under node-b's name.
  EXPECT_FALSE(
      coordinator_->ReportFacts(testing::FactsReport("node-b", "boot-9", false, "cloned-vm")).ok());
  samples = Scrape();
  EXPECT_EQ(samples["tended_node_identity_conflicts"], 1);
  EXPECT_EQ(samples["tended_fencing_rejections_total"], 5);

  tended::v1::WatchDirectivesRequest watch;
  watch.set_node_name("node-a");
  watch.set_agent_instance_id(testing::InstanceOf("node-a"));
  auto subscription = coordinator_->SubscribeDirectives(watch);
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  EXPECT_EQ(Scrape()["tended_directive_streams"], 1);
  coordinator_->UnsubscribeDirectives("node-a", *subscription);
  EXPECT_EQ(Scrape()["tended_directive_streams"], 0);

  const std::string text = ScrapeText();
  EXPECT_THAT(text, HasSubstr("# TYPE tended_fencing_rejections_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE tended_node_identity_conflicts gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE tended_state_recovering gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE tended_directive_streams gauge\n"));
}

TEST_F(CoordinatorMetricsTest, OutputPassesPromtool) {
  if (testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  BringUp(/*node_a_needs_reboot=*/true);
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

TEST_F(CoordinatorMetricsTest, KubernetesVersionsAndRolloutsAreExported) {
  BringUp(false);
  for (const auto& [node, kubelet] :
       std::map<std::string, std::string>{{"node-a", "1.30.2-1.1"}, {"node-b", "1.29.9-1.1"}}) {
    tended::v1::ReportFactsRequest request = testing::FactsReport(node, "boot-1", false);
    tended::v1::K8sNodeFacts* k8s = request.mutable_facts()->mutable_k8s();
    k8s->set_kubelet_version(kubelet);
    if (node == "node-a") {
      k8s->set_control_plane(true);
      k8s->add_kubeadm_candidates("1.30.5-1.1");
      k8s->add_kubeadm_candidates("1.30.2-1.1");
      k8s->set_next_minor_available(true);
      k8s->set_next_minor("1.31");
      k8s->mutable_checked_time()->set_seconds(1767225600);
    }
    ASSERT_TRUE(coordinator_->ReportFacts(request).ok());
  }
  std::map<std::string, double> samples = Scrape();
  EXPECT_EQ(samples["tended_k8s_upgrade_available{kind=\"patch\",running=\"1.30.2\","
                    "target=\"1.30.5\"}"],
            1);
  EXPECT_EQ(samples["tended_k8s_upgrade_available{kind=\"minor\",running=\"1.30.2\","
                    "target=\"1.31\"}"],
            1);
  EXPECT_EQ(samples["tended_k8s_version_check_last_run_timestamp_seconds"], 1767225600);
  EXPECT_EQ(samples["tended_k8s_upgrade_version_skew"], 1);
  EXPECT_EQ(samples["tended_k8s_upgrade_in_flight"], 0);
  EXPECT_EQ(samples["tended_k8s_upgrade_snapshot_taken"], 0);
  EXPECT_THAT(samples, Not(Contains(Key("tended_k8s_upgrade_last_progress_timestamp_seconds"))));
}

}  // namespace
}  // namespace tended::coordinator
