#include "agent/metrics_exporter.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/node_facts.h"
#include "agent/os_upgrade_step.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "tended/state/v1/state.pb.h"

namespace tended::agent {
namespace {

using metrics::FamilySpec;
using metrics::MetricType;

constexpr std::pair<tended::v1::LeaseKind, const char*> kKinds[] = {
    {tended::v1::LEASE_KIND_REBOOT, "reboot"},
    {tended::v1::LEASE_KIND_OS_UPGRADE, "os_upgrade"},
    {tended::v1::LEASE_KIND_K8S_UPGRADE, "k8s_upgrade"}};

constexpr std::pair<tended::v1::StepState, const char*> kResults[] = {
    {tended::v1::STEP_STATE_SUCCEEDED, "succeeded"},
    {tended::v1::STEP_STATE_FAILED, "failed"},
    {tended::v1::STEP_STATE_INTERRUPTED, "interrupted"}};

double UnixSeconds(absl::Time time) { return absl::ToDoubleSeconds(time - absl::UnixEpoch()); }

// The apt plan's gauges, from the latest summary; nothing before the first attempt, only
// the failing gauge while no plan was ever computed.
void CollectPlan(const AptPlanStatus& status, metrics::Collection& out) {
  std::optional<AptPlanSummary> summary = status.Get();
  if (!summary.has_value()) return;
  out.Add("tended_agent_apt_plan_failing", {}, summary->failed ? 1 : 0);
  if (!summary->plan_time.has_value()) return;
  out.Add("tended_agent_apt_last_plan_timestamp_seconds", {}, UnixSeconds(*summary->plan_time));
  out.Add("tended_agent_apt_upgrades_planned", {}, summary->upgrades);
  out.Add("tended_agent_apt_security_upgrades_planned", {}, summary->security_upgrades);
  for (const char* reason : kKeptReasons) {
    auto it = summary->kept.find(reason);
    out.Add("tended_agent_apt_kept_back", {reason}, it != summary->kept.end() ? it->second : 0);
  }
}

// The OS upgrade's gauges: the step in flight from the journal, the last result from the
// journal's report (not yet delivered or not yet released) or else from
// last-os-upgrade.json (the last delivered one).
void CollectOsUpgrade(const tended::state::v1::AgentState* journal,
                      const std::string& last_step_path, metrics::Collection& out) {
  const bool dpkg_step = journal != nullptr && journal->step() == kDpkgStep;
  out.Add("tended_agent_os_upgrade_running", {}, dpkg_step && !journal->has_step_report() ? 1 : 0);
  tended::v1::StepReport last;
  if (dpkg_step && journal->has_step_report()) {
    last = journal->step_report();
  } else if (!ReadProtoJsonFile(last_step_path, &last).ok()) {
    return;
  }
  bool known = false;
  for (const auto& [state, name] : kResults) known = known || last.state() == state;
  if (!known) return;
  for (const auto& [state, name] : kResults) {
    out.Add("tended_agent_os_upgrade_last_result", {name}, last.state() == state ? 1 : 0);
  }
  if (last.has_end_time()) {
    out.Add("tended_agent_os_upgrade_last_end_timestamp_seconds", {},
            UnixSeconds(FromProtoTimestamp(last.end_time())));
  }
}

}  // namespace

void ConnectionTrackingClient::Observe(const absl::Status& status) {
  if (status.ok()) {
    connected_.store(true);
  } else if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    connected_.store(false);
  }
  // Any other answer came from the coordinator, which is therefore reachable.
  else {
    connected_.store(true);
  }
}

absl::StatusOr<tended::v1::ReportFactsResponse> ConnectionTrackingClient::ReportFacts(
    const tended::v1::ReportFactsRequest& request) {
  return Observe(inner_->ReportFacts(request));
}
absl::StatusOr<tended::v1::AcquireLeaseResponse> ConnectionTrackingClient::AcquireLease(
    const tended::v1::AcquireLeaseRequest& request) {
  return Observe(inner_->AcquireLease(request));
}
absl::StatusOr<tended::v1::RenewLeaseResponse> ConnectionTrackingClient::RenewLease(
    const tended::v1::RenewLeaseRequest& request) {
  return Observe(inner_->RenewLease(request));
}
absl::StatusOr<tended::v1::BeginDisruptionResponse> ConnectionTrackingClient::BeginDisruption(
    const tended::v1::BeginDisruptionRequest& request) {
  return Observe(inner_->BeginDisruption(request));
}
absl::StatusOr<tended::v1::ReleaseLeaseResponse> ConnectionTrackingClient::ReleaseLease(
    const tended::v1::ReleaseLeaseRequest& request) {
  return Observe(inner_->ReleaseLease(request));
}
absl::StatusOr<tended::v1::CancelLeaseRequestResponse> ConnectionTrackingClient::CancelLeaseRequest(
    const tended::v1::CancelLeaseRequestRequest& request) {
  return Observe(inner_->CancelLeaseRequest(request));
}
absl::StatusOr<tended::v1::ReportStepResponse> ConnectionTrackingClient::ReportStep(
    const tended::v1::ReportStepRequest& request) {
  return Observe(inner_->ReportStep(request));
}

void ConnectionTrackingClient::OpenDirectiveStream(
    const tended::v1::WatchDirectivesRequest& request,
    std::function<void(const tended::v1::Directive&)> on_directive,
    std::function<void(const absl::Status&)> on_end) {
  inner_->OpenDirectiveStream(request, std::move(on_directive),
                              [this, on_end = std::move(on_end)](const absl::Status& status) {
                                connected_.store(false);
                                on_end(status);
                              });
}

void ConnectionTrackingClient::CloseDirectiveStream() { inner_->CloseDirectiveStream(); }

void RegisterAgentMetrics(const AgentConfig& config, const RootPath& root,
                          const std::string& node_name, const ConnectionTrackingClient* connection,
                          const AptPlanStatus* plan, metrics::Registry& registry) {
  registry
      .AddGauge("tended_agent_info", "Always 1; the agent's version and node as labels.",
                {"version", "node"})
      .Set({TENDED_VERSION, node_name}, 1);
  registry
      .AddGauge("tended_agent_insecure_transport",
                "1 when the agent talks to the coordinator in plaintext (insecure: true).")
      .Set(config.insecure ? 1 : 0);
  std::vector<FamilySpec> families = {
      {"tended_agent_reboot_required",
       "1 while the reboot-required sentinel exists.",
       MetricType::kGauge,
       {}},
      {"tended_agent_lease_held",
       "1 for the lease kind the agent acts under (from its journal), 0 for the others.",
       MetricType::kGauge,
       {"kind"}},
  };
  if (connection != nullptr) {
    families.push_back({"tended_agent_coordinator_connected",
                        "1 when the coordinator answered the agent's last call.",
                        MetricType::kGauge,
                        {}});
  }
  if (plan != nullptr) {
    families.push_back({"tended_agent_apt_plan_failing",
                        "1 when the latest apt plan could not be computed.",
                        MetricType::kGauge,
                        {}});
    families.push_back({"tended_agent_apt_last_plan_timestamp_seconds",
                        "Unix time of the latest apt plan that was computed.",
                        MetricType::kGauge,
                        {}});
    families.push_back({"tended_agent_apt_upgrades_planned",
                        "Packages the latest apt plan would upgrade.",
                        MetricType::kGauge,
                        {}});
    families.push_back({"tended_agent_apt_security_upgrades_planned",
                        "Upgrades of the latest apt plan that come from a security archive.",
                        MetricType::kGauge,
                        {}});
    families.push_back({"tended_agent_apt_kept_back",
                        "Upgradable packages the latest apt plan keeps back, by reason.",
                        MetricType::kGauge,
                        {"reason"}});
  }
  if (config.apt.enabled) {
    families.push_back({"tended_agent_os_upgrade_running",
                        "1 while the dpkg step of an OS upgrade runs (journaled, no result yet).",
                        MetricType::kGauge,
                        {}});
    families.push_back({"tended_agent_os_upgrade_last_result",
                        "1 for how the last OS upgrade step ended, 0 for the other results.",
                        MetricType::kGauge,
                        {"result"}});
    families.push_back({"tended_agent_os_upgrade_last_end_timestamp_seconds",
                        "Unix time the last OS upgrade step ended.",
                        MetricType::kGauge,
                        {}});
  }
  const std::string journal_path =
      root.Resolve(absl::StrCat(config.state_dir, "/agent-state.json"));
  const std::string last_step_path =
      root.Resolve(absl::StrCat(config.state_dir, "/last-os-upgrade.json"));
  const bool os_upgrades = config.apt.enabled;
  auto facts = std::make_shared<NodeFactsReader>(root, config, node_name);
  registry.AddCollector(std::move(families), [facts, journal_path, last_step_path, os_upgrades,
                                              connection, plan](metrics::Collection& out) {
    out.Add("tended_agent_reboot_required", {}, facts->RebootRequired() ? 1 : 0);
    tended::state::v1::AgentState journal;
    // No journal yet means no lease; an unreadable one is reported by the agent itself.
    bool has_journal = ReadProtoJsonFile(journal_path, &journal).ok();
    const bool held = has_journal && journal.has_lease() && !journal.lease().id().empty() &&
                      journal.lease().phase() != tended::v1::LEASE_PHASE_RELEASED;
    for (const auto& [kind, name] : kKinds) {
      out.Add("tended_agent_lease_held", {name}, held && journal.lease().kind() == kind ? 1 : 0);
    }
    if (connection != nullptr) {
      out.Add("tended_agent_coordinator_connected", {}, connection->connected() ? 1 : 0);
    }
    if (plan != nullptr) CollectPlan(*plan, out);
    if (os_upgrades) CollectOsUpgrade(has_journal ? &journal : nullptr, last_step_path, out);
  });
}

absl::StatusOr<std::unique_ptr<AgentMetricsEndpoint>> AgentMetricsEndpoint::Start(
    const AgentConfig& config, const RootPath& root, const std::string& node_name,
    const ConnectionTrackingClient* connection, const AptPlanStatus* plan,
    const std::string& address) {
  std::unique_ptr<AgentMetricsEndpoint> endpoint(new AgentMetricsEndpoint());
  RegisterAgentMetrics(config, root, node_name, connection, plan, endpoint->registry_);
  if (!address.empty()) {
    HttpServerOptions options;
    options.tls = config.metrics_tls;
    auto server = StartMetricsServer(address, &endpoint->registry_, options);
    if (!server.ok()) return server.status();
    endpoint->server_ = *std::move(server);
    Logger("metrics")->info("serving /metrics on {} (port {}) over {}", address,
                            endpoint->server_->port(), MetricsTransport(options.tls));
  }
  return endpoint;
}

}  // namespace tended::agent
