#include "coordinator/kube/node_marks.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "coordinator/kube/kube_json.h"

namespace tended::kube {

using nlohmann::json;

NodeMarker::NodeMarker(KubeClient& client, const Clock& clock, NodeMarkOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

std::string NodeMarker::MarkPatch(const std::string& detail) const {
  std::string now = FormatKubeTime(clock_.Now());
  json annotations = json::object();
  for (const auto& [key, value] : options_.annotations) annotations[key] = value;
  if (!options_.since_annotation.empty()) {
    annotations[options_.since_annotation] = now;
    if (!detail.empty()) annotations[options_.since_annotation + "-reason"] = detail;
  }
  if (options_.kured_annotations) {
    annotations[kKuredRebootInProgressAnnotation] = now;
    annotations[kKuredMostRecentRebootNeededAnnotation] = now;
  }
  json labels = json::object();
  for (const auto& [key, value] : options_.labels) labels[key] = value;
  json metadata = json::object();
  if (!annotations.empty()) metadata["annotations"] = annotations;
  if (!labels.empty()) metadata["labels"] = labels;
  return ToJsonText(json({{"metadata", metadata}}));
}

std::string NodeMarker::ClearPatch() const {
  json annotations = json::object();
  for (const auto& [key, value] : options_.annotations) annotations[key] = nullptr;
  if (!options_.since_annotation.empty()) {
    annotations[options_.since_annotation] = nullptr;
    annotations[options_.since_annotation + "-reason"] = nullptr;
  }
  if (options_.kured_annotations) annotations[kKuredRebootInProgressAnnotation] = nullptr;
  json labels = json::object();
  for (const auto& [key, value] : options_.labels) labels[key] = nullptr;
  json metadata = json::object();
  if (!annotations.empty()) metadata["annotations"] = annotations;
  if (!labels.empty()) metadata["labels"] = labels;
  return ToJsonText(json({{"metadata", metadata}}));
}

absl::Status NodeMarker::Mark(const std::string& node, const std::string& detail) {
  absl::StatusOr<NodeInfo> patched = client_.PatchNodeMerge(node, MarkPatch(detail), std::nullopt);
  return patched.status();
}

absl::Status NodeMarker::Clear(const std::string& node) {
  absl::StatusOr<NodeInfo> patched = client_.PatchNodeMerge(node, ClearPatch(), std::nullopt);
  return patched.status();
}

absl::Status NodeMarker::Event(const std::string& node, const std::string& reason,
                               const std::string& message, bool warning) {
  absl::Status status =
      client_.CreateNodeEvent(node, reason, message, warning ? "Warning" : "Normal");
  if (!status.ok()) {
    Logger("kube")->warn("could not record event {} on node {}: {}", reason, node,
                         status.message());
  }
  return status;
}

}  // namespace tended::kube
