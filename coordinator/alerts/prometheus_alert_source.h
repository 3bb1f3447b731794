// The AlertSource that asks Prometheus: GET <base>/api/v1/alerts over libcurl, read
// strictly. Anything but a well-formed success answer within the timeout becomes a non-OK
// snapshot, which the alerts gate treats as blocking (fail closed).
//
// Proxies: the usual environment variables (http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY)
// are honoured, since an in-cluster coordinator may have to reach Prometheus through one.
// A loopback target (localhost, 127.0.0.0/8, ::1) never goes through a proxy.
#ifndef TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_
#define TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alerts/alert_source.h"

namespace tended::coordinator {

// Larger answers are refused rather than read.
inline constexpr size_t kMaxPrometheusResponseBytes = 16 << 20;

// Reads the body of a /api/v1/alerts answer. Requires status "success", data.alerts an
// array, and each alert an object with string labels including a non-empty alertname and a
// state of "firing" or "pending" ("inactive" ones are skipped). Anything else is
// INVALID_ARGUMENT saying what was wrong.
absl::StatusOr<std::vector<Alert>> ParsePrometheusAlertsResponse(absl::string_view body);

class PrometheusAlertSource final : public AlertSource {
 public:
  // `base_url` is Prometheus' root, e.g. "http://prometheus.monitoring:9090" (a path prefix
  // is kept). `timeout` bounds the whole request, connecting included. `clock` stamps
  // fetched_at and must outlive this.
  PrometheusAlertSource(std::string base_url, absl::Duration timeout, const Clock& clock);

  // Blocking for at most the timeout. Thread-compatible; separate instances may fetch
  // concurrently.
  AlertSnapshot Fetch() override;

  // The URL fetched, with any password removed (it appears in error messages).
  const std::string& display_url() const { return display_url_; }

 private:
  absl::StatusOr<std::vector<Alert>> FetchAlerts() const;

  std::string url_;
  std::string display_url_;
  bool bypass_proxy_ = false;
  absl::Duration timeout_;
  const Clock& clock_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_PROMETHEUS_ALERT_SOURCE_H_
