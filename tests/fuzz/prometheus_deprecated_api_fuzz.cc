// Prometheus' answer to the deprecated-API query (apiserver_requested_deprecated_apis) as
// the Kubernetes upgrade gate reads it.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "coordinator/alerts/prometheus_deprecated_api_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  (void)tended::coordinator::ParseDeprecatedApisResponse(body);
  return 0;
}
