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
#include "coordinator/alerts/prometheus_http.h"

namespace tended::coordinator {
namespace {

using Json = nlohmann::json;

std::string Snippet(absl::string_view text) { return PrometheusPrintable(text, 160); }
std::string Quoted(absl::string_view text) { return PrometheusQuoted(text); }
absl::Status Garbage(absl::string_view what) { return PrometheusGarbage(what); }

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

}  // namespace

absl::StatusOr<std::vector<Alert>> ParsePrometheusAlertsResponse(absl::string_view body) {
  ASSIGN_OR_RETURN(Json doc, ParsePrometheusSuccess(body));
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object()) return Garbage("no \"data\" object");
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
  ASSIGN_OR_RETURN(std::string body,
                   PrometheusGet(*http_, url_, display_url_, timeout_, &cancelled_));
  const std::string prefix = absl::StrCat("GET ", display_url_, ": ");
  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(body);
  if (!alerts.ok()) {
    return absl::Status(alerts.status().code(), absl::StrCat(prefix, alerts.status().message()));
  }
  return alerts;
}

}  // namespace tended::coordinator
