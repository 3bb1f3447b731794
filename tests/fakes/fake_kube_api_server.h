// A fake Kubernetes API server for tests: plain HTTP/1.1 on 127.0.0.1 (port chosen by the
// kernel), serving from memory exactly the calls tended's KubeClient makes: nodes (get,
// list with labelSelector, watch, merge patch with resourceVersion preconditions and 409),
// pods (list by spec.nodeName, get, delete, eviction with programmable PodDisruptionBudget
// answers), daemonsets (get) and events (create). Every write bumps the resourceVersion.
// A bearer token can be required (401 otherwise) so token rotation can be tested.
// Pod deletion delays are measured on the injected clock. Thread-safe.
#ifndef TENDED_TESTS_FAKES_FAKE_KUBE_API_SERVER_H_
#define TENDED_TESTS_FAKES_FAKE_KUBE_API_SERVER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tended::testing {

// Builders for the objects the fake keeps.
struct FakeNodeSpec {
  explicit FakeNodeSpec(std::string node_name) : name(std::move(node_name)) {}
  FakeNodeSpec& Ready(std::string status) {
    ready = std::move(status);
    return *this;
  }
  FakeNodeSpec& TransitionAt(absl::Time time) {
    ready_transition = time;
    return *this;
  }
  FakeNodeSpec& BootId(std::string id) {
    boot_id = std::move(id);
    return *this;
  }
  FakeNodeSpec& Kubelet(std::string version) {
    kubelet_version = std::move(version);
    return *this;
  }
  FakeNodeSpec& Cordoned() {
    unschedulable = true;
    return *this;
  }
  FakeNodeSpec& Label(std::string key, std::string value) {
    labels[std::move(key)] = std::move(value);
    return *this;
  }
  FakeNodeSpec& Annotation(std::string key, std::string value) {
    annotations[std::move(key)] = std::move(value);
    return *this;
  }

  std::string name;
  std::string ready = "True";  // "True", "False", "Unknown", or "" for no Ready condition.
  absl::Time ready_transition = absl::FromUnixSeconds(1767225600);
  std::string boot_id = "boot-1";
  std::string kubelet_version = "v1.30.4";
  bool unschedulable = false;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};
nlohmann::json MakeNodeJson(const FakeNodeSpec& spec);

// A pod of a ReplicaSet, Running and Ready, in "default" unless changed.
struct FakePodSpec {
  FakePodSpec(std::string pod_name, std::string node)
      : name(std::move(pod_name)), node_name(std::move(node)) {}
  FakePodSpec& Namespace(std::string ns) {
    namespace_name = std::move(ns);
    return *this;
  }
  FakePodSpec& Phase(std::string value) {
    phase = std::move(value);
    return *this;
  }
  FakePodSpec& OwnedBy(std::string kind, std::string owner) {
    controller_kind = std::move(kind);
    controller_name = std::move(owner);
    return *this;
  }
  FakePodSpec& Unmanaged() { return OwnedBy("", ""); }
  FakePodSpec& Mirror() {
    mirror = true;
    return *this;
  }
  FakePodSpec& EmptyDir() {
    empty_dir = true;
    return *this;
  }
  FakePodSpec& NotReady() {
    ready = false;
    return *this;
  }
  FakePodSpec& Label(std::string key, std::string value) {
    labels[std::move(key)] = std::move(value);
    return *this;
  }

  std::string namespace_name = "default";
  std::string name;
  std::string node_name;
  std::string phase = "Running";
  std::string controller_kind = "ReplicaSet";  // "" for an unmanaged pod.
  std::string controller_name = "app-7d4f";
  bool mirror = false;
  bool empty_dir = false;
  bool ready = true;
  std::map<std::string, std::string> labels;
};
nlohmann::json MakePodJson(const FakePodSpec& spec);

nlohmann::json MakeDaemonSetJson(const std::string& namespace_name, const std::string& name,
                                 int64_t desired, int64_t ready);

class FakeKubeApiServer {
 public:
  explicit FakeKubeApiServer(const Clock& clock = Clock::Real());
  ~FakeKubeApiServer();
  FakeKubeApiServer(const FakeKubeApiServer&) = delete;
  FakeKubeApiServer& operator=(const FakeKubeApiServer&) = delete;

  // Binds 127.0.0.1:0 and serves from a thread until Stop() or destruction.
  absl::Status Start();
  void Stop();
  std::string url() const;  // "http://127.0.0.1:<port>"

  // Requests must carry "Authorization: Bearer <token>"; empty turns the check off.
  void SetExpectedToken(const std::string& token);
  std::string last_token() const;
  int unauthorized_count() const;

  // Nodes. Writes bump the resourceVersion and reach watchers.
  void AddNode(nlohmann::json node);
  bool UpdateNode(const std::string& name, const std::function<void(nlohmann::json&)>& mutate);
  bool RemoveNode(const std::string& name);
  std::optional<nlohmann::json> GetNode(const std::string& name) const;
  // Runs `mutate` on the node just before the next PATCH of it is handled (an operator or
  // controller writing in between a client's read and its write); queued in order.
  void BeforeNextNodePatch(const std::string& name, std::function<void(nlohmann::json&)> mutate);
  // The merge patches received, in order.
  std::vector<nlohmann::json> node_patches() const;
  // Forgets the watch history: watches from an older resourceVersion get 410 Gone.
  void CompactWatchHistory();
  // Ends every open watch now (as an apiserver restart would).
  void CloseWatches();
  std::string resource_version() const;

  // Pods.
  void AddPod(nlohmann::json pod);
  std::optional<nlohmann::json> GetPod(const std::string& namespace_name,
                                       const std::string& name) const;
  bool RemovePod(const std::string& namespace_name, const std::string& name);

  struct EvictionRule {
    // 429 for `times` attempts (-1 forever), with details.retryAfterSeconds when > 0.
    static EvictionRule Block(int times, int retry_after_seconds = 0) {
      EvictionRule rule;
      rule.block_times = times;
      rule.retry_after_seconds = retry_after_seconds;
      return rule;
    }
    // 500 (more than one PDB) or 403 (with `cause`, e.g. NamespaceTerminating).
    static EvictionRule Fixed(int code, std::string cause = "") {
      EvictionRule rule;
      rule.fixed_code = code;
      rule.forbidden_cause = std::move(cause);
      return rule;
    }
    int block_times = 0;
    int retry_after_seconds = 0;
    int fixed_code = 0;
    std::string forbidden_cause;
  };
  void SetEvictionRule(const std::string& namespace_name, const std::string& name,
                       EvictionRule rule);
  // After an eviction or delete the pod stays (with a deletionTimestamp) this long on the
  // clock before it disappears; zero removes it at once.
  void SetPodDeletionDelay(absl::Duration delay);
  // "ns/name" for every eviction request, answered or not.
  std::vector<std::string> eviction_requests() const;
  std::vector<nlohmann::json> eviction_bodies() const;
  std::vector<std::string> deleted_pods() const;

  void AddDaemonSet(nlohmann::json daemon_set);

  std::vector<nlohmann::json> events() const;

  // Every answer (but watches) becomes a 200 with a body that is not JSON.
  void SetGarbageResponses(bool garbage);
  // "GET /api/v1/nodes/a", in order.
  std::vector<std::string> request_log() const;

 private:
  struct HttpRequest {
    std::string method;
    std::string path;  // Without the query.
    std::map<std::string, std::string> query;
    std::map<std::string, std::string> headers;  // Lower-case names.
    std::string body;
  };
  struct HttpResponse {
    int code = 200;
    std::string body;
  };
  struct WatchEvent {
    int64_t resource_version;
    std::string type;
    nlohmann::json object;
  };

  void AcceptLoop();
  void ServeConnection(int fd);
  void ServeWatch(int fd, const HttpRequest& request);
  HttpResponse Handle(const HttpRequest& request);

  // All below require mutex_.
  HttpResponse HandleLocked(const HttpRequest& request);
  HttpResponse NodesLocked(const HttpRequest& request, const std::string& name);
  HttpResponse PodsLocked(const HttpRequest& request, const std::string& namespace_name,
                          const std::string& name, bool eviction);
  int64_t BumpLocked(nlohmann::json& object);
  void RecordNodeEventLocked(const std::string& type, const nlohmann::json& node);
  void StartPodDeletionLocked(const std::string& key);
  void CollectDeletedPodsLocked();

  const Clock* const clock_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> connection_threads_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  int64_t watch_generation_ = 0;
  int64_t resource_version_ = 1;
  int64_t compacted_before_ = 0;
  std::string expected_token_;
  std::string last_token_;
  int unauthorized_count_ = 0;
  bool garbage_ = false;
  std::map<std::string, nlohmann::json> nodes_;
  std::map<std::string, std::deque<std::function<void(nlohmann::json&)>>> before_patch_;
  std::vector<nlohmann::json> node_patches_;
  std::vector<WatchEvent> history_;
  std::map<std::string, nlohmann::json> pods_;  // "ns/name"
  std::map<std::string, EvictionRule> eviction_rules_;
  std::map<std::string, absl::Time> pending_deletions_;
  absl::Duration deletion_delay_ = absl::ZeroDuration();
  std::vector<std::string> eviction_requests_;
  std::vector<nlohmann::json> eviction_bodies_;
  std::vector<std::string> deleted_pods_;
  std::map<std::string, nlohmann::json> daemon_sets_;
  std::vector<nlohmann::json> events_;
  std::vector<std::string> request_log_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_KUBE_API_SERVER_H_
