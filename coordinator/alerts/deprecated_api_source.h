// Where a minor rollout's preflight learns which deprecated Kubernetes APIs are still in
// use: the API server's apiserver_requested_deprecated_apis gauge (one series per group,
// version, resource and subresource requested since the API server started, labelled with
// the release that removes it). The real source asks Prometheus
// (prometheus_deprecated_api_source.h); tests substitute a fake. The coordinator fetches
// before it takes its lock, so the check itself is a pure function of the reading.
#ifndef TENDED_COORDINATOR_ALERTS_DEPRECATED_API_SOURCE_H_
#define TENDED_COORDINATOR_ALERTS_DEPRECATED_API_SOURCE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tended::coordinator {

// One series of apiserver_requested_deprecated_apis.
struct DeprecatedApiSeries {
  std::string group;  // Empty for the core group.
  std::string version;
  std::string resource;
  std::string subresource;
  std::string removed_release;  // "1.32"; empty when no removal is planned.
  double value = 0;             // 1: requested since the API server started.
};

struct DeprecatedApiReading {
  // Not OK when the source was unreachable or answered something unreadable: the preflight
  // check then fails (fail closed) and shows this status.
  absl::Status status;
  std::vector<DeprecatedApiSeries> series;
  absl::Time fetched_at = absl::InfinitePast();
  // Where it was read, for messages ("Prometheus at http://...").
  std::string source;
};

class DeprecatedApiSource {
 public:
  virtual ~DeprecatedApiSource() = default;
  // Blocking; bounded by the source's own timeout. Never called under the coordinator's
  // lock. Thread-compatible.
  virtual DeprecatedApiReading Fetch() = 0;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_DEPRECATED_API_SOURCE_H_
