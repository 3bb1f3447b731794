// Conversions between the Kubernetes API's JSON objects and the KubeClient types. Internal
// to tended_kube (the fake API server in the tests uses it too); every function catches
// nlohmann's exceptions and reports a wrong shape as INVALID_ARGUMENT.
#ifndef TENDED_COORDINATOR_KUBE_KUBE_JSON_H_
#define TENDED_COORDINATOR_KUBE_KUBE_JSON_H_

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/kube/kube_client.h"

namespace tended::kube {

// Parses `body`; an error names `what` (usually "GET <url>").
absl::StatusOr<nlohmann::json> ParseJsonBody(absl::string_view body, absl::string_view what);

absl::StatusOr<NodeInfo> NodeFromJson(const nlohmann::json& object);
absl::StatusOr<PodInfo> PodFromJson(const nlohmann::json& object);
absl::StatusOr<DaemonSetInfo> DaemonSetFromJson(const nlohmann::json& object);

// RFC 3339 as the API writes it ("2026-01-01T02:03:04Z", fractions allowed).
absl::StatusOr<absl::Time> ParseKubeTime(absl::string_view text);
std::string FormatKubeTime(absl::Time time);       // Seconds precision, UTC, "Z".
std::string FormatKubeMicroTime(absl::Time time);  // "2006-01-02T15:04:05.000000Z"

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_KUBE_JSON_H_
