#include "coordinator/alerts/alert_poller.h"

#include <chrono>
#include <utility>

#include "common/logging.h"

namespace tended::coordinator {

AlertPoller::AlertPoller(std::unique_ptr<AlertSource> source, const Clock& clock,
                         absl::Duration poll_interval)
    : source_(std::move(source)), clock_(clock), poll_interval_(poll_interval) {}

AlertPoller::~AlertPoller() { Stop(); }

void AlertPoller::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_ || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void AlertPoller::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  source_->CancelFetches();
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

AlertSnapshot AlertPoller::PollOnce() {
  std::lock_guard<std::mutex> one_fetch(fetch_mutex_);
  AlertSnapshot snapshot = source_->Fetch();
  snapshot.fetched_at = clock_.Now();
  std::optional<AlertSnapshot> previous;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = std::exchange(current_, snapshot);
  }
  const bool was_ok = !previous.has_value() || previous->status.ok();
  if (was_ok && !snapshot.status.ok()) {
    Logger("alerts")->warn("cannot read alerts, so the alerts gate blocks: {}",
                           snapshot.status.ToString());
  } else if (!was_ok && snapshot.status.ok()) {
    Logger("alerts")->info("alerts read again ({} firing or pending)", snapshot.alerts.size());
  }
  return snapshot;
}

std::optional<AlertSnapshot> AlertPoller::Current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

void AlertPoller::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const auto next = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(poll_interval_);
    lock.unlock();
    PollOnce();
    lock.lock();
    wake_.wait_until(lock, next, [this] { return stopping_; });
  }
}

}  // namespace tended::coordinator
