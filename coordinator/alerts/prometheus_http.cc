#include "coordinator/alerts/prometheus_http.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

using Json = nlohmann::json;

// Deeper documents are refused: nothing Prometheus sends nests past a handful of levels.
constexpr int kMaxJsonDepth = 32;
constexpr size_t kSnippetBytes = 160;

}  // namespace

std::string PrometheusPrintable(absl::string_view text, size_t max_bytes) {
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

std::string PrometheusQuoted(absl::string_view text) {
  return absl::StrCat("\"", PrometheusPrintable(text, kSnippetBytes), "\"");
}

absl::Status PrometheusGarbage(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("Prometheus answered garbage: ", what));
}

std::optional<Json> ParsePrometheusJson(absl::string_view body, std::string* error) {
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
    *error = PrometheusPrintable(e.what(), 4 * kSnippetBytes);
    return std::nullopt;
  }
}

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
    absl::StrAppend(&message,
                    PrometheusPrintable(type->get_ref<const std::string&>(), kSnippetBytes), ": ");
  }
  absl::StrAppend(&message,
                  PrometheusPrintable(error->get_ref<const std::string&>(), kSnippetBytes));
  return message;
}

absl::StatusOr<Json> ParsePrometheusSuccess(absl::string_view body) {
  if (body.empty()) return PrometheusGarbage("empty body");
  if (body.size() > kMaxPrometheusResponseBytes) {
    return PrometheusGarbage(absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ",
                                          kMaxPrometheusResponseBytes));
  }
  std::string parse_error;
  std::optional<Json> doc = ParsePrometheusJson(body, &parse_error);
  if (!doc.has_value()) {
    return PrometheusGarbage(
        absl::StrCat("not JSON (", parse_error, "); body starts with ", PrometheusQuoted(body)));
  }
  if (!doc->is_object()) {
    return PrometheusGarbage(
        absl::StrCat("the answer is a JSON ", doc->type_name(), ", not an object"));
  }
  auto status = doc->find("status");
  if (status == doc->end() || !status->is_string()) {
    return PrometheusGarbage("no \"status\" string");
  }
  if (std::optional<std::string> error = PrometheusErrorMessage(*doc); error.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("Prometheus answered an error: ", *error));
  }
  if (*status != "success") {
    return PrometheusGarbage(absl::StrCat("status is ",
                                          PrometheusQuoted(status->get_ref<const std::string&>()),
                                          ", not \"success\""));
  }
  return *std::move(doc);
}

absl::StatusOr<std::string> PrometheusGet(HttpClient& http, const std::string& url,
                                          const std::string& display_url, absl::Duration timeout,
                                          const std::atomic<bool>* cancel) {
  HttpClient::Request request;
  request.url = url;
  request.url_for_messages = display_url;
  request.headers = {{"Accept", "application/json"}};
  request.timeout = timeout;
  request.max_response_bytes = kMaxPrometheusResponseBytes;
  request.accept_compressed = true;
  request.user_agent = "tended-coordinator/" TENDED_VERSION;
  request.cancel = cancel;
  ASSIGN_OR_RETURN(HttpClient::Response response, http.Send(request));
  if (response.ok()) return std::move(response.body);

  std::string detail;
  std::string ignored;
  std::optional<Json> doc = ParsePrometheusJson(response.body, &ignored);
  std::optional<std::string> error = doc.has_value() ? PrometheusErrorMessage(*doc) : std::nullopt;
  if (error.has_value()) {
    detail = *std::move(error);
  } else if (response.body.empty()) {
    detail = "empty body";
  } else {
    detail = absl::StrCat("body starts with ", PrometheusQuoted(response.body));
  }
  std::string message =
      absl::StrCat("GET ", display_url, ": HTTP ", response.status_code, ": ", detail);
  if (response.status_code >= 500 || response.status_code == 429) {
    return absl::UnavailableError(message);
  }
  return absl::FailedPreconditionError(message);
}

}  // namespace tended::coordinator
