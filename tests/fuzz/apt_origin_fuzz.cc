// The apt policy values of the agent's configuration and of unattended-upgrades' files:
// Origins-Pattern entries, legacy Allowed-Origins entries and their ${distro_*} macros. The
// first byte picks which. A legacy entry the converter accepts becomes a pattern the
// pattern parser accepts.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/apt/upgrade_policy.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tended::agent::apt::DistroInfo;
using tended::agent::apt::OriginFields;
using tended::agent::apt::OriginPattern;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const DistroInfo distro{"Debian", "bookworm"};
  switch (data[0] % 3) {
    case 0: {
      absl::StatusOr<OriginPattern> pattern = OriginPattern::Parse(text);
      if (pattern.ok()) {
        OriginFields fields{"Debian", "Debian-Security", "stable-security", "bookworm",
                            "main",   "deb.debian.org"};
        (void)pattern->Matches(fields);
        (void)pattern->Matches(OriginFields{});
      }
      break;
    }
    case 1:
      (void)tended::agent::apt::SubstituteDistroMacros(text, distro);
      break;
    case 2: {
      absl::StatusOr<std::string> pattern =
          tended::agent::apt::LegacyAllowedOriginToPattern(text, distro);
      if (pattern.ok()) FUZZ_CHECK(OriginPattern::Parse(*pattern).ok());
      break;
    }
  }
  return 0;
}
