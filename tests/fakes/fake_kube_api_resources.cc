// The fake Kubernetes API server's resources (fake_kube_api_server.h): the objects' JSON
// builders, the routing of a request to nodes, pods, events and daemonsets and their
// semantics (resourceVersion preconditions, evictions and their rules, deletion delays),
// and the calls tests use to set up and inspect the state.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/fakes/fake_kube_api_json.h"
#include "tests/fakes/fake_kube_api_server.h"

namespace tended::testing {

using kube_json::KubeTime;
using kube_json::MatchesLabelSelector;
using kube_json::StatusJson;
using nlohmann::json;

json MakeNodeJson(const FakeNodeSpec& spec) {
  json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", spec.name}, {"uid", "uid-" + spec.name}}},
               {"spec", json::object()},
               {"status",
                {{"nodeInfo",
                  {{"bootID", spec.boot_id},
                   {"kubeletVersion", spec.kubelet_version},
                   {"osImage", "Ubuntu 24.04 LTS"}}},
                 {"conditions", json::array()}}}};
  if (!spec.labels.empty()) node["metadata"]["labels"] = spec.labels;
  if (!spec.annotations.empty()) node["metadata"]["annotations"] = spec.annotations;
  if (spec.unschedulable) node["spec"]["unschedulable"] = true;
  node["status"]["conditions"].push_back({{"type", "MemoryPressure"},
                                          {"status", "False"},
                                          {"lastTransitionTime", KubeTime(spec.ready_transition)}});
  if (!spec.ready.empty()) {
    node["status"]["conditions"].push_back(
        {{"type", "Ready"},
         {"status", spec.ready},
         {"reason", spec.ready == "True" ? "KubeletReady" : "KubeletNotReady"},
         {"lastHeartbeatTime", KubeTime(spec.ready_transition)},
         {"lastTransitionTime", KubeTime(spec.ready_transition)}});
  }
  return node;
}

json MakePodJson(const FakePodSpec& spec) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", spec.name},
                {"namespace", spec.namespace_name},
                {"uid", absl::StrCat("uid-", spec.namespace_name, "-", spec.name)}}},
              {"spec", {{"nodeName", spec.node_name}, {"volumes", json::array()}}},
              {"status",
               {{"phase", spec.phase},
                {"conditions", {{{"type", "Ready"}, {"status", spec.ready ? "True" : "False"}}}}}}};
  if (!spec.labels.empty()) pod["metadata"]["labels"] = spec.labels;
  if (!spec.controller_kind.empty()) {
    pod["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                           {"kind", spec.controller_kind},
                                           {"name", spec.controller_name},
                                           {"uid", "owner-uid"},
                                           {"controller", true}}};
  }
  if (spec.mirror) {
    pod["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "hash"}};
  }
  pod["spec"]["volumes"].push_back({{"name", "token"}, {"projected", json::object()}});
  if (spec.empty_dir) {
    pod["spec"]["volumes"].push_back({{"name", "scratch"}, {"emptyDir", json::object()}});
  }
  return pod;
}

json MakeDaemonSetJson(const std::string& namespace_name, const std::string& name, int64_t desired,
                       int64_t ready) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", name}, {"namespace", namespace_name}}},
          {"status",
           {{"desiredNumberScheduled", desired},
            {"currentNumberScheduled", desired},
            {"numberReady", ready},
            {"numberAvailable", ready},
            {"updatedNumberScheduled", desired}}}};
}
FakeKubeApiServer::HttpResponse FakeKubeApiServer::HandleLocked(const HttpRequest& request) {
  std::vector<std::string> parts = absl::StrSplit(request.path, '/', absl::SkipEmpty());
  auto is = [&](std::initializer_list<const char*> prefix) {
    if (parts.size() < prefix.size()) return false;
    size_t i = 0;
    for (const char* p : prefix) {
      if (std::string(p) != "*" && parts[i] != p) return false;
      ++i;
    }
    return true;
  };
  // /api/v1/nodes[/name]
  if (is({"api", "v1", "nodes"}) && parts.size() <= 4) {
    return NodesLocked(request, parts.size() == 4 ? parts[3] : "");
  }
  // /api/v1/pods
  if (is({"api", "v1", "pods"}) && parts.size() == 3) return PodsLocked(request, "", "", false);
  // /api/v1/namespaces/ns/pods/name[/eviction]
  if (is({"api", "v1", "namespaces", "*", "pods", "*"}) &&
      (parts.size() == 6 || (parts.size() == 7 && parts[6] == "eviction"))) {
    return PodsLocked(request, parts[3], parts[5], parts.size() == 7);
  }
  // /api/v1/namespaces/ns/events
  if (is({"api", "v1", "namespaces", "*", "events"}) && parts.size() == 5) {
    if (request.method != "POST") return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
    json event = json::parse(request.body, nullptr, false);
    if (event.is_discarded() || !event.is_object() || !event.contains("involvedObject")) {
      return {400, StatusJson(400, "BadRequest", "not an event").dump()};
    }
    if (!event["metadata"].contains("name")) {
      if (!event["metadata"].contains("generateName")) {
        return {422, StatusJson(422, "Invalid", "name or generateName is required").dump()};
      }
      event["metadata"]["name"] =
          absl::StrCat(event["metadata"]["generateName"].get<std::string>(), "x", events_.size());
    }
    for (const json& existing : events_) {
      if (existing["metadata"]["name"] == event["metadata"]["name"]) {
        return {409, StatusJson(409, "AlreadyExists", "event already exists").dump()};
      }
    }
    BumpLocked(event);
    events_.push_back(event);
    return {201, event.dump()};
  }
  // /apis/apps/v1/namespaces/ns/daemonsets/name
  if (is({"apis", "apps", "v1", "namespaces", "*", "daemonsets", "*"}) && parts.size() == 7 &&
      request.method == "GET") {
    auto it = daemon_sets_.find(parts[4] + "/" + parts[6]);
    if (it == daemon_sets_.end()) {
      return {404, StatusJson(404, "NotFound",
                              absl::StrCat("daemonsets.apps \"", parts[6], "\" not found"))
                       .dump()};
    }
    return {200, it->second.dump()};
  }
  return {404,
          StatusJson(404, "NotFound", "the server could not find the requested resource").dump()};
}

FakeKubeApiServer::HttpResponse FakeKubeApiServer::NodesLocked(const HttpRequest& request,
                                                               const std::string& name) {
  auto not_found = [&] {
    return HttpResponse{
        404, StatusJson(404, "NotFound", absl::StrCat("nodes \"", name, "\" not found")).dump()};
  };
  if (name.empty()) {
    if (request.method != "GET") return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
    auto selector = request.query.find("labelSelector");
    json list = {{"kind", "NodeList"},
                 {"apiVersion", "v1"},
                 {"metadata", {{"resourceVersion", std::to_string(resource_version_)}}},
                 {"items", json::array()}};
    for (const auto& [node_name, node] : nodes_) {
      if (selector == request.query.end() || MatchesLabelSelector(node, selector->second)) {
        list["items"].push_back(node);
      }
    }
    return {200, list.dump()};
  }
  auto it = nodes_.find(name);
  if (request.method == "GET") {
    if (it == nodes_.end()) return not_found();
    return {200, it->second.dump()};
  }
  if (request.method != "PATCH") return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
  std::string content_type;
  if (auto ct = request.headers.find("content-type"); ct != request.headers.end()) {
    content_type = ct->second;
  }
  if (!absl::StartsWith(content_type, "application/merge-patch+json")) {
    return {415, StatusJson(415, "UnsupportedMediaType", "only merge patches here").dump()};
  }
  json patch = json::parse(request.body, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) {
    return {400, StatusJson(400, "BadRequest", "the patch is not a JSON object").dump()};
  }
  node_patches_.push_back(patch);
  if (it == nodes_.end()) return not_found();
  auto hooks = before_patch_.find(name);
  if (hooks != before_patch_.end() && !hooks->second.empty()) {
    std::function<void(json&)> hook = std::move(hooks->second.front());
    hooks->second.pop_front();
    hook(it->second);
    BumpLocked(it->second);
    RecordNodeEventLocked("MODIFIED", it->second);
  }
  json& node = it->second;
  if (patch.contains("metadata") && patch["metadata"].is_object() &&
      patch["metadata"].contains("resourceVersion")) {
    const json& wanted = patch["metadata"]["resourceVersion"];
    if (!wanted.is_string() || wanted.get<std::string>() != node["metadata"]["resourceVersion"]) {
      return {409, StatusJson(409, "Conflict",
                              absl::StrCat("Operation cannot be fulfilled on nodes \"", name,
                                           "\": the object has been modified; please apply "
                                           "your changes to the latest version and try again"))
                       .dump()};
    }
    patch["metadata"].erase("resourceVersion");
  }
  node.merge_patch(patch);
  BumpLocked(node);
  RecordNodeEventLocked("MODIFIED", node);
  return {200, node.dump()};
}

FakeKubeApiServer::HttpResponse FakeKubeApiServer::PodsLocked(const HttpRequest& request,
                                                              const std::string& namespace_name,
                                                              const std::string& name,
                                                              bool eviction) {
  if (name.empty()) {
    if (request.method != "GET") return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
    std::string node_name;
    bool by_node = false;
    if (auto field = request.query.find("fieldSelector"); field != request.query.end()) {
      absl::string_view selector = field->second;
      if (!absl::ConsumePrefix(&selector, "spec.nodeName=")) {
        return {400, StatusJson(400, "BadRequest", "unsupported fieldSelector").dump()};
      }
      node_name = std::string(selector);
      by_node = true;
    }
    auto labels = request.query.find("labelSelector");
    json list = {{"kind", "PodList"},
                 {"apiVersion", "v1"},
                 {"metadata", {{"resourceVersion", std::to_string(resource_version_)}}},
                 {"items", json::array()}};
    for (const auto& [key, pod] : pods_) {
      if (by_node && pod["spec"].value("nodeName", "") != node_name) continue;
      if (labels != request.query.end() && !MatchesLabelSelector(pod, labels->second)) continue;
      list["items"].push_back(pod);
    }
    return {200, list.dump()};
  }
  std::string key = namespace_name + "/" + name;
  auto it = pods_.find(key);
  HttpResponse not_found{
      404, StatusJson(404, "NotFound", absl::StrCat("pods \"", name, "\" not found")).dump()};
  if (eviction) {
    if (request.method != "POST") return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
    eviction_requests_.push_back(key);
    eviction_bodies_.push_back(json::parse(request.body, nullptr, false));
    if (it == pods_.end()) return not_found;
    auto rule = eviction_rules_.find(key);
    bool deleting = it->second["metadata"].contains("deletionTimestamp");
    if (rule != eviction_rules_.end() && !deleting) {
      EvictionRule& r = rule->second;
      if (r.fixed_code == 500) {
        return {500, StatusJson(500, "InternalError",
                                "This pod has more than one PodDisruptionBudget, which the "
                                "eviction subresource does not support.")
                         .dump()};
      }
      if (r.fixed_code == 403) {
        json status = StatusJson(403, "Forbidden", "forbidden");
        if (!r.forbidden_cause.empty()) {
          status["details"] = {{"causes", {{{"reason", r.forbidden_cause}}}}};
        }
        return {403, status.dump()};
      }
      if (r.block_times != 0) {
        if (r.block_times > 0) --r.block_times;
        json status = StatusJson(429, "TooManyRequests",
                                 "Cannot evict pod as it would violate the pod's disruption "
                                 "budget.");
        status["details"] = {
            {"causes",
             {{{"reason", "DisruptionBudget"},
               {"message",
                "The disruption budget pdb needs 1 healthy pods and has 1 currently"}}}}};
        if (r.retry_after_seconds > 0) {
          status["details"]["retryAfterSeconds"] = r.retry_after_seconds;
        }
        return {429, status.dump()};
      }
    }
    StartPodDeletionLocked(key);
    return {201, json({{"kind", "Status"},
                       {"apiVersion", "v1"},
                       {"metadata", json::object()},
                       {"status", "Success"}})
                     .dump()};
  }
  if (request.method == "GET") {
    if (it == pods_.end()) return not_found;
    return {200, it->second.dump()};
  }
  if (request.method == "DELETE") {
    if (it == pods_.end()) return not_found;
    deleted_pods_.push_back(key);
    json pod = it->second;
    StartPodDeletionLocked(key);
    return {200, pod.dump()};
  }
  return {405, StatusJson(405, "MethodNotAllowed", "").dump()};
}

int64_t FakeKubeApiServer::BumpLocked(json& object) {
  ++resource_version_;
  object["metadata"]["resourceVersion"] = std::to_string(resource_version_);
  return resource_version_;
}

void FakeKubeApiServer::RecordNodeEventLocked(const std::string& type, const json& node) {
  history_.push_back(WatchEvent{resource_version_, type, node});
  changed_.notify_all();
}

void FakeKubeApiServer::StartPodDeletionLocked(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  if (deletion_delay_ <= absl::ZeroDuration()) {
    pods_.erase(it);
    ++resource_version_;
    return;
  }
  if (!it->second["metadata"].contains("deletionTimestamp")) {
    it->second["metadata"]["deletionTimestamp"] = KubeTime(clock_->Now());
    BumpLocked(it->second);
    pending_deletions_[key] = clock_->Now() + deletion_delay_;
  }
}

void FakeKubeApiServer::CollectDeletedPodsLocked() {
  absl::Time now = clock_->Now();
  for (auto it = pending_deletions_.begin(); it != pending_deletions_.end();) {
    if (it->second <= now) {
      pods_.erase(it->first);
      ++resource_version_;
      it = pending_deletions_.erase(it);
    } else {
      ++it;
    }
  }
}
void FakeKubeApiServer::SetExpectedToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mutex_);
  expected_token_ = token;
}

std::string FakeKubeApiServer::last_token() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_token_;
}

int FakeKubeApiServer::unauthorized_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unauthorized_count_;
}

void FakeKubeApiServer::AddNode(json node) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string name = node["metadata"]["name"].get<std::string>();
  BumpLocked(node);
  bool existed = nodes_.count(name) > 0;
  nodes_[name] = node;
  RecordNodeEventLocked(existed ? "MODIFIED" : "ADDED", node);
}

bool FakeKubeApiServer::UpdateNode(const std::string& name,
                                   const std::function<void(json&)>& mutate) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return false;
  mutate(it->second);
  BumpLocked(it->second);
  RecordNodeEventLocked("MODIFIED", it->second);
  return true;
}

bool FakeKubeApiServer::RemoveNode(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return false;
  json node = it->second;
  nodes_.erase(it);
  ++resource_version_;
  node["metadata"]["resourceVersion"] = std::to_string(resource_version_);
  RecordNodeEventLocked("DELETED", node);
  return true;
}

std::optional<json> FakeKubeApiServer::GetNode(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

void FakeKubeApiServer::BeforeNextNodePatch(const std::string& name,
                                            std::function<void(json&)> mutate) {
  std::lock_guard<std::mutex> lock(mutex_);
  before_patch_[name].push_back(std::move(mutate));
}

std::vector<json> FakeKubeApiServer::node_patches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return node_patches_;
}

void FakeKubeApiServer::CompactWatchHistory() {
  std::lock_guard<std::mutex> lock(mutex_);
  history_.clear();
  compacted_before_ = resource_version_;
}

void FakeKubeApiServer::CloseWatches() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++watch_generation_;
  }
  changed_.notify_all();
}

std::string FakeKubeApiServer::resource_version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::to_string(resource_version_);
}

void FakeKubeApiServer::AddPod(json pod) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = absl::StrCat(pod["metadata"]["namespace"].get<std::string>(), "/",
                                 pod["metadata"]["name"].get<std::string>());
  BumpLocked(pod);
  pods_[key] = std::move(pod);
  pending_deletions_.erase(key);
}

std::optional<json> FakeKubeApiServer::GetPod(const std::string& namespace_name,
                                              const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pods_.find(namespace_name + "/" + name);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

bool FakeKubeApiServer::RemovePod(const std::string& namespace_name, const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = namespace_name + "/" + name;
  pending_deletions_.erase(key);
  if (pods_.erase(key) == 0) return false;
  ++resource_version_;
  return true;
}

void FakeKubeApiServer::SetEvictionRule(const std::string& namespace_name, const std::string& name,
                                        EvictionRule rule) {
  std::lock_guard<std::mutex> lock(mutex_);
  eviction_rules_[namespace_name + "/" + name] = rule;
}

void FakeKubeApiServer::SetPodDeletionDelay(absl::Duration delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  deletion_delay_ = delay;
}

std::vector<std::string> FakeKubeApiServer::eviction_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return eviction_requests_;
}

std::vector<json> FakeKubeApiServer::eviction_bodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return eviction_bodies_;
}

std::vector<std::string> FakeKubeApiServer::deleted_pods() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return deleted_pods_;
}

void FakeKubeApiServer::AddDaemonSet(json daemon_set) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = absl::StrCat(daemon_set["metadata"]["namespace"].get<std::string>(), "/",
                                 daemon_set["metadata"]["name"].get<std::string>());
  BumpLocked(daemon_set);
  daemon_sets_[key] = std::move(daemon_set);
}

std::vector<json> FakeKubeApiServer::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

void FakeKubeApiServer::SetGarbageResponses(bool garbage) {
  std::lock_guard<std::mutex> lock(mutex_);
  garbage_ = garbage;
}

std::vector<std::string> FakeKubeApiServer::request_log() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return request_log_;
}

}  // namespace tended::testing
