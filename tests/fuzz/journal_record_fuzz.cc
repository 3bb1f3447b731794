// The state journal's record framing as recovery reads a segment file, and the ledger
// records inside. The first byte picks the mode: raw segment bytes (magic, length, checksum
// and truncation handling), or payloads framed with good checksums so that the protobuf
// decode and StateImage::Apply behind them are reached too.
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/crc32c.h"
#include "coordinator/state/journal_format.h"
#include "coordinator/state/state_image.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tended::coordinator::journal_format::AnyValidRecordFrom;
using tended::coordinator::journal_format::AppendRecord;
using tended::coordinator::journal_format::DescribeKind;
using tended::coordinator::journal_format::ParsedRecord;
using tended::coordinator::journal_format::ParseRecord;

// Reads records from the start as recovery does; every good one must frame back to the
// same bytes.
void ReadSegment(absl::string_view data, tended::coordinator::state::StateImage* image) {
  size_t offset = 0;
  while (offset < data.size()) {
    ParsedRecord record = ParseRecord(data, offset);
    FUZZ_CHECK(DescribeKind(record.kind) != nullptr);
    if (record.kind != ParsedRecord::Kind::kOk) {
      AnyValidRecordFrom(data, offset + 1);
      return;
    }
    FUZZ_CHECK(record.end > offset && record.end <= data.size());
    std::string framed;
    AppendRecord(record.sequence, record.payload, tended::Crc32c(record.payload), &framed);
    FUZZ_CHECK(framed == data.substr(offset, record.end - offset));
    if (image != nullptr) {
      tended::state::v1::LedgerRecord ledger_record;
      if (ledger_record.ParseFromString(std::string(record.payload))) {
        (void)image->Apply(ledger_record);
      }
    }
    offset = record.end;
  }
}

}  // namespace

// Protobuf logs every string field that is not UTF-8: noise here, and slow.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider input(data + 1, size - 1);
  tended::coordinator::state::StateImage image(16);
  if (data[0] % 2 == 0) {
    std::string bytes = input.ConsumeRemainingBytesAsString();
    ReadSegment(bytes, &image);
    return 0;
  }
  std::string segment;
  uint64_t sequence = 1;
  while (input.remaining_bytes() > 0) {
    std::string payload = input.ConsumeRandomLengthString(4096);
    AppendRecord(sequence++, payload, tended::Crc32c(payload), &segment);
  }
  ReadSegment(segment, &image);
  (void)image.ToProto();
  return 0;
}
