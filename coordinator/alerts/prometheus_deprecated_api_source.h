// The DeprecatedApiSource that asks Prometheus: an instant query for
// apiserver_requested_deprecated_apis (GET <base>/api/v1/query) through the HttpClient,
// read strictly. Anything but a well-formed vector answer within the timeout becomes a
// non-OK reading, which fails the preflight check (fail closed).
#ifndef TENDED_COORDINATOR_ALERTS_PROMETHEUS_DEPRECATED_API_SOURCE_H_
#define TENDED_COORDINATOR_ALERTS_PROMETHEUS_DEPRECATED_API_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "coordinator/alerts/deprecated_api_source.h"

namespace tended::coordinator {

inline constexpr char kDeprecatedApisMetric[] = "apiserver_requested_deprecated_apis";
// More series than this is not a real API server's answer.
inline constexpr size_t kMaxDeprecatedApiSeries = 10000;

// Reads the body of an instant query's answer: status "success", data.resultType "vector",
// data.result an array of {"metric": {string labels}, "value": [time, "number"]}. Series
// of another metric name are refused. Anything else is INVALID_ARGUMENT saying what was
// wrong.
absl::StatusOr<std::vector<DeprecatedApiSeries>> ParseDeprecatedApisResponse(
    absl::string_view body);

class PrometheusDeprecatedApiSource final : public DeprecatedApiSource {
 public:
  // `base_url` is Prometheus' root (a path prefix is kept). `timeout` bounds the request.
  // `clock` stamps fetched_at and must outlive this. `http` null: the process's client.
  PrometheusDeprecatedApiSource(std::string base_url, absl::Duration timeout, const Clock& clock,
                                std::shared_ptr<HttpClient> http = nullptr);

  DeprecatedApiReading Fetch() override;

  // The URL fetched, with any password removed.
  const std::string& display_url() const { return display_url_; }

 private:
  std::shared_ptr<HttpClient> http_;
  std::string url_;
  std::string display_url_;
  absl::Duration timeout_;
  const Clock& clock_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_PROMETHEUS_DEPRECATED_API_SOURCE_H_
