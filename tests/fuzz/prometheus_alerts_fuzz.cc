// Prometheus' /api/v1/alerts answer as the alert gate reads it, and the JSON reader under
// every Prometheus answer (its nesting limit included).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "coordinator/alerts/prometheus_alert_source.h"
#include "coordinator/alerts/prometheus_http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  (void)tended::coordinator::ParsePrometheusJson(body, &error);
  (void)tended::coordinator::ParsePrometheusSuccess(body);
  (void)tended::coordinator::ParsePrometheusAlertsResponse(body);
  return 0;
}
