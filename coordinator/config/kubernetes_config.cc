#include "coordinator/config/kubernetes_config.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

absl::Status ParseStringMap(const YamlCursor& cursor, std::map<std::string, std::string>* out) {
  if (cursor.IsNull()) return absl::OkStatus();
  if (!cursor.IsMap()) return cursor.Error("expected a mapping of names to values");
  for (auto& [name, value_cursor] : cursor.Entries()) {
    if (name.empty()) return value_cursor.Error("empty name");
    ASSIGN_OR_RETURN(std::string value, value_cursor.AsString());
    (*out)[name] = std::move(value);
  }
  return absl::OkStatus();
}

absl::Status ParseDrain(const YamlCursor& cursor, KubernetesDrainConfig* drain) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"timeout", "grace_period", "delete_emptydir_data",
                                            "force_unmanaged", "skip_wait_for_delete_timeout"}));
  RETURN_IF_ERROR(cursor.Optional("timeout", &drain->timeout));
  if (drain->timeout <= absl::ZeroDuration()) {
    return cursor.Child("timeout").Error("must be longer than 0");
  }
  if (cursor.Has("grace_period") && !cursor.Child("grace_period").IsNull()) {
    ASSIGN_OR_RETURN(absl::Duration grace, cursor.Child("grace_period").AsDuration());
    drain->grace_period = grace;
  }
  RETURN_IF_ERROR(cursor.Optional("delete_emptydir_data", &drain->delete_emptydir_data));
  RETURN_IF_ERROR(cursor.Optional("force_unmanaged", &drain->force_unmanaged));
  RETURN_IF_ERROR(
      cursor.Optional("skip_wait_for_delete_timeout", &drain->skip_wait_for_delete_timeout));
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseEqualitySelector(const std::string& text,
                                   std::map<std::string, std::string>* selector) {
  selector->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    size_t equals = part.find('=');
    if (part.empty() || equals == absl::string_view::npos || equals == 0 ||
        part.find("!=") != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" is not a selector of the form key=value,key2=value2"));
    }
    absl::string_view value = part.substr(equals + 1);
    if (!value.empty() && value.front() == '=') value.remove_prefix(1);  // key==value
    (*selector)[std::string(absl::StripAsciiWhitespace(part.substr(0, equals)))] =
        std::string(absl::StripAsciiWhitespace(value));
  }
  if (selector->empty()) return absl::InvalidArgumentError("empty selector");
  return absl::OkStatus();
}

absl::Status ParseKubernetesConfig(const YamlCursor& cursor, KubernetesConfig* config) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"enabled", "kubeconfig", "context", "node_selector", "drain", "blocking_pod_selector",
       "cni_daemonset", "min_pod_ready_ratio", "node_marks", "expected_kubelet_version",
       "poll_interval", "facts_max_age"}));
  RETURN_IF_ERROR(cursor.Optional("enabled", &config->enabled));
  RETURN_IF_ERROR(cursor.Optional("kubeconfig", &config->kubeconfig));
  RETURN_IF_ERROR(cursor.Optional("context", &config->context));
  RETURN_IF_ERROR(cursor.Optional("node_selector", &config->node_selector));
  RETURN_IF_ERROR(ParseDrain(cursor.Child("drain"), &config->drain));
  if (cursor.Has("blocking_pod_selector")) {
    YamlCursor selectors = cursor.Child("blocking_pod_selector");
    std::vector<std::string> texts;
    if (selectors.IsSequence()) {
      ASSIGN_OR_RETURN(texts, selectors.AsStringList());
    } else if (!selectors.IsNull()) {
      ASSIGN_OR_RETURN(std::string one, selectors.AsString());
      texts.push_back(std::move(one));
    }
    for (const std::string& text : texts) {
      std::map<std::string, std::string> selector;
      if (absl::Status parsed = ParseEqualitySelector(text, &selector); !parsed.ok()) {
        return selectors.Error(parsed.message());
      }
      config->blocking_pod_selectors.push_back(std::move(selector));
    }
  }
  YamlCursor cni = cursor.Child("cni_daemonset");
  RETURN_IF_ERROR(cni.ExpectMapWithKeys({"namespace", "name"}));
  RETURN_IF_ERROR(cni.Optional("namespace", &config->cni_daemonset_namespace));
  RETURN_IF_ERROR(cni.Optional("name", &config->cni_daemonset_name));
  if (!config->cni_daemonset_name.empty() && config->cni_daemonset_namespace.empty()) {
    return cni.Error("namespace: required with name");
  }
  RETURN_IF_ERROR(cursor.Optional("min_pod_ready_ratio", &config->min_pod_ready_ratio));
  if (config->min_pod_ready_ratio < 0 || config->min_pod_ready_ratio > 1) {
    return cursor.Child("min_pod_ready_ratio").Error("must be between 0 and 1");
  }
  YamlCursor marks = cursor.Child("node_marks");
  RETURN_IF_ERROR(marks.ExpectMapWithKeys({"annotations", "labels", "kured_compatible"}));
  RETURN_IF_ERROR(ParseStringMap(marks.Child("annotations"), &config->node_marks.annotations));
  RETURN_IF_ERROR(ParseStringMap(marks.Child("labels"), &config->node_marks.labels));
  RETURN_IF_ERROR(marks.Optional("kured_compatible", &config->node_marks.kured_compatible));
  RETURN_IF_ERROR(cursor.Optional("expected_kubelet_version", &config->expected_kubelet_version));
  RETURN_IF_ERROR(cursor.Optional("poll_interval", &config->poll_interval));
  RETURN_IF_ERROR(cursor.Optional("facts_max_age", &config->facts_max_age));
  if (absl::Status valid = ValidateKubernetesConfig(*config); !valid.ok()) {
    return cursor.Error(valid.message());
  }
  return absl::OkStatus();
}

absl::Status ValidateKubernetesConfig(const KubernetesConfig& config) {
  if (config.drain.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("drain.timeout: must be longer than 0");
  }
  if (config.drain.grace_period.has_value() && *config.drain.grace_period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("drain.grace_period: must not be negative");
  }
  if (config.min_pod_ready_ratio < 0 || config.min_pod_ready_ratio > 1) {
    return absl::InvalidArgumentError("min_pod_ready_ratio: must be between 0 and 1");
  }
  if (config.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("poll_interval: must be longer than 0");
  }
  if (config.facts_max_age <= config.poll_interval) {
    return absl::InvalidArgumentError("facts_max_age: must be longer than poll_interval");
  }
  return absl::OkStatus();
}

}  // namespace tended::coordinator
