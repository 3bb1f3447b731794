// A state snapshot file: its header decode (a good one must encode back to the same bytes)
// and, behind a good checksum, the CoordinatorState it holds as recovery rebuilds it. The
// first byte picks raw file bytes or a body wrapped in a good header.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/state/journal_format.h"
#include "coordinator/state/state_image.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tended::coordinator::journal_format::DecodedSnapshot;
using tended::coordinator::journal_format::DecodeSnapshot;
using tended::coordinator::journal_format::EncodeSnapshotHeader;

void Rebuild(const std::string& bytes) {
  tended::state::v1::CoordinatorState state;
  if (!state.ParseFromString(bytes)) return;
  absl::StatusOr<tended::coordinator::state::StateImage> image =
      tended::coordinator::state::StateImage::FromProto(state, 16);
  if (!image.ok()) return;
  // What FromProto accepted must come back out and be accepted again.
  tended::state::v1::CoordinatorState again = image->ToProto();
  FUZZ_CHECK(tended::coordinator::state::StateImage::FromProto(again, 16).ok());
}

}  // namespace

// Protobuf logs every string field that is not UTF-8: noise here, and slow.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string contents = rest;
  if (data[0] % 2 == 1) contents = EncodeSnapshotHeader(7, rest) + rest;
  absl::StatusOr<DecodedSnapshot> decoded = DecodeSnapshot(contents);
  if (data[0] % 2 == 1) FUZZ_CHECK(decoded.ok() && decoded->sequence == 7);
  if (!decoded.ok()) return 0;
  FUZZ_CHECK(EncodeSnapshotHeader(decoded->sequence, decoded->bytes) + decoded->bytes == contents);
  Rebuild(decoded->bytes);
  return 0;
}
