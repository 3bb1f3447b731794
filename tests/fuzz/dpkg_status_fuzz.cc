// dpkg's status database (/var/lib/dpkg/status) as the Kubernetes version detector reads
// it: every package it reports installed has a name and a version.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/k8s/version_detector.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::map<std::string, std::string>> installed =
      tended::agent::k8s::ParseInstalledPackages(text);
  if (!installed.ok()) return 0;
  for (const auto& [name, version] : *installed) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(!version.empty());
  }
  return 0;
}
