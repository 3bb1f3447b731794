#include "coordinator/kube/kube_json.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tended::kube {
namespace {

using nlohmann::json;

// The string at `key` of an object, "" when absent or null; a non-string is an error.
std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return it->get<std::string>();
}

int64_t IntField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return 0;
  return it->get<int64_t>();
}

const json& ObjectField(const json& object, const char* key) {
  static const json* const kEmpty = new json(json::object());
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return *kEmpty;
  if (!it->is_object())
    throw json::type_error::create(302, std::string(key) + " is not an object", nullptr);
  return *it;
}

const json& ArrayField(const json& object, const char* key) {
  static const json* const kEmpty = new json(json::array());
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return *kEmpty;
  if (!it->is_array())
    throw json::type_error::create(302, std::string(key) + " is not an array", nullptr);
  return *it;
}

std::map<std::string, std::string> StringMap(const json& object, const char* key) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : ObjectField(object, key).items()) out[k] = v.get<std::string>();
  return out;
}

ConditionStatus ParseConditionStatus(const std::string& text) {
  if (text == "True") return ConditionStatus::kTrue;
  if (text == "False") return ConditionStatus::kFalse;
  return ConditionStatus::kUnknown;
}

// Runs `parse` and turns nlohmann's exceptions and bad times into INVALID_ARGUMENT.
template <typename T, typename F>
absl::StatusOr<T> Guarded(absl::string_view kind, const json& object, F parse) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, ": expected a JSON object, got ", object.type_name()));
  }
  try {
    return parse();
  } catch (const json::exception& e) {
    std::string name;
    try {
      name = StringField(ObjectField(object, "metadata"), "name");
    } catch (const json::exception&) {
    }
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " \"", name, "\" has an unexpected shape: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<json> ParseJsonBody(absl::string_view body, absl::string_view what) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    std::string excerpt(body.substr(0, 80));
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the response is not JSON (starts with \"", excerpt, "\")"));
  }
  return parsed;
}

absl::StatusOr<NodeInfo> NodeFromJson(const json& object) {
  return Guarded<NodeInfo>("node", object, [&]() -> absl::StatusOr<NodeInfo> {
    NodeInfo node;
    const json& metadata = ObjectField(object, "metadata");
    const json& spec = ObjectField(object, "spec");
    const json& status = ObjectField(object, "status");
    node.name = StringField(metadata, "name");
    node.uid = StringField(metadata, "uid");
    node.resource_version = StringField(metadata, "resourceVersion");
    node.labels = StringMap(metadata, "labels");
    node.annotations = StringMap(metadata, "annotations");
    if (auto it = spec.find("unschedulable"); it != spec.end() && !it->is_null()) {
      node.unschedulable = it->get<bool>();
    }
    for (const json& taint : ArrayField(spec, "taints")) {
      node.taints.push_back(Taint{.key = StringField(taint, "key"),
                                  .value = StringField(taint, "value"),
                                  .effect = StringField(taint, "effect")});
    }
    for (const json& condition : ArrayField(status, "conditions")) {
      if (StringField(condition, "type") != "Ready") continue;
      node.ready = ParseConditionStatus(StringField(condition, "status"));
      node.ready_reason = StringField(condition, "reason");
      std::string transition = StringField(condition, "lastTransitionTime");
      if (!transition.empty()) {
        ASSIGN_OR_RETURN(node.ready_last_transition, ParseKubeTime(transition));
      }
    }
    const json& node_info = ObjectField(status, "nodeInfo");
    node.boot_id = StringField(node_info, "bootID");
    node.kubelet_version = StringField(node_info, "kubeletVersion");
    if (node.name.empty()) return absl::InvalidArgumentError("node without metadata.name");
    return node;
  });
}

absl::StatusOr<PodInfo> PodFromJson(const json& object) {
  return Guarded<PodInfo>("pod", object, [&]() -> absl::StatusOr<PodInfo> {
    PodInfo pod;
    const json& metadata = ObjectField(object, "metadata");
    const json& spec = ObjectField(object, "spec");
    const json& status = ObjectField(object, "status");
    pod.namespace_name = StringField(metadata, "namespace");
    pod.name = StringField(metadata, "name");
    pod.uid = StringField(metadata, "uid");
    pod.labels = StringMap(metadata, "labels");
    pod.is_mirror = ObjectField(metadata, "annotations").contains("kubernetes.io/config.mirror");
    std::string deletion = StringField(metadata, "deletionTimestamp");
    if (!deletion.empty()) {
      ASSIGN_OR_RETURN(pod.deletion_timestamp, ParseKubeTime(deletion));
    }
    for (const json& owner : ArrayField(metadata, "ownerReferences")) {
      auto controller = owner.find("controller");
      if (controller != owner.end() && controller->is_boolean() && controller->get<bool>()) {
        pod.controller_kind = StringField(owner, "kind");
        pod.controller_name = StringField(owner, "name");
        break;
      }
    }
    pod.node_name = StringField(spec, "nodeName");
    for (const json& volume : ArrayField(spec, "volumes")) {
      if (volume.contains("emptyDir")) pod.has_empty_dir = true;
    }
    pod.phase = StringField(status, "phase");
    for (const json& condition : ArrayField(status, "conditions")) {
      if (StringField(condition, "type") == "Ready") {
        pod.ready = StringField(condition, "status") == "True";
      }
    }
    if (pod.name.empty()) return absl::InvalidArgumentError("pod without metadata.name");
    return pod;
  });
}

absl::StatusOr<DaemonSetInfo> DaemonSetFromJson(const json& object) {
  return Guarded<DaemonSetInfo>("daemonset", object, [&]() -> absl::StatusOr<DaemonSetInfo> {
    DaemonSetInfo ds;
    const json& metadata = ObjectField(object, "metadata");
    const json& status = ObjectField(object, "status");
    ds.namespace_name = StringField(metadata, "namespace");
    ds.name = StringField(metadata, "name");
    ds.desired_number_scheduled = IntField(status, "desiredNumberScheduled");
    ds.current_number_scheduled = IntField(status, "currentNumberScheduled");
    ds.number_ready = IntField(status, "numberReady");
    ds.number_available = IntField(status, "numberAvailable");
    ds.updated_number_scheduled = IntField(status, "updatedNumberScheduled");
    return ds;
  });
}

absl::StatusOr<absl::Time> ParseKubeTime(absl::string_view text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("bad timestamp \"", text, "\": ", error));
  }
  return time;
}

std::string FormatKubeTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string FormatKubeMicroTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

absl::string_view ConditionStatusName(ConditionStatus status) {
  switch (status) {
    case ConditionStatus::kTrue:
      return "True";
    case ConditionStatus::kFalse:
      return "False";
    case ConditionStatus::kUnknown:
      break;
  }
  return "Unknown";
}

absl::string_view EvictionOutcomeName(EvictionOutcome outcome) {
  switch (outcome) {
    case EvictionOutcome::kEvicted:
      return "evicted";
    case EvictionOutcome::kNotFound:
      return "not found";
    case EvictionOutcome::kBlockedByPdb:
      return "blocked by a PodDisruptionBudget";
    case EvictionOutcome::kTooManyPdbs:
      return "more than one PodDisruptionBudget";
    case EvictionOutcome::kNamespaceTerminating:
      return "namespace terminating";
    case EvictionOutcome::kForbidden:
      return "forbidden";
  }
  return "unknown";
}

}  // namespace tended::kube
