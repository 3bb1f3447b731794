// Wires the coordinator's observability around a running Coordinator: the metrics registry
// and exporter, the notifier, the event listener feeding both, and the /metrics endpoint
// when an address is given. RunCoordinator owns one; destroying it stops the endpoint and
// the notifier and detaches the listener.
#ifndef TENDED_COORDINATOR_OBSERVABILITY_OBSERVABILITY_H_
#define TENDED_COORDINATOR_OBSERVABILITY_OBSERVABILITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/http_metrics_server.h"
#include "common/metrics.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/observability/metrics_exporter.h"
#include "coordinator/notify/notifier.h"

namespace tended::coordinator {

class CoordinatorObservability {
 public:
  // `metrics_address` empty: no endpoint. Notifications follow the coordinator's
  // configuration. Fails when the endpoint cannot listen.
  static absl::StatusOr<std::unique_ptr<CoordinatorObservability>> Start(
      Coordinator& coordinator, const Clock& clock, const std::string& metrics_address,
      Notifier::Options notifier_options = {});
  ~CoordinatorObservability();

  // 0 without an endpoint.
  int metrics_port() const { return server_ != nullptr ? server_->port() : 0; }
  metrics::Registry& registry() { return registry_; }
  Notifier& notifier() { return *notifier_; }

 private:
  explicit CoordinatorObservability(Coordinator& coordinator, const Clock& clock);

  Coordinator& coordinator_;
  metrics::Registry registry_;
  CoordinatorMetrics metrics_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_OBSERVABILITY_OBSERVABILITY_H_
