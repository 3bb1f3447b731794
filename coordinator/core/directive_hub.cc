#include "coordinator/core/directive_hub.h"

namespace tended::coordinator {

std::optional<tended::v1::Directive> DirectiveHub::Subscription::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mutex_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return closed_ || !queue_.empty(); };
  // A zero timeout is a poll: do not let the wait put the thread to sleep.
  if (timeout > absl::ZeroDuration()) mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty()) return std::nullopt;
  tended::v1::Directive next = std::move(queue_.front());
  queue_.pop_front();
  return next;
}

bool DirectiveHub::Subscription::closed() const {
  absl::MutexLock lock(&mutex_);
  return closed_;
}

std::shared_ptr<DirectiveHub::Subscription> DirectiveHub::Subscribe(const std::string& node) {
  auto subscription = std::make_shared<Subscription>();
  absl::MutexLock lock(&mutex_);
  subscriptions_.emplace(node, subscription);
  return subscription;
}

void DirectiveHub::Unsubscribe(const std::string& node,
                               const std::shared_ptr<Subscription>& subscription) {
  absl::MutexLock lock(&mutex_);
  auto [begin, end] = subscriptions_.equal_range(node);
  for (auto it = begin; it != end; ++it) {
    if (it->second == subscription) {
      subscriptions_.erase(it);
      return;
    }
  }
}

void DirectiveHub::Send(const std::string& node, const tended::v1::Directive& directive) {
  absl::MutexLock lock(&mutex_);
  auto [begin, end] = subscriptions_.equal_range(node);
  for (auto it = begin; it != end; ++it) {
    absl::MutexLock queue_lock(&it->second->mutex_);
    it->second->queue_.push_back(directive);
  }
}

bool DirectiveHub::IsConnected(const std::string& node) const {
  absl::MutexLock lock(&mutex_);
  return subscriptions_.count(node) > 0;
}

void DirectiveHub::CloseAll() {
  absl::MutexLock lock(&mutex_);
  for (auto& [node, subscription] : subscriptions_) {
    absl::MutexLock queue_lock(&subscription->mutex_);
    subscription->closed_ = true;
  }
}

}  // namespace tended::coordinator
