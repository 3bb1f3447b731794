#include "coordinator/core/fencing_rejections.h"

#include <algorithm>

namespace tended::coordinator {
namespace {

void Add(FencingRejections::Summary& summary, const std::string& reason, absl::Time now,
         uint64_t count = 1) {
  if (summary.count == 0) summary.first = now;
  summary.count += count;
  summary.last = now;
  summary.last_reason = reason;
}

}  // namespace

void FencingRejections::Record(const std::string& lease_id, const std::string& node,
                               const std::string& reason, absl::Time now) {
  absl::MutexLock lock(&mutex_);
  ++total_;
  auto key = std::make_pair(lease_id, node);
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    if (pending_.size() >= kMaxKeys) {
      Add(overflow_, reason, now);
      return;
    }
    it = pending_.emplace(key, Summary{lease_id, node, "", 0, now, now}).first;
  }
  Add(it->second, reason, now);
}

std::vector<FencingRejections::Summary> FencingRejections::Take() {
  absl::MutexLock lock(&mutex_);
  std::vector<Summary> all;
  all.reserve(pending_.size());
  for (auto& [key, summary] : pending_) all.push_back(std::move(summary));
  pending_.clear();
  // The most refused first: those are worth an event of their own.
  std::stable_sort(all.begin(), all.end(), [](const Summary& a, const Summary& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.first < b.first;
  });
  Summary rest = overflow_;
  overflow_ = Summary();
  while (all.size() > kMaxEventsPerSummary) {
    const Summary& dropped = all.back();
    const bool empty = rest.count == 0;
    rest.count += dropped.count;
    rest.first = empty ? dropped.first : std::min(rest.first, dropped.first);
    rest.last = empty ? dropped.last : std::max(rest.last, dropped.last);
    rest.last_reason = dropped.last_reason;
    all.pop_back();
  }
  if (rest.count > 0) all.push_back(rest);
  return all;
}

bool FencingRejections::pending() const {
  absl::MutexLock lock(&mutex_);
  return !pending_.empty() || overflow_.count > 0;
}

uint64_t FencingRejections::total() const {
  absl::MutexLock lock(&mutex_);
  return total_;
}

}  // namespace tended::coordinator
