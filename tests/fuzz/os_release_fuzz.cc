// /etc/os-release as the unattended-upgrades origin patterns read it (${distro_id},
// ${distro_codename}).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "agent/apt/upgrade_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view contents(reinterpret_cast<const char*>(data), size);
  (void)tended::agent::apt::ParseOsRelease(contents);
  return 0;
}
