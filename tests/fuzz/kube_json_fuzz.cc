// Kubernetes API answers: a body parsed as the client parses it, then read as a Node, a Pod
// and a DaemonSet (each item of a list too), and timestamps as the API writes them. No input
// may throw out of the converters (they promise to turn nlohmann's exceptions into errors).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/kube/kube_json.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void ReadObject(const nlohmann::json& object) {
  (void)tended::kube::NodeFromJson(object);
  (void)tended::kube::PodFromJson(object);
  (void)tended::kube::DaemonSetFromJson(object);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<absl::Time> time = tended::kube::ParseKubeTime(body);
  if (time.ok() && *time > absl::FromCivil(absl::CivilSecond(1, 1, 1), absl::UTCTimeZone()) &&
      *time < absl::FromCivil(absl::CivilSecond(9999, 12, 31), absl::UTCTimeZone())) {
    std::string formatted = tended::kube::FormatKubeTime(*time);
    absl::StatusOr<absl::Time> again = tended::kube::ParseKubeTime(formatted);
    FUZZ_CHECK(again.ok() && tended::kube::FormatKubeTime(*again) == formatted);
  }
  absl::StatusOr<nlohmann::json> json = tended::kube::ParseJsonBody(body, "fuzz");
  if (!json.ok()) return 0;
  ReadObject(*json);
  if (json->is_object()) {
    auto items = json->find("items");
    if (items != json->end() && items->is_array()) {
      for (const nlohmann::json& item : *items) ReadObject(item);
    }
  }
  return 0;
}
