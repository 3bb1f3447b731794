// Notifications at every transition of a lease (disruption began, node rebooted, verified
// and released, overdue, verification failing, force-released), at halts, and when a
// request has been blocked by the gates for longer than a threshold. Messages go to Slack
// incoming webhooks ({"text": ...}) and generic JSON webhooks.
//
// Delivery never blocks or fails the lease flow: OnEvent (the coordinator's event listener,
// called with its lock held) only formats and enqueues; one worker thread delivers through
// the HttpClient (a timeout per attempt, a few attempts with backoff). A message that still fails
// is logged and counted; when the bounded queue is full the oldest message is dropped and
// counted. Thread-safe.
#ifndef TENDED_COORDINATOR_NOTIFY_NOTIFIER_H_
#define TENDED_COORDINATOR_NOTIFY_NOTIFIER_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "common/metrics.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/config/notifications_config.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

// One message, rendered for every sink.
struct Notification {
  Transition transition = Transition::kDisrupting;
  std::string text;  // The expanded template.
  std::string node;
  std::string lease;
  std::string kind;    // "reboot", "os_upgrade", "k8s_upgrade" or "".
  std::string detail;  // The event's own message.
  absl::Time time;
  uint64_t sequence = 0;  // The event's, 0 for "blocked".
  uint64_t fencing_token = 0;
};

// The bodies POSTed: {"text": ...} (and "username" for a legacy named Slack webhook), or
// the generic JSON {"event", "message", "node", "lease", "kind", "detail", "time",
// "sequence", "fencing_token"}.
std::string SlackPayload(const Notification& notification, const NotificationSink& sink);
std::string GenericPayload(const Notification& notification);

// POSTs one JSON body to the sink's endpoint. OK on a 2xx answer; FAILED_PRECONDITION on
// another 4xx, UNAVAILABLE on 429 or 5xx, and the HttpClient's status when no answer came
// (an answer over 64 KiB is RESOURCE_EXHAUSTED). Messages name the sink's label, never
// its endpoint.
absl::Status PostWebhook(HttpClient& http, const NotificationSink& sink,
                         const std::string& json_body, absl::Duration timeout);

class Notifier {
 public:
  struct Options {
    // How often the worker looks for requests blocked past the threshold (real time).
    absl::Duration check_interval = absl::Seconds(30);
    int max_attempts = 3;
    // Before the second attempt; doubles after each (real time).
    absl::Duration retry_backoff = absl::Seconds(1);
    size_t max_queue = 256;
    // Null: the process's CurlHttpClient.
    std::shared_ptr<HttpClient> http;
  };

  // Fails when a URL does not parse. `coordinator` (for blocked requests and the leases held
  // at start) may be null; `registry` receives tended_notifications_*_total. Both must
  // outlive the notifier. The worker starts with Start().
  static absl::StatusOr<std::unique_ptr<Notifier>> Create(const NotificationsConfig& config,
                                                          const Clock& clock,
                                                          Coordinator* coordinator,
                                                          metrics::Registry* registry,
                                                          Options options);
  ~Notifier();  // Stop()
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Learns the leases held now (so a reboot under an older lease is recognised) and starts
  // the worker. Call after the coordinator's event listener forwards to OnEvent.
  void Start();
  // Ends the worker after the delivery in flight; undelivered messages are dropped and
  // logged. Idempotent.
  void Stop();

  // The event listener: quick, never blocks on the network, never calls the coordinator.
  void OnEvent(const tended::v1::Event& event);

  // Announces requests the gates have blocked for longer than blocked_threshold, once per
  // blocking episode. The worker calls it every check_interval; tests call it directly.
  void CheckBlocked();

  // Blocks until nothing is queued or being delivered, for at most `timeout`. For tests.
  bool WaitIdleForTest(absl::Duration timeout);

  const std::vector<NotificationSink>& sinks() const { return sinks_; }

 private:
  Notifier(const NotificationsConfig& config, const Clock& clock, Coordinator* coordinator,
           metrics::Registry* registry, Options options, std::vector<NotificationSink> sinks);

  void Enqueue(Notification notification);  // Requires mutex_.
  bool Render(Transition transition, std::map<std::string, std::string> values,
              Notification* notification) const;
  void WorkerLoop();
  void Deliver(const Notification& notification);

  const NotificationsConfig config_;
  const Clock& clock_;
  Coordinator* coordinator_;
  Options options_;
  const std::vector<NotificationSink> sinks_;
  metrics::Counter& sent_;
  metrics::Counter& failed_;
  metrics::Counter& dropped_;

  struct LeaseInfo {
    std::string id;
    std::string kind;
    uint64_t token = 0;
  };
  struct Episode {
    absl::Time since;
    bool announced = false;
  };

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Notification> queue_;
  bool delivering_ = false;
  bool stopping_ = false;
  bool started_ = false;
  std::map<std::string, LeaseInfo> leases_by_node_;
  // (node, kind) -> when the request was made, from LEASE_REQUESTED events.
  std::map<std::pair<std::string, std::string>, absl::Time> requested_at_;
  std::map<std::pair<std::string, std::string>, Episode> episodes_;
  std::mutex check_mutex_;  // One CheckBlocked at a time.
  std::thread worker_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_NOTIFY_NOTIFIER_H_
