// Shows scripts/sanitize.sh that the TSan build still reports races with absl::Mutex made
// visible (tsan_absl_mutex.cc): `guarded` shares a counter under the mutex, through Lock,
// Await and LockWhenWithTimeout, and must pass; `racy` adds one unguarded write, which
// ThreadSanitizer must report (exit code 66).
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace {

absl::Mutex mu;
int counter = 0;
int turns = 0;

void Guarded(int id) {
  for (int i = 0; i < 2000; ++i) {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* self) { return turns % 2 == *self; }, &id));
    ++counter;
    ++turns;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool racy = argc == 2 && std::strcmp(argv[1], "racy") == 0;
  if (argc != 2 || (!racy && std::strcmp(argv[1], "guarded") != 0)) {
    std::fprintf(stderr, "usage: tsan_self_check guarded|racy\n");
    return 2;
  }
  std::thread even(Guarded, 0);
  std::thread odd(Guarded, 1);
  even.join();
  odd.join();
  std::thread writer([racy] {
    if (racy) {
      ++counter;
    } else {
      mu.LockWhenWithTimeout(absl::Condition::kTrue, absl::Seconds(10));
      ++counter;
      mu.Unlock();
    }
  });
  {
    absl::MutexLock lock(&mu);
    ++counter;
  }
  writer.join();
  absl::MutexLock lock(&mu);
  return counter == 4002 ? 0 : 1;
}
