// Kubernetes JSON as the fake API server (fake_kube_api_server.h) writes and reads it,
// shared by its files: Status objects, timestamps, and equality-based label selectors.
#ifndef TENDED_TESTS_FAKES_FAKE_KUBE_API_JSON_H_
#define TENDED_TESTS_FAKES_FAKE_KUBE_API_JSON_H_

#include <nlohmann/json.hpp>
#include <string>

#include "absl/time/time.h"

namespace tended::testing::kube_json {

// RFC 3339 in UTC, to the second, as the API server writes times.
std::string KubeTime(absl::Time time);

// A Status object of a failed call.
nlohmann::json StatusJson(int code, const std::string& reason, const std::string& message);

// Equality-based selectors: "a=b", "a==b", "a!=b", "a", "!a", comma-separated.
bool MatchesLabelSelector(const nlohmann::json& object, const std::string& selector);

}  // namespace tended::testing::kube_json

#endif  // TENDED_TESTS_FAKES_FAKE_KUBE_API_JSON_H_
