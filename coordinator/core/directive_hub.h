// Fans directives out to the agents' WatchDirectives streams: one queue per connected
// stream, keyed by node. Thread-safe.
#ifndef TENDED_COORDINATOR_DIRECTIVE_HUB_H_
#define TENDED_COORDINATOR_DIRECTIVE_HUB_H_

#include <deque>
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
  class Subscription {
   public:
    // Waits up to `timeout` for the next directive; nullopt on timeout or after Close().
    std::optional<tended::v1::Directive> Next(absl::Duration timeout);
    bool closed() const;

   private:
    friend class DirectiveHub;
    mutable absl::Mutex mutex_;
    std::deque<tended::v1::Directive> queue_ ABSL_GUARDED_BY(mutex_);
    bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  };

  std::shared_ptr<Subscription> Subscribe(const std::string& node);
  void Unsubscribe(const std::string& node, const std::shared_ptr<Subscription>& subscription);
  void Send(const std::string& node, const tended::v1::Directive& directive);
  bool IsConnected(const std::string& node) const;
  // Ends every stream (server shutdown).
  void CloseAll();

 private:
  mutable absl::Mutex mutex_;
  std::multimap<std::string, std::shared_ptr<Subscription>> subscriptions_
      ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_DIRECTIVE_HUB_H_
