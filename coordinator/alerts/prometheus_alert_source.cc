#include "coordinator/alerts/prometheus_alert_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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

absl::Status EnsureCurlInitialized() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(result)));
  }
  return absl::OkStatus();
}

struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlEasyDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};

bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  return absl::StartsWith(host, "127.") && std::all_of(host.begin(), host.end(), [](char c) {
           return c == '.' || (c >= '0' && c <= '9');
         });
}

struct ParsedUrl {
  std::string display;
  bool loopback = false;
};

ParsedUrl InspectUrl(const std::string& url) {
  ParsedUrl parsed{url, false};
  std::unique_ptr<CURLU, CurlUrlDeleter> handle(curl_url());
  if (handle == nullptr || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return parsed;
  }
  char* host = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    std::unique_ptr<char, CurlStringDeleter> owned(host);
    parsed.loopback = IsLoopbackHost(host);
  }
  char* password = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
    curl_free(password);
    char* redacted = nullptr;
    if (curl_url_set(handle.get(), CURLUPART_PASSWORD, "REDACTED", 0) == CURLUE_OK &&
        curl_url_get(handle.get(), CURLUPART_URL, &redacted, 0) == CURLUE_OK) {
      std::unique_ptr<char, CurlStringDeleter> owned(redacted);
      parsed.display = redacted;
    } else {
      parsed.display = "(unprintable URL)";
    }
  }
  return parsed;
}

struct ResponseBody {
  std::string data;
  bool too_large = false;
};

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<ResponseBody*>(user);
  const size_t bytes = size * count;
  if (bytes > kMaxPrometheusResponseBytes - body->data.size()) {
    body->too_large = true;
    return 0;  // Makes curl stop with CURLE_WRITE_ERROR.
  }
  body->data.append(data, bytes);
  return bytes;
}

template <typename Value>
absl::Status SetOption(CURL* curl, CURLoption option, Value value, absl::string_view name) {
  CURLcode code = curl_easy_setopt(curl, option, value);
  if (code != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_easy_setopt(", name, ") failed: ", curl_easy_strerror(code)));
  }
  return absl::OkStatus();
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
                                             const Clock& clock)
    : timeout_(timeout), clock_(clock) {
  absl::string_view base = base_url;
  while (absl::ConsumeSuffix(&base, "/")) {
  }
  url_ = absl::StrCat(base, "/api/v1/alerts");
  if (EnsureCurlInitialized().ok()) {
    ParsedUrl parsed = InspectUrl(url_);
    display_url_ = std::move(parsed.display);
    bypass_proxy_ = parsed.loopback;
  } else {
    display_url_ = url_;
  }
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

absl::StatusOr<std::vector<Alert>> PrometheusAlertSource::FetchAlerts() const {
  RETURN_IF_ERROR(EnsureCurlInitialized());
  std::unique_ptr<CURL, CurlEasyDeleter> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();

  const long timeout_ms =
      static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout_)));
  ResponseBody body;
  char error_buffer[CURL_ERROR_SIZE] = {};
  std::unique_ptr<curl_slist, CurlListDeleter> headers(
      curl_slist_append(nullptr, "Accept: application/json"));
  if (headers == nullptr) return absl::ResourceExhaustedError("curl_slist_append failed");

  RETURN_IF_ERROR(SetOption(c, CURLOPT_URL, url_.c_str(), "URL"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_HTTPGET, 1L, "HTTPGET"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_PROTOCOLS_STR, "http,https", "PROTOCOLS_STR"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_NOSIGNAL, 1L, "NOSIGNAL"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_TIMEOUT_MS, timeout_ms, "TIMEOUT_MS"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms, "CONNECTTIMEOUT_MS"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_MAXFILESIZE_LARGE,
                            static_cast<curl_off_t>(kMaxPrometheusResponseBytes),
                            "MAXFILESIZE_LARGE"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_ACCEPT_ENCODING, "", "ACCEPT_ENCODING"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_HTTPHEADER, headers.get(), "HTTPHEADER"));
  RETURN_IF_ERROR(
      SetOption(c, CURLOPT_USERAGENT, "tended-coordinator/" TENDED_VERSION, "USERAGENT"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_WRITEFUNCTION, &AppendBody, "WRITEFUNCTION"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_WRITEDATA, static_cast<void*>(&body), "WRITEDATA"));
  RETURN_IF_ERROR(SetOption(c, CURLOPT_ERRORBUFFER, error_buffer, "ERRORBUFFER"));
  if (bypass_proxy_) RETURN_IF_ERROR(SetOption(c, CURLOPT_NOPROXY, "*", "NOPROXY"));

  const std::string prefix = absl::StrCat("GET ", display_url_, ": ");
  CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    switch (code) {
      case CURLE_OPERATION_TIMEDOUT:
        return absl::DeadlineExceededError(absl::StrCat(prefix, "no complete answer within ",
                                                        absl::FormatDuration(timeout_), " (",
                                                        detail, ")"));
      case CURLE_FILESIZE_EXCEEDED:
        return absl::ResourceExhaustedError(
            absl::StrCat(prefix, "answer larger than ", kMaxPrometheusResponseBytes, " bytes"));
      case CURLE_WRITE_ERROR:
        if (body.too_large) {
          return absl::ResourceExhaustedError(
              absl::StrCat(prefix, "answer larger than ", kMaxPrometheusResponseBytes, " bytes"));
        }
        return absl::UnavailableError(absl::StrCat(prefix, detail));
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(absl::StrCat(prefix, detail));
      default:
        return absl::UnavailableError(absl::StrCat(prefix, detail));
    }
  }

  long http_status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http_status);
  if (http_status < 200 || http_status > 299) {
    std::string detail;
    std::string ignored;
    std::optional<Json> doc = ParseJsonBounded(body.data, &ignored);
    std::optional<std::string> error =
        doc.has_value() ? PrometheusErrorMessage(*doc) : std::nullopt;
    if (error.has_value()) {
      detail = *std::move(error);
    } else if (body.data.empty()) {
      detail = "empty body";
    } else {
      detail = absl::StrCat("body starts with ", Quoted(body.data));
    }
    std::string message = absl::StrCat(prefix, "HTTP ", http_status, ": ", detail);
    if (http_status >= 500 || http_status == 429) return absl::UnavailableError(message);
    return absl::FailedPreconditionError(message);
  }

  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(body.data);
  if (!alerts.ok()) {
    return absl::Status(alerts.status().code(), absl::StrCat(prefix, alerts.status().message()));
  }
  return alerts;
}

}  // namespace tended::coordinator
