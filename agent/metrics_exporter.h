// The agent's Prometheus metrics: whether the node needs a reboot (the sentinel), which
// lease the agent acts under (its on-disk journal, written atomically by the agent), whether
// the coordinator answers (observed on the client's calls), what the last apt plan found
// and how the last OS upgrade ended, and a build-info gauge. Read at scrape time from files,
// atomics and the locked AptPlanStatus, never from the Agent's own state, so a scrape cannot
// race the agent's thread. docs/metrics.md lists the names. Thread-safe.
#ifndef TENDED_AGENT_METRICS_EXPORTER_H_
#define TENDED_AGENT_METRICS_EXPORTER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/apt_plan_status.h"
#include "agent/config.h"
#include "agent/coordinator_client.h"
#include "common/http_metrics_server.h"
#include "common/metrics.h"
#include "common/root_path.h"

namespace tended::agent {

// Forwards every call to `inner` and remembers whether the coordinator was reachable: an
// answer (even a refusal) means connected; UNAVAILABLE, DEADLINE_EXCEEDED or the directive
// stream ending mean not.
class ConnectionTrackingClient final : public CoordinatorClient {
 public:
  explicit ConnectionTrackingClient(CoordinatorClient* inner) : inner_(inner) {}

  bool connected() const { return connected_.load(); }

  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request) override;
  absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest& request) override;
  absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest& request) override;
  absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest& request) override;
  absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest& request) override;
  absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest& request) override;
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request) override;
  void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest& request,
                           std::function<void(const tended::v1::Directive&)> on_directive,
                           std::function<void(const absl::Status&)> on_end) override;
  void CloseDirectiveStream() override;

 private:
  template <typename T>
  T Observe(T result) {
    Observe(result.status());
    return result;
  }
  void Observe(const absl::Status& status);

  CoordinatorClient* inner_;
  std::atomic<bool> connected_{false};
};

// Registers the agent's families in `registry`. `connection` may be null (then the
// connected gauge is left out), and so may `plan` (then the plan's gauges are); the OS
// upgrade families are there when config.apt.enabled. Everything must outlive the
// registry's scrapes.
void RegisterAgentMetrics(const AgentConfig& config, const RootPath& root,
                          const std::string& node_name, const ConnectionTrackingClient* connection,
                          const AptPlanStatus* plan, metrics::Registry& registry);

// A registry with the agent's metrics and, when `address` is not empty, the HTTP endpoint
// serving it.
class AgentMetricsEndpoint {
 public:
  static absl::StatusOr<std::unique_ptr<AgentMetricsEndpoint>> Start(
      const AgentConfig& config, const RootPath& root, const std::string& node_name,
      const ConnectionTrackingClient* connection, const AptPlanStatus* plan,
      const std::string& address);

  int port() const { return server_ != nullptr ? server_->port() : 0; }
  const metrics::Registry& registry() const { return registry_; }

 private:
  AgentMetricsEndpoint() = default;
  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_METRICS_EXPORTER_H_
