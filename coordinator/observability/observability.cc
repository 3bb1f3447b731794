#include "coordinator/observability/observability.h"

#include <utility>

#include "common/logging.h"

namespace tended::coordinator {

CoordinatorObservability::CoordinatorObservability(Coordinator& coordinator, const Clock& clock)
    : coordinator_(coordinator), metrics_(coordinator, clock, registry_) {}

absl::StatusOr<std::unique_ptr<CoordinatorObservability>> CoordinatorObservability::Start(
    Coordinator& coordinator, const Clock& clock, const std::string& metrics_address,
    Notifier::Options notifier_options) {
  std::unique_ptr<CoordinatorObservability> wired(new CoordinatorObservability(coordinator, clock));
  auto notifier = Notifier::Create(coordinator.config().notifications, clock, &coordinator,
                                   &wired->registry_, std::move(notifier_options));
  if (!notifier.ok()) return notifier.status();
  wired->notifier_ = *std::move(notifier);
  CoordinatorObservability* raw = wired.get();
  coordinator.SetEventListener([raw](const tended::v1::Event& event) {
    raw->metrics_.OnEvent(event);
    raw->notifier_->OnEvent(event);
  });
  wired->notifier_->Start();
  if (!metrics_address.empty()) {
    HttpServerOptions options;
    options.tls = coordinator.config().metrics_tls;
    auto server = StartMetricsServer(metrics_address, &wired->registry_, options);
    if (!server.ok()) return server.status();  // The destructor detaches the listener.
    wired->server_ = *std::move(server);
    Logger("metrics")->info("serving /metrics on {} (port {}) over {}", metrics_address,
                            wired->server_->port(), MetricsTransport(options.tls));
  }
  if (!wired->notifier_->sinks().empty()) {
    Logger("notify")->info("notifications to {} sink(s)", wired->notifier_->sinks().size());
  }
  return wired;
}

CoordinatorObservability::~CoordinatorObservability() {
  if (server_ != nullptr) server_->Stop();
  coordinator_.SetEventListener(nullptr);
  if (notifier_ != nullptr) notifier_->Stop();
}

}  // namespace tended::coordinator
