// Reads the firing alerts off the request path: a background thread asks the AlertSource
// every poll_interval and keeps its last answer, success or failure, stamped with the time
// it arrived. Node calls and gate evaluations take that snapshot (Current) and never wait
// for Prometheus; the alerts gate judges its age against alerts.max_age, so a Prometheus
// that hangs or fails blocks disruptions instead of stalling the coordinator.
#ifndef TENDED_COORDINATOR_ALERTS_ALERT_POLLER_H_
#define TENDED_COORDINATOR_ALERTS_ALERT_POLLER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/alerts/alert_source.h"

namespace tended::coordinator {

class AlertPoller {
 public:
  // `clock` stamps each answer and must outlive the poller. `poll_interval` is real time
  // between the starts of two fetches in the background.
  AlertPoller(std::unique_ptr<AlertSource> source, const Clock& clock,
              absl::Duration poll_interval);
  ~AlertPoller();  // Stop()
  AlertPoller(const AlertPoller&) = delete;
  AlertPoller& operator=(const AlertPoller&) = delete;

  // Starts the background thread: a fetch at once, then one every poll_interval.
  void Start();
  // Ends the thread: the fetch in flight is cancelled (AlertSource::CancelFetches), so this
  // returns within about a second. Final: later PollOnce calls only return Current().
  // Idempotent.
  void Stop();

  // Fetches now on the caller's thread (one fetch at a time), keeps the answer and returns
  // it. For tests and the background thread.
  AlertSnapshot PollOnce();

  // The last answer with its fetched_at; nullopt until the first fetch has finished.
  // Never waits for a fetch.
  std::optional<AlertSnapshot> Current() const;

 private:
  void Loop();

  const std::unique_ptr<AlertSource> source_;
  const Clock& clock_;
  const absl::Duration poll_interval_;

  std::mutex fetch_mutex_;  // One fetch at a time; never held with mutex_ by Current().

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<AlertSnapshot> current_;  // Guarded by mutex_.
  bool stopping_ = false;                 // Guarded by mutex_.
  std::thread thread_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_ALERTS_ALERT_POLLER_H_
