// Kubernetes JSON helpers of the fake API server (see fake_kube_api_json.h).
#include "tests/fakes/fake_kube_api_json.h"

#include <optional>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tended::testing::kube_json {

using nlohmann::json;

std::string KubeTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

json StatusJson(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

bool MatchesLabelSelector(const json& object, const std::string& selector) {
  if (selector.empty()) return true;
  json labels = json::object();
  if (object.contains("metadata") && object["metadata"].contains("labels")) {
    labels = object["metadata"]["labels"];
  }
  auto label = [&](const std::string& key) -> std::optional<std::string> {
    if (!labels.contains(key) || !labels[key].is_string()) return std::nullopt;
    return labels[key].get<std::string>();
  };
  for (absl::string_view term : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    term = absl::StripAsciiWhitespace(term);
    size_t ne = term.find("!=");
    size_t eq = term.find('=');
    if (ne != absl::string_view::npos) {
      auto value = label(std::string(term.substr(0, ne)));
      if (value.has_value() && *value == term.substr(ne + 2)) return false;
    } else if (eq != absl::string_view::npos) {
      absl::string_view want = term.substr(eq + 1);
      absl::ConsumePrefix(&want, "=");
      auto value = label(std::string(term.substr(0, eq)));
      if (!value.has_value() || *value != want) return false;
    } else if (absl::ConsumePrefix(&term, "!")) {
      if (label(std::string(term)).has_value()) return false;
    } else if (!label(std::string(term)).has_value()) {
      return false;
    }
  }
  return true;
}

}  // namespace tended::testing::kube_json
