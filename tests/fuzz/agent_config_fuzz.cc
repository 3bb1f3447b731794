// The agent's YAML configuration file (/etc/tended/agent.yaml). A configuration the parser
// accepts must pass the validation it claims to have applied.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tended::agent::AgentConfig> config =
      tended::agent::ParseAgentConfig(yaml, "fuzz.yaml");
  if (config.ok()) FUZZ_CHECK(tended::agent::ValidateAgentConfig(*config).ok());
  return 0;
}
