// Debian version ordering on two versions split from the input: a version equals itself,
// and swapping the two flips the sign.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/debian_version.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

int Sign(int value) { return (value > 0) - (value < 0); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  std::string a = input.ConsumeRandomLengthString(256);
  std::string b = input.ConsumeRemainingBytesAsString();
  FUZZ_CHECK(tended::CompareDebianVersions(a, a) == 0);
  FUZZ_CHECK(Sign(tended::CompareDebianVersions(a, b)) ==
             -Sign(tended::CompareDebianVersions(b, a)));
  return 0;
}
