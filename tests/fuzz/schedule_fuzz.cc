// Cron schedules from the configuration ("0 12 * * sun") in a few time zones with daylight
// saving time, and Next() from an instant the input picks: a run is strictly after the
// instant, and the run after it strictly after that.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/schedule.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kZones[] = {
      "UTC",          "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
      "Asia/Kolkata", "Nowhere/At_All"};
  FuzzedDataProvider input(data, size);
  const char* zone = input.PickValueInArray(kZones);
  // 1970 .. ~2100, so that Next's five years ahead stay in absl's civil range.
  absl::Time after = absl::FromUnixSeconds(input.ConsumeIntegralInRange<int64_t>(0, 4102444800));
  std::string expression = input.ConsumeRemainingBytesAsString();
  absl::StatusOr<tended::Schedule> schedule = tended::Schedule::Parse(expression, zone);
  if (!schedule.ok()) return 0;
  absl::Time next = schedule->Next(after);
  FUZZ_CHECK(next > after);
  if (next != absl::InfiniteFuture()) FUZZ_CHECK(schedule->Next(next) > next);
  return 0;
}
