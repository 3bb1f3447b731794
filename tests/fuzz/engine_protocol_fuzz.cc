// The apt engine's wire format, both ways: the request the engine reads on its stdin and the
// reply lines the agent reads back. The first byte picks the direction (and, for a reply,
// the call whose value the end line carries). Whatever decodes must encode to a text that
// decodes again to the same encoding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/apt/engine_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tended::agent::apt::DecodeEngineReplyLine;
using tended::agent::apt::DecodeEngineRequest;
using tended::agent::apt::EncodeEndLine;
using tended::agent::apt::EncodeEngineRequest;
using tended::agent::apt::EncodeProgressLine;
using tended::agent::apt::EngineCall;
using tended::agent::apt::EngineReplyLine;
using tended::agent::apt::EngineRequest;

constexpr int kCalls = static_cast<int>(EngineCall::kAvailableVersions) + 1;

std::string Encode(const EngineReplyLine& line) {
  return line.is_progress ? EncodeProgressLine(line.progress) : EncodeEndLine(line.end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % (kCalls + 1) == kCalls) {
    absl::StatusOr<EngineRequest> request = DecodeEngineRequest(text);
    if (!request.ok()) return 0;
    std::string encoded = EncodeEngineRequest(*request);
    absl::StatusOr<EngineRequest> again = DecodeEngineRequest(encoded);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(EncodeEngineRequest(*again) == encoded);
    return 0;
  }
  EngineCall call = static_cast<EngineCall>(data[0] % (kCalls + 1));
  absl::StatusOr<EngineReplyLine> line = DecodeEngineReplyLine(call, text);
  if (!line.ok()) return 0;
  std::string encoded = Encode(*line);
  absl::StatusOr<EngineReplyLine> again = DecodeEngineReplyLine(call, encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->is_progress == line->is_progress);
  FUZZ_CHECK(Encode(*again) == encoded);
  return 0;
}
