// Holder calls the coordinator refused (a stale fencing token, a released or unknown lease,
// another agent instance), counted and summed up into a few events instead of one event
// each, so that a flood of bad calls can neither push the grants out of the event log nor
// grow the state. The total is a metric. Thread-safe.
#ifndef TENDED_COORDINATOR_CORE_FENCING_REJECTIONS_H_
#define TENDED_COORDINATOR_CORE_FENCING_REJECTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tended::coordinator {

class FencingRejections {
 public:
  // Distinct (lease, node) pairs tracked between summaries; more are counted together.
  static constexpr size_t kMaxKeys = 1024;
  // Events one summary writes at most; the rest are summed up in one more.
  static constexpr size_t kMaxEventsPerSummary = 20;

  struct Summary {
    std::string lease_id;  // Empty for the pairs beyond kMaxKeys.
    std::string node;
    std::string last_reason;
    uint64_t count = 0;
    absl::Time first;
    absl::Time last;
  };

  void Record(const std::string& lease_id, const std::string& node, const std::string& reason,
              absl::Time now);
  // What was refused since the last call, at most kMaxEventsPerSummary + 1 entries (the last
  // one summing up the rest when there are more).
  std::vector<Summary> Take();
  bool pending() const;
  uint64_t total() const;

 private:
  mutable absl::Mutex mutex_;
  std::map<std::pair<std::string, std::string>, Summary> pending_ ABSL_GUARDED_BY(mutex_);
  Summary overflow_ ABSL_GUARDED_BY(mutex_);
  uint64_t total_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CORE_FENCING_REJECTIONS_H_
