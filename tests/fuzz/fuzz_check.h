// FUZZ_CHECK for the fuzz targets: an invariant that does not hold prints what failed and
// aborts, which libFuzzer reports as a crash and saves the input.
#ifndef TENDED_TESTS_FUZZ_FUZZ_CHECK_H_
#define TENDED_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

#endif  // TENDED_TESTS_FUZZ_FUZZ_CHECK_H_
