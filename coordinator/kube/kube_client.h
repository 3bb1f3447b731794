// The coordinator's view of the Kubernetes API: the few calls it needs for cordon, drain,
// node verification, node marks and gate facts, behind an interface so the logic above it
// can run against a fake. HttpKubeClient (http_kube_client.h) is the real implementation.
//
// Status codes every implementation uses: NOT_FOUND for 404, ABORTED for a 409 conflict (a
// stale resourceVersion precondition), UNAUTHENTICATED for 401, PERMISSION_DENIED for 403,
// UNAVAILABLE for transport failures and other HTTP errors (the message names the method,
// the URL and the HTTP code), INVALID_ARGUMENT for a body that is not the JSON expected.
// Implementations are thread-safe.
#ifndef TENDED_COORDINATOR_KUBE_KUBE_CLIENT_H_
#define TENDED_COORDINATOR_KUBE_KUBE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tended::kube {

enum class ConditionStatus { kUnknown, kTrue, kFalse };

absl::string_view ConditionStatusName(ConditionStatus status);  // "True", "False", "Unknown"

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute

  bool operator==(const Taint&) const = default;
};

struct NodeInfo {
  std::string name;
  std::string uid;
  std::string resource_version;
  bool unschedulable = false;
  // The Ready condition; kUnknown with InfinitePast() when the node reports none.
  ConditionStatus ready = ConditionStatus::kUnknown;
  absl::Time ready_last_transition = absl::InfinitePast();
  std::string ready_reason;
  std::string boot_id;          // status.nodeInfo.bootID
  std::string kubelet_version;  // status.nodeInfo.kubeletVersion, "v1.30.4"
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<Taint> taints;
};

struct PodInfo {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string node_name;
  std::string phase;  // Pending, Running, Succeeded, Failed, Unknown
  // The owner reference with controller=true; empty kind when the pod has none.
  std::string controller_kind;
  std::string controller_name;
  bool is_mirror = false;      // Carries the kubernetes.io/config.mirror annotation.
  bool has_empty_dir = false;  // Mounts an emptyDir volume.
  bool ready = false;          // The pod's Ready condition is True.
  std::optional<absl::Time> deletion_timestamp;
  std::map<std::string, std::string> labels;

  bool IsTerminal() const { return phase == "Succeeded" || phase == "Failed"; }
  std::string FullName() const { return namespace_name + "/" + name; }
};

struct DaemonSetInfo {
  std::string namespace_name;
  std::string name;
  int64_t desired_number_scheduled = 0;
  int64_t current_number_scheduled = 0;
  int64_t number_ready = 0;
  int64_t number_available = 0;
  int64_t updated_number_scheduled = 0;
};

// What the Eviction API said about one pod.
enum class EvictionOutcome {
  kEvicted,               // 2xx: the pod is being deleted.
  kNotFound,              // 404: the pod is already gone.
  kBlockedByPdb,          // 429: a PodDisruptionBudget (or rate limiting) says not now.
  kTooManyPdbs,           // 500: more than one PodDisruptionBudget selects the pod.
  kNamespaceTerminating,  // 403 with cause NamespaceTerminating: it goes away by itself.
  kForbidden,             // Any other 403.
};

absl::string_view EvictionOutcomeName(EvictionOutcome outcome);

struct EvictionResult {
  EvictionOutcome outcome = EvictionOutcome::kEvicted;
  // From the 429's retryAfterSeconds (or Retry-After header) when the server sent one.
  std::optional<absl::Duration> retry_after;
  std::string message;  // The server's message, for the operator.
};

struct PodListOptions {
  std::string node_name;  // Empty: every node.
  std::string label_selector;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

struct NodeWatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  NodeInfo node;
};

struct NodeWatchOptions {
  // Start after this resourceVersion (from a list). Empty: the current state first, as
  // synthetic ADDED events.
  std::string resource_version;
  std::string label_selector;
  // The server closes the watch after this; the client gives up a little later.
  absl::Duration timeout = absl::Minutes(5);
  // Checked about once a second; setting it ends the watch early with OK.
  const std::atomic<bool>* cancel = nullptr;
};

// Returns false to end the watch.
using NodeWatchCallback = std::function<bool(const NodeWatchEvent&)>;

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  virtual absl::StatusOr<NodeInfo> GetNode(const std::string& name) = 0;

  struct NodeList {
    std::vector<NodeInfo> nodes;
    std::string resource_version;  // Of the list, to start a watch from.
  };
  // `label_selector` uses the API's syntax ("a=b,c!=d"); empty lists every node.
  virtual absl::StatusOr<NodeList> ListNodes(const std::string& label_selector) = 0;

  // Streams node changes until the timeout, the cancel flag, or the callback says stop.
  // Returns the last resourceVersion seen, to resume from. A watch whose resourceVersion is
  // too old (410 Gone) fails with OUT_OF_RANGE: list again.
  virtual absl::StatusOr<std::string> WatchNodes(const NodeWatchOptions& options,
                                                 const NodeWatchCallback& callback) = 0;

  // Applies a JSON merge patch (RFC 7386) to the node. With `resource_version` set the patch
  // only applies to that version; a newer one fails with ABORTED.
  virtual absl::StatusOr<NodeInfo> PatchNodeMerge(
      const std::string& name, const std::string& merge_patch_json,
      const std::optional<std::string>& resource_version) = 0;

  virtual absl::StatusOr<std::vector<PodInfo>> ListPods(const PodListOptions& options) = 0;
  absl::StatusOr<std::vector<PodInfo>> ListPodsOnNode(const std::string& node) {
    PodListOptions options;
    options.node_name = node;
    return ListPods(options);
  }

  // NOT_FOUND once the pod is gone.
  virtual absl::StatusOr<PodInfo> GetPod(const std::string& namespace_name,
                                         const std::string& name) = 0;

  // Posts an Eviction. `grace_period` unset lets the pod's own terminationGracePeriod apply.
  // HTTP codes the Eviction API defines become an EvictionResult; others are errors.
  virtual absl::StatusOr<EvictionResult> EvictPod(const std::string& namespace_name,
                                                  const std::string& name,
                                                  std::optional<absl::Duration> grace_period) = 0;

  // Deletes without the PodDisruptionBudget check. NOT_FOUND when already gone.
  virtual absl::Status DeletePod(const std::string& namespace_name, const std::string& name,
                                 std::optional<absl::Duration> grace_period) = 0;

  // A core/v1 Event about the node. `type` is "Normal" or "Warning".
  virtual absl::Status CreateNodeEvent(const std::string& node, const std::string& reason,
                                       const std::string& message, const std::string& type) = 0;

  virtual absl::StatusOr<DaemonSetInfo> GetDaemonSet(const std::string& namespace_name,
                                                     const std::string& name) = 0;
};

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_KUBE_CLIENT_H_
