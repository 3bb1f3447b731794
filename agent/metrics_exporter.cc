#include "agent/metrics_exporter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/node_facts.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "tended/state/v1/state.pb.h"

namespace tended::agent {
namespace {

using metrics::FamilySpec;
using metrics::MetricType;

constexpr std::pair<tended::v1::LeaseKind, const char*> kKinds[] = {
    {tended::v1::LEASE_KIND_REBOOT, "reboot"},
    {tended::v1::LEASE_KIND_OS_UPGRADE, "os_upgrade"},
    {tended::v1::LEASE_KIND_K8S_UPGRADE, "k8s_upgrade"}};

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
                          metrics::Registry& registry) {
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
  const std::string journal_path =
      root.Resolve(absl::StrCat(config.state_dir, "/agent-state.json"));
  auto facts = std::make_shared<NodeFactsReader>(root, config, node_name);
  registry.AddCollector(std::move(families), [facts, journal_path,
                                              connection](metrics::Collection& out) {
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
  });
}

absl::StatusOr<std::unique_ptr<AgentMetricsEndpoint>> AgentMetricsEndpoint::Start(
    const AgentConfig& config, const RootPath& root, const std::string& node_name,
    const ConnectionTrackingClient* connection, const std::string& address) {
  std::unique_ptr<AgentMetricsEndpoint> endpoint(new AgentMetricsEndpoint());
  RegisterAgentMetrics(config, root, node_name, connection, endpoint->registry_);
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
