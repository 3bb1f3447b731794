// The AlertSource that asks Prometheus: GET <base>/api/v1/alerts through the HttpClient
// (common/http_client.h: proxies from the environment, never for a loopback target), read
// strictly. Anything but a well-formed success answer within the timeout becomes a non-OK
// snapshot, which the alerts gate treats as blocking (fail closed).
#ifndef TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_
#define TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/alerts/prometheus_http.h"

namespace tended::coordinator {

// Reads the body of a /api/v1/alerts answer. Requires status "success", data.alerts an
// array, and each alert an object with string labels including a non-empty alertname and a
// state of "firing" or "pending" ("inactive" ones are skipped). Anything else is
// INVALID_ARGUMENT saying what was wrong.
absl::StatusOr<std::vector<Alert>> ParsePrometheusAlertsResponse(absl::string_view body);

class PrometheusAlertSource final : public AlertSource {
 public:
  // `base_url` is Prometheus' root, e.g. "http://prometheus.monitoring:9090" (a path prefix
  // is kept). `timeout` bounds the whole request, connecting included. `clock` stamps
  // fetched_at and must outlive this. `http` null: the process's CurlHttpClient.
  PrometheusAlertSource(std::string base_url, absl::Duration timeout, const Clock& clock,
                        std::shared_ptr<HttpClient> http = nullptr);

  // Blocking for at most the timeout. Thread-compatible; separate instances may fetch
  // concurrently.
  AlertSnapshot Fetch() override;
  void CancelFetches() override;

  // The URL fetched, with any password removed (it appears in error messages).
  const std::string& display_url() const { return display_url_; }

 private:
  absl::StatusOr<std::vector<Alert>> FetchAlerts() const;

  std::shared_ptr<HttpClient> http_;
  std::string url_;
  std::string display_url_;
  absl::Duration timeout_;
  std::atomic<bool> cancelled_{false};
  const Clock& clock_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_
