// Marks on a node while tended disrupts it: annotations and labels set by one merge patch
// when the disruption starts and removed (set to null) when it ends, optionally under
// kured's annotation names so existing dashboards keep working; and Kubernetes Events on
// the node for every transition.
#ifndef TENDED_COORDINATOR_KUBE_NODE_MARKS_H_
#define TENDED_COORDINATOR_KUBE_NODE_MARKS_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/kube/kube_client.h"

namespace tended::kube {

inline constexpr char kDisruptedSinceAnnotation[] = "tended.io/disrupted-since";
inline constexpr char kKuredRebootInProgressAnnotation[] = "weave.works/kured-reboot-in-progress";
inline constexpr char kKuredMostRecentRebootNeededAnnotation[] =
    "weave.works/kured-most-recent-reboot-needed";

struct NodeMarkOptions {
  // Set to the RFC 3339 time the disruption started; empty for none.
  std::string since_annotation = kDisruptedSinceAnnotation;
  // Fixed annotations and labels present only while the node is disrupted.
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;
  // Also set kured's weave.works/kured-reboot-in-progress (removed afterwards) and
  // weave.works/kured-most-recent-reboot-needed (kept), both RFC 3339 times.
  bool kured_annotations = false;
};

class NodeMarker {
 public:
  // `client` and `clock` must outlive the marker. Thread-safe when the client is.
  NodeMarker(KubeClient& client, const Clock& clock, NodeMarkOptions options);

  // One merge patch setting every configured mark; `detail` (e.g. "REBOOT lease 12") is
  // the value of the since annotation's companion "<since>-reason" when non-empty.
  absl::Status Mark(const std::string& node, const std::string& detail = "");

  // One merge patch removing what Mark set (kured's most-recent-reboot-needed stays).
  absl::Status Clear(const std::string& node);

  // A core/v1 Event on the node; `warning` picks type Warning over Normal.
  absl::Status Event(const std::string& node, const std::string& reason, const std::string& message,
                     bool warning = false);

  // The patches, for tests and logs.
  std::string MarkPatch(const std::string& detail) const;
  std::string ClearPatch() const;

 private:
  KubeClient& client_;
  const Clock& clock_;
  const NodeMarkOptions options_;
};

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_NODE_MARKS_H_
