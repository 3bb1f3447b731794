#include "coordinator/kube/http_kube_client.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/kube/kube_json.h"

namespace tended::kube {
namespace {

using nlohmann::json;

std::string Escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string PodPath(const std::string& namespace_name, const std::string& name) {
  return absl::StrCat("/api/v1/namespaces/", Escape(namespace_name), "/pods/", Escape(name));
}

// The `message` of a Kubernetes Status body, or an excerpt of whatever the body is.
std::string ServerMessage(const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded() && parsed.is_object()) {
    auto it = parsed.find("message");
    if (it != parsed.end() && it->is_string()) return it->get<std::string>();
  }
  return body.substr(0, 200);
}

// The streaming state of one watch.
struct WatchState {
  const NodeWatchCallback* callback = nullptr;
  std::string buffer;
  bool stopped = false;  // By the callback.
  absl::Status error;    // A garbled line or an ERROR event.
  std::string last_resource_version;
  std::string url;
};

// One line of a watch stream: {"type":"MODIFIED","object":{...}}. False ends the watch.
bool HandleWatchLine(WatchState& state, absl::string_view line) {
  if (absl::StripAsciiWhitespace(line).empty()) return true;
  absl::StatusOr<json> event = ParseJsonBody(line, absl::StrCat("watch ", state.url));
  if (!event.ok()) {
    state.error = event.status();
    return false;
  }
  if (!event->is_object() || !event->contains("type") || !(*event)["type"].is_string() ||
      !event->contains("object")) {
    state.error = absl::InvalidArgumentError(
        absl::StrCat("watch ", state.url, ": an event without type and object"));
    return false;
  }
  std::string type = (*event)["type"].get<std::string>();
  const json& object = (*event)["object"];
  if (type == "ERROR") {
    int64_t code = 0;
    std::string message;
    if (object.is_object()) {
      if (object.contains("code") && object["code"].is_number_integer()) {
        code = object["code"].get<int64_t>();
      }
      if (object.contains("message") && object["message"].is_string()) {
        message = object["message"].get<std::string>();
      }
    }
    std::string text =
        absl::StrCat("watch ", state.url, ": error event (code ", code, "): ", message);
    state.error = code == 410 ? absl::OutOfRangeError(text) : absl::UnavailableError(text);
    return false;
  }
  NodeWatchEvent out;
  if (type == "ADDED") {
    out.type = WatchEventType::kAdded;
  } else if (type == "MODIFIED") {
    out.type = WatchEventType::kModified;
  } else if (type == "DELETED") {
    out.type = WatchEventType::kDeleted;
  } else if (type == "BOOKMARK") {
    out.type = WatchEventType::kBookmark;
  } else {
    state.error = absl::InvalidArgumentError(
        absl::StrCat("watch ", state.url, ": unknown event type \"", type, "\""));
    return false;
  }
  if (out.type == WatchEventType::kBookmark) {
    try {
      state.last_resource_version = object.at("metadata").at("resourceVersion").get<std::string>();
    } catch (const json::exception& e) {
      state.error = absl::InvalidArgumentError(
          absl::StrCat("watch ", state.url, ": a bookmark without resourceVersion"));
      return false;
    }
    return true;
  }
  absl::StatusOr<NodeInfo> node = NodeFromJson(object);
  if (!node.ok()) {
    state.error = absl::InvalidArgumentError(
        absl::StrCat("watch ", state.url, ": ", node.status().message()));
    return false;
  }
  state.last_resource_version = node->resource_version;
  out.node = *std::move(node);
  return (*state.callback)(out);
}

// A piece of a watch stream; false ends the watch.
bool HandleWatchPiece(WatchState& state, absl::string_view piece) {
  state.buffer.append(piece.data(), piece.size());
  // Bounded by the bytes received: each pass consumes one line.
  size_t newline;
  while ((newline = state.buffer.find('\n')) != std::string::npos) {
    std::string line = state.buffer.substr(0, newline);
    state.buffer.erase(0, newline + 1);
    if (!HandleWatchLine(state, line)) {
      if (state.error.ok()) state.stopped = true;
      return false;
    }
  }
  return true;
}

// The contract of kube_client.h: a request that got no answer is UNAVAILABLE.
absl::Status NoAnswer(const absl::Status& status) {
  return absl::UnavailableError(status.message());
}

}  // namespace

HttpKubeClient::HttpKubeClient(KubeConnection connection, const KubeClientOptions& options,
                               std::shared_ptr<HttpClient> http)
    : http_(http != nullptr ? std::move(http) : DefaultHttpClient()),
      connection_(std::move(connection)),
      clock_(options.clock),
      request_timeout_(options.request_timeout),
      connect_timeout_(options.connect_timeout),
      user_agent_(options.user_agent),
      token_source_(connection_.token_file.empty()
                        ? TokenSource(connection_.token)
                        : TokenSource(connection_.token_file, *options.clock,
                                      options.token_reread_interval)) {}

absl::StatusOr<std::unique_ptr<HttpKubeClient>> HttpKubeClient::Create(
    const KubeClientOptions& options, std::shared_ptr<HttpClient> http) {
  ASSIGN_OR_RETURN(KubeConnection connection, ResolveKubeConnection(options));
  return FromConnection(std::move(connection), options, std::move(http));
}

absl::StatusOr<std::unique_ptr<HttpKubeClient>> HttpKubeClient::FromConnection(
    KubeConnection connection, const KubeClientOptions& options, std::shared_ptr<HttpClient> http) {
  if (!absl::StartsWith(connection.server, "https://") &&
      !absl::StartsWith(connection.server, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the API server must be an http(s) URL, got \"", connection.server, "\""));
  }
  while (absl::EndsWith(connection.server, "/")) connection.server.pop_back();
  if (options.clock == nullptr) return absl::InvalidArgumentError("KubeClientOptions.clock");
  auto client = std::unique_ptr<HttpKubeClient>(
      new HttpKubeClient(std::move(connection), options, std::move(http)));
  // Fail early on an unreadable token file rather than at the first request.
  RETURN_IF_ERROR(client->token_source_.Token().status());
  Logger("kube")->info("Kubernetes API at {} ({})", client->connection_.server,
                       client->connection_.source);
  return client;
}

HttpClient::Request HttpKubeClient::BaseRequest(const std::string& method, const std::string& path,
                                                const std::string& token,
                                                absl::Duration timeout) const {
  HttpClient::Request request;
  request.method = method;
  request.url = Url(path);
  request.headers = {{"Accept", "application/json"}};
  if (!token.empty()) request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", token));
  request.timeout = timeout;
  request.connect_timeout = connect_timeout_;
  request.user_agent = user_agent_;
  request.max_response_bytes = kMaxKubeResponseBytes;
  request.tls.ca_file = connection_.ca_file;
  request.tls.ca_pem = connection_.ca_data;
  request.tls.client_certificate_file = connection_.client_certificate_file;
  request.tls.client_certificate_pem = connection_.client_certificate_data;
  request.tls.client_key_file = connection_.client_key_file;
  request.tls.client_key_pem = connection_.client_key_data;
  request.tls.insecure_skip_verify = connection_.insecure_skip_tls_verify;
  return request;
}

absl::StatusOr<HttpKubeClient::Response> HttpKubeClient::SendOnce(const Request& request,
                                                                  const std::string& token) {
  HttpClient::Request http = BaseRequest(request.method, request.path, token, request_timeout_);
  if (!request.content_type.empty())
    http.headers.emplace_back("Content-Type", request.content_type);
  http.body = request.body;
  absl::StatusOr<HttpClient::Response> answer = http_->Send(http);
  if (!answer.ok()) return NoAnswer(answer.status());
  Response response;
  response.code = answer->status_code;
  response.body = std::move(answer->body);
  response.retry_after_header = answer->Header("retry-after");
  return response;
}

absl::StatusOr<HttpKubeClient::Response> HttpKubeClient::Send(const Request& request) {
  ASSIGN_OR_RETURN(std::string token, token_source_.Token());
  ASSIGN_OR_RETURN(Response response, SendOnce(request, token));
  if (response.code == 401 && token_source_.RefreshAfterUnauthorized()) {
    ASSIGN_OR_RETURN(token, token_source_.Token());
    ASSIGN_OR_RETURN(response, SendOnce(request, token));
  }
  return response;
}

absl::Status HttpKubeClient::ErrorFor(const Request& request, const Response& response) const {
  std::string text = absl::StrCat(request.method, " ", Url(request.path), ": HTTP ", response.code,
                                  ": ", ServerMessage(response.body));
  switch (response.code) {
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::AbortedError(text);
    case 410:
      return absl::OutOfRangeError(text);
    default:
      return absl::UnavailableError(text);
  }
}

absl::StatusOr<NodeInfo> HttpKubeClient::GetNode(const std::string& name) {
  Request request("GET", absl::StrCat("/api/v1/nodes/", Escape(name)));
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  ASSIGN_OR_RETURN(json body,
                   ParseJsonBody(response.body, absl::StrCat("GET ", Url(request.path))));
  absl::StatusOr<NodeInfo> node = NodeFromJson(body);
  if (!node.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("GET ", Url(request.path), ": ", node.status().message()));
  }
  return node;
}

absl::StatusOr<KubeClient::NodeList> HttpKubeClient::ListNodes(const std::string& label_selector) {
  Request request("GET", "/api/v1/nodes");
  if (!label_selector.empty()) {
    absl::StrAppend(&request.path, "?labelSelector=", Escape(label_selector));
  }
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  std::string what = absl::StrCat("GET ", Url(request.path));
  ASSIGN_OR_RETURN(json body, ParseJsonBody(response.body, what));
  NodeList list;
  if (!body.is_object() || !body.contains("items") ||
      !(body["items"].is_array() || body["items"].is_null())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a list (no items array)"));
  }
  if (body.contains("metadata") && body["metadata"].is_object() &&
      body["metadata"].contains("resourceVersion") &&
      body["metadata"]["resourceVersion"].is_string()) {
    list.resource_version = body["metadata"]["resourceVersion"].get<std::string>();
  }
  if (body["items"].is_array()) {
    for (const json& item : body["items"]) {
      absl::StatusOr<NodeInfo> node = NodeFromJson(item);
      if (!node.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", node.status().message()));
      }
      list.nodes.push_back(*std::move(node));
    }
  }
  return list;
}

absl::StatusOr<std::string> HttpKubeClient::WatchNodes(const NodeWatchOptions& options,
                                                       const NodeWatchCallback& callback) {
  int64_t timeout_seconds = std::max<int64_t>(1, absl::ToInt64Seconds(options.timeout));
  std::string path = absl::StrCat("/api/v1/nodes?watch=true&timeoutSeconds=", timeout_seconds);
  if (!options.resource_version.empty()) {
    absl::StrAppend(&path, "&resourceVersion=", Escape(options.resource_version));
  }
  if (!options.label_selector.empty()) {
    absl::StrAppend(&path, "&labelSelector=", Escape(options.label_selector));
  }
  ASSIGN_OR_RETURN(std::string token, token_source_.Token());
  // The server ends the watch; the client waits a little longer.
  HttpClient::Request http =
      BaseRequest("GET", path, token, absl::Seconds(timeout_seconds) + absl::Seconds(10));
  http.cancel = options.cancel;
  WatchState state;
  state.callback = &callback;
  state.last_resource_version = options.resource_version;
  state.url = http.url;
  http.on_body = [&state](absl::string_view piece) { return HandleWatchPiece(state, piece); };
  absl::StatusOr<HttpClient::Response> answer = http_->Send(http);
  if (!state.error.ok()) return state.error;
  if (state.stopped) return state.last_resource_version;
  if (!answer.ok()) {
    if (absl::IsCancelled(answer.status()) && options.cancel != nullptr && options.cancel->load()) {
      return state.last_resource_version;
    }
    // Past its time the watch simply ends, like one the server closes.
    if (!absl::IsDeadlineExceeded(answer.status())) return NoAnswer(answer.status());
  } else if (!answer->ok()) {
    if (answer->status_code == 401) token_source_.RefreshAfterUnauthorized();
    Response response;
    response.code = answer->status_code;
    response.body = std::move(answer->body);
    return ErrorFor(Request("GET", path), response);
  }
  if (!state.buffer.empty() && !HandleWatchLine(state, state.buffer) && !state.error.ok()) {
    return state.error;
  }
  return state.last_resource_version;
}

absl::StatusOr<NodeInfo> HttpKubeClient::PatchNodeMerge(
    const std::string& name, const std::string& merge_patch_json,
    const std::optional<std::string>& resource_version) {
  json patch = json::parse(merge_patch_json, nullptr, /*allow_exceptions=*/false);
  if (patch.is_discarded() || !patch.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a merge patch must be a JSON object, got: ", merge_patch_json));
  }
  if (resource_version.has_value()) {
    if (!patch.contains("metadata") || !patch["metadata"].is_object()) {
      patch["metadata"] = json::object();
    }
    patch["metadata"]["resourceVersion"] = *resource_version;
  }
  Request request("PATCH", absl::StrCat("/api/v1/nodes/", Escape(name)), ToJsonText(patch),
                  "application/merge-patch+json");
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  std::string what = absl::StrCat("PATCH ", Url(request.path));
  ASSIGN_OR_RETURN(json body, ParseJsonBody(response.body, what));
  absl::StatusOr<NodeInfo> node = NodeFromJson(body);
  if (!node.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", node.status().message()));
  }
  return node;
}

absl::StatusOr<std::vector<PodInfo>> HttpKubeClient::ListPods(const PodListOptions& options) {
  Request request("GET", "/api/v1/pods");
  std::string separator = "?";
  if (!options.node_name.empty()) {
    absl::StrAppend(&request.path, separator,
                    "fieldSelector=", Escape(absl::StrCat("spec.nodeName=", options.node_name)));
    separator = "&";
  }
  if (!options.label_selector.empty()) {
    absl::StrAppend(&request.path, separator, "labelSelector=", Escape(options.label_selector));
  }
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  std::string what = absl::StrCat("GET ", Url(request.path));
  ASSIGN_OR_RETURN(json body, ParseJsonBody(response.body, what));
  if (!body.is_object() || !body.contains("items") ||
      !(body["items"].is_array() || body["items"].is_null())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a list (no items array)"));
  }
  std::vector<PodInfo> pods;
  if (body["items"].is_array()) {
    for (const json& item : body["items"]) {
      absl::StatusOr<PodInfo> pod = PodFromJson(item);
      if (!pod.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", pod.status().message()));
      }
      pods.push_back(*std::move(pod));
    }
  }
  return pods;
}

absl::StatusOr<PodInfo> HttpKubeClient::GetPod(const std::string& namespace_name,
                                               const std::string& name) {
  Request request("GET", PodPath(namespace_name, name));
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  std::string what = absl::StrCat("GET ", Url(request.path));
  ASSIGN_OR_RETURN(json body, ParseJsonBody(response.body, what));
  absl::StatusOr<PodInfo> pod = PodFromJson(body);
  if (!pod.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", pod.status().message()));
  }
  return pod;
}

absl::StatusOr<EvictionResult> HttpKubeClient::EvictPod(
    const std::string& namespace_name, const std::string& name,
    std::optional<absl::Duration> grace_period) {
  json eviction = {{"apiVersion", "policy/v1"},
                   {"kind", "Eviction"},
                   {"metadata", {{"name", name}, {"namespace", namespace_name}}}};
  if (grace_period.has_value()) {
    eviction["deleteOptions"] = {{"gracePeriodSeconds", absl::ToInt64Seconds(*grace_period)}};
  }
  Request request("POST", absl::StrCat(PodPath(namespace_name, name), "/eviction"),
                  ToJsonText(eviction), "application/json");
  ASSIGN_OR_RETURN(Response response, Send(request));
  EvictionResult result;
  result.message = ServerMessage(response.body);
  if (response.code / 100 == 2) {
    result.outcome = EvictionOutcome::kEvicted;
    return result;
  }
  json status = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  const json* details = nullptr;
  if (!status.is_discarded() && status.is_object() && status.contains("details") &&
      status["details"].is_object()) {
    details = &status["details"];
  }
  switch (response.code) {
    case 404:
      result.outcome = EvictionOutcome::kNotFound;
      return result;
    case 429: {
      result.outcome = EvictionOutcome::kBlockedByPdb;
      int64_t seconds = 0;
      if (details != nullptr && details->contains("retryAfterSeconds") &&
          (*details)["retryAfterSeconds"].is_number_integer()) {
        seconds = (*details)["retryAfterSeconds"].get<int64_t>();
      } else if (!response.retry_after_header.empty()) {
        if (!absl::SimpleAtoi(response.retry_after_header, &seconds)) seconds = 0;
      }
      if (seconds > 0) result.retry_after = absl::Seconds(seconds);
      return result;
    }
    case 500:
      if (absl::StrContains(result.message, "DisruptionBudget")) {
        result.outcome = EvictionOutcome::kTooManyPdbs;
        return result;
      }
      break;
    case 403: {
      result.outcome = EvictionOutcome::kForbidden;
      if (details != nullptr && details->contains("causes") && (*details)["causes"].is_array()) {
        for (const json& cause : (*details)["causes"]) {
          if (cause.is_object() && cause.value("reason", json()).is_string() &&
              cause["reason"].get<std::string>() == "NamespaceTerminating") {
            result.outcome = EvictionOutcome::kNamespaceTerminating;
          }
        }
      }
      return result;
    }
    default:
      break;
  }
  return ErrorFor(request, response);
}

absl::Status HttpKubeClient::DeletePod(const std::string& namespace_name, const std::string& name,
                                       std::optional<absl::Duration> grace_period) {
  Request request("DELETE", PodPath(namespace_name, name));
  if (grace_period.has_value()) {
    json options = {{"apiVersion", "v1"},
                    {"kind", "DeleteOptions"},
                    {"gracePeriodSeconds", absl::ToInt64Seconds(*grace_period)}};
    request.body = ToJsonText(options);
    request.content_type = "application/json";
  }
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  return absl::OkStatus();
}

absl::Status HttpKubeClient::CreateNodeEvent(const std::string& node, const std::string& reason,
                                             const std::string& message, const std::string& type) {
  absl::Time now = clock_->Now();
  // Events about cluster-scoped objects live in "default"; the server completes the name
  // ("<node>.<suffix>") so two events in the same instant cannot collide.
  json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"generateName", node + "."}, {"namespace", "default"}}},
      {"involvedObject", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", node}}},
      {"reason", reason},
      {"message", message},
      {"type", type},
      {"source", {{"component", user_agent_}}},
      {"reportingComponent", user_agent_},
      {"firstTimestamp", FormatKubeTime(now)},
      {"lastTimestamp", FormatKubeTime(now)},
      {"count", 1}};
  Request request("POST", "/api/v1/namespaces/default/events", ToJsonText(event),
                  "application/json");
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  return absl::OkStatus();
}

absl::StatusOr<DaemonSetInfo> HttpKubeClient::GetDaemonSet(const std::string& namespace_name,
                                                           const std::string& name) {
  Request request("GET", absl::StrCat("/apis/apps/v1/namespaces/", Escape(namespace_name),
                                      "/daemonsets/", Escape(name)));
  ASSIGN_OR_RETURN(Response response, Send(request));
  if (response.code / 100 != 2) return ErrorFor(request, response);
  std::string what = absl::StrCat("GET ", Url(request.path));
  ASSIGN_OR_RETURN(json body, ParseJsonBody(response.body, what));
  absl::StatusOr<DaemonSetInfo> ds = DaemonSetFromJson(body);
  if (!ds.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", ds.status().message()));
  }
  return ds;
}

}  // namespace tended::kube
