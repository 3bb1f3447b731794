#include "coordinator/alerts/prometheus_alert_source.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/http_client.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

using Json = nlohmann::json;

// Deeper documents are refused: nothing Prometheus sends nests past a handful of levels.
constexpr int kMaxJsonDepth = 32;
constexpr size_t kSnippetBytes = 160;

// At most `max_bytes` of `text` as printable ASCII (other bytes as \xNN), so that whatever
// a server sent can go into a status message and from there into a proto string.
std::string Printable(absl::string_view text, size_t max_bytes) {
  std::string out;
  for (unsigned char c : text.substr(0, max_bytes)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (text.size() > max_bytes) absl::StrAppend(&out, "...");
  return out;
}

std::string Snippet(absl::string_view text) { return Printable(text, kSnippetBytes); }

absl::Status Garbage(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("Prometheus answered garbage: ", what));
}

// Parses `body` as JSON without letting an exception or a deeply nested document escape.
// On failure returns nullopt and describes the problem in `error`.
std::optional<Json> ParseJsonBounded(absl::string_view body, std::string* error) {
  bool too_deep = false;
  Json::parser_callback_t limit_depth = [&too_deep](int depth, Json::parse_event_t /*event*/,
                                                    Json& /*parsed*/) {
    if (depth <= kMaxJsonDepth) return true;
    too_deep = true;
    return false;  // Discarded, so a nesting bomb costs no memory.
  };
  try {
    Json doc = Json::parse(body.begin(), body.end(), limit_depth);
    if (too_deep) {
      *error = absl::StrCat("JSON nested deeper than ", kMaxJsonDepth, " levels");
      return std::nullopt;
    }
    return doc;
  } catch (const Json::exception& e) {
    *error = Printable(e.what(), 4 * kSnippetBytes);
    return std::nullopt;
  }
}

std::string Quoted(absl::string_view text) { return absl::StrCat("\"", Snippet(text), "\""); }

absl::StatusOr<Alert> ParseOneAlert(const Json& item, size_t index) {
  const std::string where = absl::StrCat("data.alerts[", index, "]");
  if (!item.is_object()) {
    return Garbage(absl::StrCat(where, " is a JSON ", item.type_name(), ", not an object"));
  }
  auto labels = item.find("labels");
  if (labels == item.end() || !labels->is_object()) {
    return Garbage(absl::StrCat(where, " has no \"labels\" object"));
  }
  Alert alert;
  for (const auto& [key, value] : labels->items()) {
    if (!value.is_string()) {
      return Garbage(absl::StrCat(where, ".labels.", Snippet(key), " is a JSON ", value.type_name(),
                                  ", not a string"));
    }
    alert.labels.emplace(key, value.get<std::string>());
  }
  auto name = alert.labels.find("alertname");
  if (name == alert.labels.end() || name->second.empty()) {
    return Garbage(absl::StrCat(where, " has no alertname label"));
  }
  alert.name = name->second;
  auto state = item.find("state");
  if (state == item.end() || !state->is_string()) {
    return Garbage(absl::StrCat(where, " (", Quoted(alert.name), ") has no \"state\" string"));
  }
  alert.state = state->get<std::string>();
  if (alert.state != "firing" && alert.state != "pending" && alert.state != "inactive") {
    return Garbage(
        absl::StrCat(where, " (", Quoted(alert.name), ") has unknown state ", Quoted(alert.state)));
  }
  return alert;
}

// Prometheus' error answer ({"status":"error","errorType":...,"error":...}) as text, or
// nullopt when `body` is not one.
std::optional<std::string> PrometheusErrorMessage(const Json& doc) {
  if (!doc.is_object()) return std::nullopt;
  auto status = doc.find("status");
  auto error = doc.find("error");
  if (status == doc.end() || *status != "error" || error == doc.end() || !error->is_string()) {
    return std::nullopt;
  }
  std::string message;
  auto type = doc.find("errorType");
  if (type != doc.end() && type->is_string() && !type->get_ref<const std::string&>().empty()) {
    absl::StrAppend(&message, Snippet(type->get_ref<const std::string&>()), ": ");
  }
  absl::StrAppend(&message, Snippet(error->get_ref<const std::string&>()));
  return message;
}

}  // namespace

absl::StatusOr<std::vector<Alert>> ParsePrometheusAlertsResponse(absl::string_view body) {
  if (body.empty()) return Garbage("empty body");
  if (body.size() > kMaxPrometheusResponseBytes) {
    return Garbage(absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ",
                                kMaxPrometheusResponseBytes));
  }
  std::string parse_error;
  std::optional<Json> doc = ParseJsonBounded(body, &parse_error);
  if (!doc.has_value()) {
    return Garbage(absl::StrCat("not JSON (", parse_error, "); body starts with ", Quoted(body)));
  }
  if (!doc->is_object()) {
    return Garbage(absl::StrCat("the answer is a JSON ", doc->type_name(), ", not an object"));
  }
  auto status = doc->find("status");
  if (status == doc->end() || !status->is_string()) {
    return Garbage("no \"status\" string");
  }
  if (std::optional<std::string> error = PrometheusErrorMessage(*doc); error.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("Prometheus answered an error: ", *error));
  }
  if (*status != "success") {
    return Garbage(absl::StrCat("status is ", Quoted(status->get_ref<const std::string&>()),
                                ", not \"success\""));
  }
  auto data = doc->find("data");
  if (data == doc->end() || !data->is_object()) return Garbage("no \"data\" object");
  auto alerts = data->find("alerts");
  if (alerts == data->end()) return Garbage("no data.alerts");
  if (!alerts->is_array()) {
    return Garbage(absl::StrCat("data.alerts is a JSON ", alerts->type_name(), ", not an array"));
  }
  std::vector<Alert> result;
  result.reserve(alerts->size());
  for (size_t i = 0; i < alerts->size(); ++i) {
    absl::StatusOr<Alert> alert = ParseOneAlert((*alerts)[i], i);
    if (!alert.ok()) return alert.status();
    if (alert->state == "inactive") continue;
    result.push_back(*std::move(alert));
  }
  return result;
}

PrometheusAlertSource::PrometheusAlertSource(std::string base_url, absl::Duration timeout,
                                             const Clock& clock, std::shared_ptr<HttpClient> http)
    : http_(http != nullptr ? std::move(http) : DefaultHttpClient()),
      timeout_(timeout),
      clock_(clock) {
  absl::string_view base = base_url;
  while (absl::ConsumeSuffix(&base, "/")) {
  }
  url_ = absl::StrCat(base, "/api/v1/alerts");
  display_url_ = RedactUrlPassword(url_);
}

AlertSnapshot PrometheusAlertSource::Fetch() {
  AlertSnapshot snapshot;
  absl::StatusOr<std::vector<Alert>> alerts = FetchAlerts();
  snapshot.fetched_at = clock_.Now();
  if (alerts.ok()) {
    snapshot.alerts = *std::move(alerts);
  } else {
    snapshot.status = alerts.status();
  }
  return snapshot;
}

void PrometheusAlertSource::CancelFetches() { cancelled_ = true; }

absl::StatusOr<std::vector<Alert>> PrometheusAlertSource::FetchAlerts() const {
  HttpClient::Request request;
  request.url = url_;
  request.url_for_messages = display_url_;
  request.headers = {{"Accept", "application/json"}};
  request.timeout = timeout_;
  request.max_response_bytes = kMaxPrometheusResponseBytes;
  request.accept_compressed = true;
  request.user_agent = "tended-coordinator/" TENDED_VERSION;
  request.cancel = &cancelled_;
  ASSIGN_OR_RETURN(HttpClient::Response response, http_->Send(request));

  const std::string prefix = absl::StrCat("GET ", display_url_, ": ");
  if (!response.ok()) {
    std::string detail;
    std::string ignored;
    std::optional<Json> doc = ParseJsonBounded(response.body, &ignored);
    std::optional<std::string> error =
        doc.has_value() ? PrometheusErrorMessage(*doc) : std::nullopt;
    if (error.has_value()) {
      detail = *std::move(error);
    } else if (response.body.empty()) {
      detail = "empty body";
    } else {
      detail = absl::StrCat("body starts with ", Quoted(response.body));
    }
    std::string message = absl::StrCat(prefix, "HTTP ", response.status_code, ": ", detail);
    if (response.status_code >= 500 || response.status_code == 429) {
      return absl::UnavailableError(message);
    }
    return absl::FailedPreconditionError(message);
  }

  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(response.body);
  if (!alerts.ok()) {
    return absl::Status(alerts.status().code(), absl::StrCat(prefix, alerts.status().message()));
  }
  return alerts;
}

}  // namespace tended::coordinator
