// The on-disk encoding of the coordinator's state journal: record and snapshot framing, and
// the file names. Only the journal and its recovery use it; both are described in journal.h.
#ifndef TENDED_COORDINATOR_STATE_JOURNAL_FORMAT_H_
#define TENDED_COORDINATOR_STATE_JOURNAL_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended::coordinator::journal_format {

// Record: magic[4] "\xD7TJ1", payload length u32, sequence u64, crc u32, payload. Integers
// are little-endian. crc = CRC-32C of the payload, extended with the 12 bytes of length and
// sequence (payload first, so that Append can checksum it before it takes its lock).
inline constexpr char kRecordMagic[] = "\xD7TJ1";
inline constexpr size_t kRecordHeaderBytes = 20;
// Larger payloads are refused by Append; a length above this on disk is corruption.
inline constexpr uint32_t kMaxRecordPayload = 256u << 20;

// Snapshot: magic[4] "\xD7TS1", format version u32, sequence u64, length u64, crc u32, bytes.
// crc = CRC-32C of the 20 bytes of version, sequence and length, extended with the bytes.
inline constexpr char kSnapshotMagic[] = "\xD7TS1";
inline constexpr uint32_t kSnapshotFormatVersion = 1;
inline constexpr size_t kSnapshotHeaderBytes = 28;

// Appends one framed record to `out`; `payload_crc` is Crc32c(payload).
void AppendRecord(uint64_t sequence, absl::string_view payload, uint32_t payload_crc,
                  std::string* out);

struct ParsedRecord {
  enum class Kind { kOk, kTruncated, kBadMagic, kBadLength, kBadChecksum };
  Kind kind = Kind::kOk;
  uint64_t sequence = 0;
  absl::string_view payload;
  size_t end = 0;  // Offset just past the record when kOk.
};
// Parses the record starting at `offset` of `data`.
ParsedRecord ParseRecord(absl::string_view data, size_t offset);
const char* DescribeKind(ParsedRecord::Kind kind);

// Whether a well-formed record (magic, length and checksum all good) starts anywhere at or
// after `offset`: what tells a torn tail from corruption with data behind it.
bool AnyValidRecordFrom(absl::string_view data, size_t offset);

std::string EncodeSnapshotHeader(uint64_t sequence, absl::string_view bytes);
struct DecodedSnapshot {
  uint64_t sequence = 0;
  std::string bytes;
};
// DATA_LOSS on a bad magic, length or checksum; FAILED_PRECONDITION for a version this build
// does not read.
absl::StatusOr<DecodedSnapshot> DecodeSnapshot(std::string contents);

// "journal-00000000000000000001.log" and "snapshot-00000000000000000042.bin".
std::string SegmentName(uint64_t first_sequence);
std::string SnapshotName(uint64_t sequence);
// The number in a name of exactly that shape, or nullopt.
std::optional<uint64_t> ParseSegmentName(absl::string_view name);
std::optional<uint64_t> ParseSnapshotName(absl::string_view name);

}  // namespace tended::coordinator::journal_format

#endif  // TENDED_COORDINATOR_STATE_JOURNAL_FORMAT_H_
