#include "coordinator/alerts/prometheus_deprecated_api_source.h"

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "coordinator/alerts/prometheus_http.h"

namespace tended::coordinator {
namespace {

using Json = nlohmann::json;

absl::StatusOr<DeprecatedApiSeries> ParseOneSeries(const Json& item, size_t index) {
  const std::string where = absl::StrCat("data.result[", index, "]");
  if (!item.is_object()) {
    return PrometheusGarbage(
        absl::StrCat(where, " is a JSON ", item.type_name(), ", not an object"));
  }
  auto metric = item.find("metric");
  if (metric == item.end() || !metric->is_object()) {
    return PrometheusGarbage(absl::StrCat(where, " has no \"metric\" object"));
  }
  std::map<std::string, std::string> labels;
  for (const auto& [key, value] : metric->items()) {
    if (!value.is_string()) {
      return PrometheusGarbage(absl::StrCat(where, ".metric.", PrometheusPrintable(key, 64),
                                            " is a JSON ", value.type_name(), ", not a string"));
    }
    labels.emplace(key, value.get<std::string>());
  }
  if (auto name = labels.find("__name__");
      name != labels.end() && name->second != kDeprecatedApisMetric) {
    return PrometheusGarbage(absl::StrCat(where, " is a series of ", PrometheusQuoted(name->second),
                                          ", not ", kDeprecatedApisMetric));
  }
  DeprecatedApiSeries series;
  series.group = labels["group"];
  series.version = labels["version"];
  series.resource = labels["resource"];
  series.subresource = labels["subresource"];
  series.removed_release = labels["removed_release"];
  if (series.version.empty() || series.resource.empty()) {
    return PrometheusGarbage(absl::StrCat(where, " has no version or resource label"));
  }
  auto value = item.find("value");
  if (value == item.end() || !value->is_array() || value->size() != 2 || !(*value)[0].is_number() ||
      !(*value)[1].is_string()) {
    return PrometheusGarbage(
        absl::StrCat(where, " has no \"value\" of the form [time, \"number\"]"));
  }
  const std::string& text = (*value)[1].get_ref<const std::string&>();
  if (!absl::SimpleAtod(text, &series.value)) {
    return PrometheusGarbage(
        absl::StrCat(where, " has the value ", PrometheusQuoted(text), ", not a number"));
  }
  return series;
}

}  // namespace

absl::StatusOr<std::vector<DeprecatedApiSeries>> ParseDeprecatedApisResponse(
    absl::string_view body) {
  ASSIGN_OR_RETURN(Json doc, ParsePrometheusSuccess(body));
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object()) return PrometheusGarbage("no \"data\" object");
  auto type = data->find("resultType");
  if (type == data->end() || !type->is_string()) {
    return PrometheusGarbage("no data.resultType string");
  }
  if (*type != "vector") {
    return PrometheusGarbage(absl::StrCat("data.resultType is ",
                                          PrometheusQuoted(type->get_ref<const std::string&>()),
                                          ", not \"vector\" (an instant query's answer)"));
  }
  auto result = data->find("result");
  if (result == data->end() || !result->is_array()) {
    return PrometheusGarbage("no data.result array");
  }
  if (result->size() > kMaxDeprecatedApiSeries) {
    return PrometheusGarbage(absl::StrCat("data.result has ", result->size(), " series, more than ",
                                          kMaxDeprecatedApiSeries));
  }
  std::vector<DeprecatedApiSeries> series;
  series.reserve(result->size());
  for (size_t i = 0; i < result->size(); ++i) {
    ASSIGN_OR_RETURN(DeprecatedApiSeries one, ParseOneSeries((*result)[i], i));
    series.push_back(std::move(one));
  }
  return series;
}

PrometheusDeprecatedApiSource::PrometheusDeprecatedApiSource(std::string base_url,
                                                             absl::Duration timeout,
                                                             const Clock& clock,
                                                             std::shared_ptr<HttpClient> http)
    : http_(http != nullptr ? std::move(http) : DefaultHttpClient()),
      timeout_(timeout),
      clock_(clock) {
  absl::string_view base = base_url;
  while (absl::ConsumeSuffix(&base, "/")) {
  }
  // The metric name needs no escaping in a query string.
  url_ = absl::StrCat(base, "/api/v1/query?query=", kDeprecatedApisMetric);
  display_url_ = RedactUrlPassword(url_);
}

DeprecatedApiReading PrometheusDeprecatedApiSource::Fetch() {
  DeprecatedApiReading reading;
  reading.source = absl::StrCat("Prometheus (", display_url_, ")");
  absl::StatusOr<std::string> body = PrometheusGet(*http_, url_, display_url_, timeout_, nullptr);
  reading.fetched_at = clock_.Now();
  if (!body.ok()) {
    reading.status = body.status();
    return reading;
  }
  absl::StatusOr<std::vector<DeprecatedApiSeries>> series = ParseDeprecatedApisResponse(*body);
  if (!series.ok()) {
    reading.status = absl::Status(series.status().code(), absl::StrCat("GET ", display_url_, ": ",
                                                                       series.status().message()));
    return reading;
  }
  reading.series = *std::move(series);
  return reading;
}

}  // namespace tended::coordinator
