// Runs the Kubernetes version check (VersionDetector::Detect) on its schedule, weekly in the
// reference cluster, and keeps the last result for the agent's reports, on disk too so a
// restart neither forgets it nor checks again before the next scheduled time. A node that
// never checked checks at once. In the daemon the check (apt update, an HTTP probe) runs on
// a worker thread; tests run it inline.
#ifndef TENDED_AGENT_K8S_VERSION_CHECK_H_
#define TENDED_AGENT_K8S_VERSION_CHECK_H_

#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/schedule.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::agent::k8s {

class ScheduledVersionCheck {
 public:
  struct Options {
    // The last result is kept here (JSON).
    std::string state_path;
    bool background = true;
  };

  // `detect` runs the check; `wake` is called (from the worker) when a result is ready.
  ScheduledVersionCheck(std::function<tended::v1::K8sNodeFacts()> detect, Schedule schedule,
                        Options options, std::function<void()> wake);
  ~ScheduledVersionCheck();

  // Starts the check when it is due and none runs; returns when the next one is due.
  absl::Time RunIfDue(absl::Time now);
  // True once after a check finished: the facts changed.
  bool TakeChanged();
  // Copies the last check's findings (candidates, next minor, checked_time, check_error)
  // into `facts`; the installed versions there are left alone.
  void Fill(tended::v1::K8sNodeFacts* facts);
  // When the next check is due.
  absl::Time next_due() const { return next_due_; }

 private:
  void Collect();

  std::function<tended::v1::K8sNodeFacts()> detect_;
  const Schedule schedule_;
  const Options options_;
  std::function<void()> wake_;
  std::thread worker_;
  std::optional<tended::v1::K8sNodeFacts> last_;
  absl::Time next_due_ = absl::InfinitePast();
  bool changed_ = false;

  absl::Mutex mutex_;
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<tended::v1::K8sNodeFacts> finished_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_VERSION_CHECK_H_
