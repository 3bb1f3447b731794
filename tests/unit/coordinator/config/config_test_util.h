// Helpers shared by the coordinator configuration's tests (config_test.cc,
// config_errors_test.cc): parsing a YAML document named "c.yaml", its error message, and
// documents with one maintenance window.
#ifndef TENDED_TESTS_UNIT_COORDINATOR_CONFIG_CONFIG_TEST_UTIL_H_
#define TENDED_TESTS_UNIT_COORDINATOR_CONFIG_CONFIG_TEST_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "coordinator/config/config.h"
#include "gtest/gtest.h"

namespace tended::coordinator::config_test {

inline constexpr absl::Weekday kMon = absl::Weekday::monday;
inline constexpr absl::Weekday kTue = absl::Weekday::tuesday;
inline constexpr absl::Weekday kWed = absl::Weekday::wednesday;
inline constexpr absl::Weekday kThu = absl::Weekday::thursday;
inline constexpr absl::Weekday kFri = absl::Weekday::friday;
inline constexpr absl::Weekday kSat = absl::Weekday::saturday;
inline constexpr absl::Weekday kSun = absl::Weekday::sunday;

inline absl::StatusOr<CoordinatorConfig> Parse(const std::string& yaml) {
  return ParseCoordinatorConfig(yaml, "c.yaml");
}

// The error message, or "OK" when the document parsed.
inline std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<CoordinatorConfig> config = Parse(yaml);
  if (config.ok()) return "OK";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// A reboot lease with one window; `window_lines` are the window's keys, six spaces deep.
inline std::string RebootWithWindow(const std::string& window_lines) {
  return "leases:\n"
         "  reboot:\n"
         "    windows:\n"
         "      - " +
         window_lines;
}

inline absl::StatusOr<MaintenanceWindow> ParseOneWindow(const std::string& days,
                                                        const std::string& start,
                                                        const std::string& end) {
  absl::StatusOr<CoordinatorConfig> config = Parse(RebootWithWindow(
      "days: " + days + "\n        start: \"" + start + "\"\n        end: \"" + end + "\"\n"));
  if (!config.ok()) return config.status();
  return config->leases.at(tended::v1::LEASE_KIND_REBOOT).windows.at(0);
}

}  // namespace tended::coordinator::config_test

#endif  // TENDED_TESTS_UNIT_COORDINATOR_CONFIG_CONFIG_TEST_UTIL_H_
