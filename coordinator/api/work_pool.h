// A fixed set of threads that run the coordinator's unary calls for the gRPC callback API:
// a call may wait for its change to be durable (one fsync, shared with the calls around
// it), and that wait must not hold one of gRPC's own threads. The queue is bounded; past
// it a call is refused at once (RESOURCE_EXHAUSTED) rather than queued for ever.
// Thread-safe.
#ifndef TENDED_COORDINATOR_API_WORK_POOL_H_
#define TENDED_COORDINATOR_API_WORK_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace tended::coordinator {

class WorkPool {
 public:
  WorkPool(int threads, size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~WorkPool();

  // False (and `work` not run) when the queue is full or the pool stopping.
  bool Submit(std::function<void()> work);
  size_t queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  const size_t max_queued_;
  mutable absl::Mutex mutex_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_API_WORK_POOL_H_
