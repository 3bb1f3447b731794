#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "agent/config.h"
#include "agent/metrics_exporter.h"
#include "common/file_util.h"
#include "common/proto_file.h"
#include "common/root_path.h"
#include "tended/state/v1/state.pb.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/promtool.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

// Answers every call with the next scripted status (OK once the script runs out) and keeps
// the stream's end callback so a test can end the stream.
class ScriptedClient final : public CoordinatorClient {
 public:
  std::deque<absl::Status> script;
  std::function<void(const absl::Status&)> on_end;

  absl::Status Next() {
    if (script.empty()) return absl::OkStatus();
    absl::Status next = script.front();
    script.pop_front();
    return next;
  }
  template <typename T>
  absl::StatusOr<T> Answer() {
    absl::Status status = Next();
    if (!status.ok()) return status;
    return T();
  }
  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest&) override {
    return Answer<tended::v1::ReportFactsResponse>();
  }
  absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest&) override {
    return Answer<tended::v1::AcquireLeaseResponse>();
  }
  absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest&) override {
    return Answer<tended::v1::RenewLeaseResponse>();
  }
  absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest&) override {
    return Answer<tended::v1::BeginDisruptionResponse>();
  }
  absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest&) override {
    return Answer<tended::v1::ReleaseLeaseResponse>();
  }
  absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest&) override {
    return Answer<tended::v1::CancelLeaseRequestResponse>();
  }
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest&) override {
    return Answer<tended::v1::ReportStepResponse>();
  }
  void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest&,
                           std::function<void(const tended::v1::Directive&)>,
                           std::function<void(const absl::Status&)> end) override {
    on_end = std::move(end);
  }
  void CloseDirectiveStream() override {}
};

std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    size_t space = line.rfind(' ');
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

class AgentMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.root = dir_.path();
    config_.state_dir = "/var/lib/tended";
    config_.apt.enabled = true;
    std::filesystem::create_directories(root_.Resolve("/var/lib/tended"));
    std::filesystem::create_directories(root_.Resolve("/var/run"));
    auto endpoint =
        AgentMetricsEndpoint::Start(config_, root_, "node-a", &tracked_, &plan_, "127.0.0.1:0");
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = *std::move(endpoint);
  }

  std::string ScrapeText() {
    auto response =
        testing::HttpRequestLoopback(endpoint_->port(), "GET", "/metrics", absl::Seconds(10));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->body : "";
  }

  void WriteJournal(tended::v1::LeaseKind kind) {
    tended::state::v1::AgentState journal;
    journal.mutable_lease()->set_id("lease-1");
    journal.mutable_lease()->set_kind(kind);
    journal.mutable_lease()->set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
    ASSERT_TRUE(
        WriteProtoJsonFile(root_.Resolve("/var/lib/tended/agent-state.json"), journal).ok());
  }

  testing::TempDir dir_;
  AgentConfig config_;
  RootPath root_{dir_.path()};
  ScriptedClient client_;
  ConnectionTrackingClient tracked_{&client_};
  AptPlanStatus plan_;
  std::unique_ptr<AgentMetricsEndpoint> endpoint_;
};

TEST_F(AgentMetricsTest, SentinelJournalAndConnection) {
  auto samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_info{version=\"" TENDED_VERSION "\",node=\"node-a\"}"], 1);
  EXPECT_EQ(samples["tended_agent_reboot_required"], 0);
  EXPECT_EQ(samples["tended_agent_lease_held{kind=\"reboot\"}"], 0);
  EXPECT_EQ(samples["tended_agent_coordinator_connected"], 0);
  ASSERT_EQ(samples.count("tended_agent_insecure_transport"), 1u);
  EXPECT_EQ(samples["tended_agent_insecure_transport"], config_.insecure ? 1 : 0);

  ASSERT_TRUE(WriteFileAtomically(root_.Resolve(config_.reboot.sentinel), "*** reboot\n").ok());
  WriteJournal(tended::v1::LEASE_KIND_REBOOT);
  ASSERT_TRUE(tracked_.ReportFacts({}).ok());
  tended::v1::WatchDirectivesRequest watch;
  watch.set_node_name("node-a");
  tracked_.OpenDirectiveStream(
      watch, [](const tended::v1::Directive&) {}, [](const absl::Status&) {});
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_reboot_required"], 1);
  EXPECT_EQ(samples["tended_agent_lease_held{kind=\"reboot\"}"], 1);
  EXPECT_EQ(samples["tended_agent_lease_held{kind=\"os_upgrade\"}"], 0);
  EXPECT_EQ(samples["tended_agent_coordinator_connected"], 1);

  // The stream ends: disconnected until a call is answered again. A refusal is an answer.
  client_.on_end(absl::UnavailableError("gone"));
  EXPECT_EQ(Samples(ScrapeText())["tended_agent_coordinator_connected"], 0);
  client_.script = {absl::FailedPreconditionError("stale token")};
  EXPECT_FALSE(tracked_.RenewLease({}).ok());
  EXPECT_EQ(Samples(ScrapeText())["tended_agent_coordinator_connected"], 1);
  client_.script = {absl::DeadlineExceededError("slow")};
  EXPECT_FALSE(tracked_.AcquireLease({}).ok());
  EXPECT_EQ(Samples(ScrapeText())["tended_agent_coordinator_connected"], 0);

  // Lease released (journal cleared), sentinel gone.
  ASSERT_TRUE(WriteProtoJsonFile(root_.Resolve("/var/lib/tended/agent-state.json"),
                                 tended::state::v1::AgentState())
                  .ok());
  std::filesystem::remove(root_.Resolve(config_.reboot.sentinel));
  WriteJournal(tended::v1::LEASE_KIND_OS_UPGRADE);
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_reboot_required"], 0);
  EXPECT_EQ(samples["tended_agent_lease_held{kind=\"reboot\"}"], 0);
  EXPECT_EQ(samples["tended_agent_lease_held{kind=\"os_upgrade\"}"], 1);
}

TEST_F(AgentMetricsTest, AptPlanAndLastOsUpgrade) {
  auto samples = Samples(ScrapeText());
  // Before the first plan and the first upgrade: only whether dpkg runs.
  EXPECT_EQ(samples.count("tended_agent_apt_plan_failing"), 0u);
  EXPECT_EQ(samples.count("tended_agent_apt_upgrades_planned"), 0u);
  EXPECT_EQ(samples.count("tended_agent_os_upgrade_last_result{result=\"failed\"}"), 0u);
  ASSERT_EQ(samples.count("tended_agent_os_upgrade_running"), 1u);
  EXPECT_EQ(samples["tended_agent_os_upgrade_running"], 0);

  apt::UpgradePlan plan;
  plan.upgrades = {{"libc6", "2.36-9+deb12u8", "2.36-9+deb12u9", "o=Debian,a=stable-security"},
                   {"tzdata", "2024a", "2025a", "o=Debian,a=stable-updates"}};
  plan.kept = {{"kubelet", "held (tended holds)"},
               {"kubeadm", "held (dpkg hold)"},
               {"linux-image-amd64", "blacklisted (Package-Blacklist \"linux-\")"}};
  plan_.PlanComputed(plan, absl::FromUnixSeconds(1767225600));
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_apt_plan_failing"], 0);
  EXPECT_EQ(samples["tended_agent_apt_last_plan_timestamp_seconds"], 1767225600);
  EXPECT_EQ(samples["tended_agent_apt_upgrades_planned"], 2);
  EXPECT_EQ(samples["tended_agent_apt_security_upgrades_planned"], 1);
  EXPECT_EQ(samples["tended_agent_apt_kept_back{reason=\"held\"}"], 2);
  EXPECT_EQ(samples["tended_agent_apt_kept_back{reason=\"blacklisted\"}"], 1);
  ASSERT_EQ(samples.count("tended_agent_apt_kept_back{reason=\"dependencies\"}"), 1u);
  EXPECT_EQ(samples["tended_agent_apt_kept_back{reason=\"dependencies\"}"], 0);

  plan_.PlanFailed(absl::FromUnixSeconds(1767229200));
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_apt_plan_failing"], 1);
  EXPECT_EQ(samples["tended_agent_apt_last_plan_timestamp_seconds"], 1767225600);
  EXPECT_EQ(samples["tended_agent_apt_upgrades_planned"], 2);

  // dpkg runs: the step is journaled without a report.
  tended::state::v1::AgentState journal;
  journal.mutable_lease()->set_id("lease-1");
  journal.mutable_lease()->set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
  journal.mutable_lease()->set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
  journal.set_step("dpkg");
  const std::string journal_path = root_.Resolve("/var/lib/tended/agent-state.json");
  ASSERT_TRUE(WriteProtoJsonFile(journal_path, journal).ok());
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_os_upgrade_running"], 1);
  EXPECT_EQ(samples.count("tended_agent_os_upgrade_last_result{result=\"failed\"}"), 0u);

  // It failed: the journal's report counts before it is delivered.
  journal.mutable_step_report()->set_state(tended::v1::STEP_STATE_FAILED);
  journal.mutable_step_report()->mutable_end_time()->set_seconds(1767230000);
  ASSERT_TRUE(WriteProtoJsonFile(journal_path, journal).ok());
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_os_upgrade_running"], 0);
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_result{result=\"failed\"}"], 1);
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_result{result=\"succeeded\"}"], 0);
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_result{result=\"interrupted\"}"], 0);
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_end_timestamp_seconds"], 1767230000);

  // Released: the last delivered report (last-os-upgrade.json) speaks, here an interrupted one.
  ASSERT_TRUE(WriteProtoJsonFile(journal_path, tended::state::v1::AgentState()).ok());
  tended::v1::StepReport last;
  last.set_step("dpkg");
  last.set_state(tended::v1::STEP_STATE_INTERRUPTED);
  ASSERT_TRUE(WriteProtoJsonFile(root_.Resolve("/var/lib/tended/last-os-upgrade.json"), last).ok());
  samples = Samples(ScrapeText());
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_result{result=\"interrupted\"}"], 1);
  EXPECT_EQ(samples["tended_agent_os_upgrade_last_result{result=\"failed\"}"], 0);
  EXPECT_EQ(samples.count("tended_agent_os_upgrade_last_end_timestamp_seconds"), 0u);
}

TEST_F(AgentMetricsTest, OutputPassesPromtool) {
  if (testing::FindPromtool().empty()) GTEST_SKIP() << "promtool is not installed";
  WriteJournal(tended::v1::LEASE_KIND_REBOOT);
  apt::UpgradePlan plan;
  plan.kept = {{"kubelet", "held (tended holds)"}};
  plan_.PlanComputed(plan, absl::FromUnixSeconds(1767225600));
  auto result = testing::RunPromtool({"check", "metrics"}, dir_.path(), ScrapeText());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->success) << result->exit << "\n" << result->output;
  EXPECT_EQ(result->output, "");
}

TEST(AgentMetricsEndpointTest, NoAddressNoServerAndABadOneFails) {
  testing::TempDir dir;
  AgentConfig config;
  config.root = dir.path();
  RootPath root(dir.path());
  auto quiet = AgentMetricsEndpoint::Start(config, root, "node-a", nullptr, nullptr, "");
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ((*quiet)->port(), 0);
  EXPECT_THAT((*quiet)->registry().Render(), ::testing::HasSubstr("tended_agent_info{"));
  EXPECT_THAT((*quiet)->registry().Render(),
              ::testing::Not(::testing::HasSubstr("coordinator_connected")));
  // Without apt: no OS upgrade gauges.
  EXPECT_THAT((*quiet)->registry().Render(),
              ::testing::Not(::testing::HasSubstr("tended_agent_os_upgrade_")));
  EXPECT_FALSE(
      AgentMetricsEndpoint::Start(config, root, "node-a", nullptr, nullptr, "nonsense").ok());
}

}  // namespace
}  // namespace tended::agent
