// Where the alerts gate learns which alerts fire. The real source asks Prometheus'
// /api/v1/alerts; tests substitute a fake. Fetching happens before the gates run, so the
// gates stay pure functions of a snapshot.
#ifndef TENDED_COORDINATOR_ALERTS_ALERT_SOURCE_H_
#define TENDED_COORDINATOR_ALERTS_ALERT_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tended::coordinator {

struct Alert {
  std::string name;   // labels["alertname"]
  std::string state;  // "firing" or "pending"
  std::map<std::string, std::string> labels;
};

struct AlertSnapshot {
  // Not OK when the source was unreachable or answered something we could not read: the
  // alerts gate then blocks (fail closed) and shows this status as the reason.
  absl::Status status;
  std::vector<Alert> alerts;
  absl::Time fetched_at = absl::InfinitePast();
};

class AlertSource {
 public:
  virtual ~AlertSource() = default;
  // Blocking; bounded by the source's own timeout. Thread-compatible.
  virtual AlertSnapshot Fetch() = 0;
  // For shutdown: a Fetch in flight, and every later one, returns soon with a non-OK
  // snapshot. Thread-safe.
  virtual void CancelFetches() {}
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_ALERT_SOURCE_H_
