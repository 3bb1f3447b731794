// Fans directives out to the agents' WatchDirectives streams: one bounded queue per
// connected stream, keyed by node. A stream either waits for its next directive (Next) or
// is told through its `ready` callback that one is queued, so the gRPC reactor pushes it
// without a thread per stream. Thread-safe.
#ifndef TENDED_COORDINATOR_CORE_DIRECTIVE_HUB_H_
#define TENDED_COORDINATOR_CORE_DIRECTIVE_HUB_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tended/v1/node_service.pb.h"

namespace tended::coordinator {

class DirectiveHub {
 public:
  // More directives than this waiting for one stream close it: the agent reconnects and is
  // sent what it holds afresh.
  static constexpr size_t kMaxQueued = 256;

  class Subscription {
   public:
    // Waits up to `timeout` for the next directive; nullopt on timeout or after Close().
    std::optional<tended::v1::Directive> Next(absl::Duration timeout);
    // The next directive if one is queued.
    std::optional<tended::v1::Directive> TryNext() { return Next(absl::ZeroDuration()); }
    bool closed() const;
    // Called (without locks held) whenever a directive is queued or the stream closes.
    void SetReadyCallback(std::function<void()> ready);

   private:
    friend class DirectiveHub;
    // Returns the callback to call once the lock is released.
    std::function<void()> Push(const tended::v1::Directive& directive);
    std::function<void()> Close();

    mutable absl::Mutex mutex_;
    std::deque<tended::v1::Directive> queue_ ABSL_GUARDED_BY(mutex_);
    bool closed_ ABSL_GUARDED_BY(mutex_) = false;
    std::function<void()> ready_ ABSL_GUARDED_BY(mutex_);
  };

  std::shared_ptr<Subscription> Subscribe(const std::string& node);
  void Unsubscribe(const std::string& node, const std::shared_ptr<Subscription>& subscription);
  void Send(const std::string& node, const tended::v1::Directive& directive);
  bool IsConnected(const std::string& node) const;
  size_t connected() const;
  // Ends every stream (server shutdown).
  void CloseAll();

 private:
  mutable absl::Mutex mutex_;
  std::multimap<std::string, std::shared_ptr<Subscription>> subscriptions_
      ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CORE_DIRECTIVE_HUB_H_
