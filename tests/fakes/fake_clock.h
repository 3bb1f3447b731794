// A clock that moves only when a test says so. Thread-safe.
#ifndef TENDED_TESTS_FAKES_FAKE_CLOCK_H_
#define TENDED_TESTS_FAKES_FAKE_CLOCK_H_

#include <mutex>

#include "absl/time/time.h"
#include "common/clock.h"

namespace tended::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600))  // 2026-01-01Z
      : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }
  void Advance(absl::Duration by) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += by;
  }
  void Set(absl::Time to) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ = to;
  }

 private:
  mutable std::mutex mutex_;
  absl::Time now_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_CLOCK_H_
