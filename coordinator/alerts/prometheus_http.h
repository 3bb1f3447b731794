// What every reader of Prometheus' HTTP API shares: a bounded JSON parse that never throws,
// Prometheus' error answers as text, server bytes made printable for messages, and one GET
// that turns anything but a 2xx answer into a status naming the URL and the HTTP code.
#ifndef TENDED_COORDINATOR_ALERTS_PROMETHEUS_HTTP_H_
#define TENDED_COORDINATOR_ALERTS_PROMETHEUS_HTTP_H_

#include <atomic>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/http_client.h"

namespace tended::coordinator {

// Larger answers are refused rather than read.
inline constexpr size_t kMaxPrometheusResponseBytes = kDefaultMaxHttpResponseBytes;

// At most `max_bytes` of `text` as printable ASCII (other bytes as \xNN).
std::string PrometheusPrintable(absl::string_view text, size_t max_bytes);
// A short printable quote of a server's text.
std::string PrometheusQuoted(absl::string_view text);
// INVALID_ARGUMENT "Prometheus answered garbage: <what>".
absl::Status PrometheusGarbage(absl::string_view what);

// Parses `body` as JSON, refusing documents nested deeper than 32 levels; nullopt with the
// problem in `error` instead of an exception.
std::optional<nlohmann::json> ParsePrometheusJson(absl::string_view body, std::string* error);

// Prometheus' error answer ({"status":"error","errorType":...,"error":...}) as text, or
// nullopt when `doc` is not one.
std::optional<std::string> PrometheusErrorMessage(const nlohmann::json& doc);

// The checks every API answer gets: not empty, not over the limit, JSON, an object, status
// "success" (an error answer is reported with Prometheus' words). Returns the document.
absl::StatusOr<nlohmann::json> ParsePrometheusSuccess(absl::string_view body);

// GET `url` (Accept: application/json) within `timeout`. The body of a 2xx answer;
// otherwise UNAVAILABLE (no answer, 429, 5xx) or FAILED_PRECONDITION (another code), the
// message starting "GET <display_url>: ".
absl::StatusOr<std::string> PrometheusGet(HttpClient& http, const std::string& url,
                                          const std::string& display_url, absl::Duration timeout,
                                          const std::atomic<bool>* cancel);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_PROMETHEUS_HTTP_H_
