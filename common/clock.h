// The time source every piece of tended logic takes by reference, so that leases, gates,
// soaks and backoff run against a fake clock in tests. Only main() picks the real one.
#ifndef TENDED_COMMON_CLOCK_H_
#define TENDED_COMMON_CLOCK_H_

#include "absl/time/time.h"

namespace tended {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide wall clock. Thread-safe.
  static const Clock& Real();
};

}  // namespace tended

#endif  // TENDED_COMMON_CLOCK_H_
