// The apt source switch of a minor Kubernetes upgrade on any sources file: a switched file
// switched again to the same target changes nothing.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/k8s/apt_source.h"
#include "common/kube_version.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  tended::KubeVersion target;
  target.major = 1;
  target.minor = input.ConsumeIntegralInRange<int>(0, 40);
  target.patch = input.ConsumeIntegralInRange<int>(0, 20);
  const std::string pattern = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";
  std::string text = input.ConsumeRemainingBytesAsString();
  absl::StatusOr<tended::agent::k8s::SourceSwitch> switched =
      tended::agent::k8s::SwitchSourceMinor(text, pattern, target);
  if (!switched.ok()) return 0;
  absl::StatusOr<tended::agent::k8s::SourceSwitch> again =
      tended::agent::k8s::SwitchSourceMinor(switched->text, pattern, target);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->lines_changed == 0);
  FUZZ_CHECK(again->text == switched->text);
  return 0;
}
