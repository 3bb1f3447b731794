#include "coordinator/core/directive_hub.h"

#include <vector>

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

void DirectiveHub::Subscription::SetReadyCallback(std::function<void()> ready) {
  bool pending = false;
  {
    absl::MutexLock lock(&mutex_);
    ready_ = ready;
    pending = closed_ || !queue_.empty();
  }
  if (pending && ready) ready();
}

std::function<void()> DirectiveHub::Subscription::Push(const tended::v1::Directive& directive) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return nullptr;
  if (queue_.size() >= kMaxQueued) {
    closed_ = true;  // A stream this far behind starts afresh.
    queue_.clear();
  } else {
    queue_.push_back(directive);
  }
  return ready_;
}

std::function<void()> DirectiveHub::Subscription::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  return ready_;
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
  std::vector<std::function<void()>> wake;
  {
    absl::MutexLock lock(&mutex_);
    auto [begin, end] = subscriptions_.equal_range(node);
    for (auto it = begin; it != end; ++it) {
      if (auto ready = it->second->Push(directive); ready) wake.push_back(std::move(ready));
    }
  }
  for (auto& ready : wake) ready();
}

bool DirectiveHub::IsConnected(const std::string& node) const {
  absl::MutexLock lock(&mutex_);
  return subscriptions_.count(node) > 0;
}

size_t DirectiveHub::connected() const {
  absl::MutexLock lock(&mutex_);
  return subscriptions_.size();
}

void DirectiveHub::CloseAll() {
  std::vector<std::function<void()>> wake;
  {
    absl::MutexLock lock(&mutex_);
    for (auto& [node, subscription] : subscriptions_) {
      if (auto ready = subscription->Close(); ready) wake.push_back(std::move(ready));
    }
  }
  for (auto& ready : wake) ready();
}

}  // namespace tended::coordinator
