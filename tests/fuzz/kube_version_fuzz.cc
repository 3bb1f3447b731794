// Kubernetes versions as operators give them (strict) and as nodes report them (lenient).
// An accepted version prints to a text both parsers read back as the same version, and a
// reported version is its own package version.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/kube_version.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tended::KubeVersion> target = tended::ParseTargetVersion(text);
  if (target.ok()) {
    absl::StatusOr<tended::KubeVersion> again = tended::ParseTargetVersion(target->ToString());
    FUZZ_CHECK(again.ok() && *again == *target);
    absl::StatusOr<tended::KubeVersion> reported = tended::ParseReportedVersion(text);
    FUZZ_CHECK(reported.ok() && *reported == *target);
  }
  absl::StatusOr<tended::KubeVersion> reported = tended::ParseReportedVersion(text);
  if (reported.ok()) {
    absl::StatusOr<tended::KubeVersion> again = tended::ParseReportedVersion(reported->ToTag());
    FUZZ_CHECK(again.ok() && *again == *reported);
    (void)tended::PackageVersionIs(text, *reported);
  }
  return 0;
}
