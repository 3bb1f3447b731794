#include "coordinator/state/journal_format.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crc32c.h"

namespace tended::coordinator::journal_format {
namespace {

constexpr size_t kMagicBytes = 4;
constexpr size_t kNameDigits = 20;
constexpr absl::string_view kSegmentPrefix = "journal-";
constexpr absl::string_view kSegmentSuffix = ".log";
constexpr absl::string_view kSnapshotPrefix = "snapshot-";
constexpr absl::string_view kSnapshotSuffix = ".bin";

void PutU32(uint32_t value, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}
void PutU64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}
uint32_t GetU32(const char* p) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}
uint64_t GetU64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

std::optional<uint64_t> ParseName(absl::string_view name, absl::string_view prefix,
                                  absl::string_view suffix) {
  if (name.size() != prefix.size() + kNameDigits + suffix.size()) return std::nullopt;
  if (!absl::StartsWith(name, prefix) || !absl::EndsWith(name, suffix)) return std::nullopt;
  uint64_t value = 0;
  for (char c : name.substr(prefix.size(), kNameDigits)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

void AppendRecord(uint64_t sequence, absl::string_view payload, uint32_t payload_crc,
                  std::string* out) {
  out->append(kRecordMagic, kMagicBytes);
  size_t covered = out->size();
  PutU32(static_cast<uint32_t>(payload.size()), out);
  PutU64(sequence, out);
  uint32_t crc = Crc32cExtend(payload_crc, absl::string_view(out->data() + covered, 12));
  PutU32(crc, out);
  out->append(payload.data(), payload.size());
}

ParsedRecord ParseRecord(absl::string_view data, size_t offset) {
  ParsedRecord record;
  size_t left = data.size() - offset;
  const char* p = data.data() + offset;
  if (left < kMagicBytes) {
    // A few bytes: torn unless they cannot be the start of a record.
    record.kind = std::memcmp(p, kRecordMagic, left) == 0 ? ParsedRecord::Kind::kTruncated
                                                          : ParsedRecord::Kind::kBadMagic;
    return record;
  }
  if (std::memcmp(p, kRecordMagic, kMagicBytes) != 0) {
    record.kind = ParsedRecord::Kind::kBadMagic;
    return record;
  }
  if (left < kRecordHeaderBytes) {
    record.kind = ParsedRecord::Kind::kTruncated;
    return record;
  }
  uint32_t length = GetU32(p + 4);
  if (length > kMaxRecordPayload) {
    record.kind = ParsedRecord::Kind::kBadLength;
    return record;
  }
  if (left - kRecordHeaderBytes < length) {
    record.kind = ParsedRecord::Kind::kTruncated;
    return record;
  }
  absl::string_view payload(p + kRecordHeaderBytes, length);
  uint32_t crc = Crc32cExtend(Crc32c(payload), absl::string_view(p + 4, 12));
  if (crc != GetU32(p + 16)) {
    record.kind = ParsedRecord::Kind::kBadChecksum;
    return record;
  }
  record.sequence = GetU64(p + 8);
  record.payload = payload;
  record.end = offset + kRecordHeaderBytes + length;
  return record;
}

const char* DescribeKind(ParsedRecord::Kind kind) {
  switch (kind) {
    case ParsedRecord::Kind::kOk:
      return "a good record";
    case ParsedRecord::Kind::kTruncated:
      return "a record cut short by the end of the file";
    case ParsedRecord::Kind::kBadMagic:
      return "no record magic";
    case ParsedRecord::Kind::kBadLength:
      return "an impossible record length";
    case ParsedRecord::Kind::kBadChecksum:
      return "a record whose checksum does not match";
  }
  return "?";
}

bool AnyValidRecordFrom(absl::string_view data, size_t offset) {
  while (offset < data.size()) {
    size_t found = data.find(absl::string_view(kRecordMagic, kMagicBytes), offset);
    if (found == absl::string_view::npos) return false;
    if (ParseRecord(data, found).kind == ParsedRecord::Kind::kOk) return true;
    offset = found + 1;
  }
  return false;
}

std::string EncodeSnapshotHeader(uint64_t sequence, absl::string_view bytes) {
  std::string header(kSnapshotMagic, kMagicBytes);
  PutU32(kSnapshotFormatVersion, &header);
  PutU64(sequence, &header);
  PutU64(bytes.size(), &header);
  uint32_t crc = Crc32cExtend(Crc32c(absl::string_view(header).substr(kMagicBytes)), bytes);
  PutU32(crc, &header);
  return header;
}

absl::StatusOr<DecodedSnapshot> DecodeSnapshot(std::string contents) {
  if (contents.size() < kSnapshotHeaderBytes) {
    return absl::DataLossError(
        absl::StrCat("shorter (", contents.size(), " bytes) than a snapshot header"));
  }
  const char* p = contents.data();
  if (std::memcmp(p, kSnapshotMagic, kMagicBytes) != 0) {
    return absl::DataLossError("no snapshot magic");
  }
  uint64_t length = GetU64(p + 16);
  if (length != contents.size() - kSnapshotHeaderBytes) {
    return absl::DataLossError(absl::StrCat("header says ", length, " bytes, the file holds ",
                                            contents.size() - kSnapshotHeaderBytes));
  }
  absl::string_view body = absl::string_view(contents).substr(kSnapshotHeaderBytes);
  uint32_t crc = Crc32cExtend(Crc32c(absl::string_view(p + 4, 20)), body);
  if (crc != GetU32(p + 24)) return absl::DataLossError("checksum does not match");
  uint32_t version = GetU32(p + 4);
  if (version != kSnapshotFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot format version ", version, "; this build reads ", kSnapshotFormatVersion));
  }
  DecodedSnapshot snapshot;
  snapshot.sequence = GetU64(p + 8);
  contents.erase(0, kSnapshotHeaderBytes);
  snapshot.bytes = std::move(contents);
  return snapshot;
}

std::string SegmentName(uint64_t first_sequence) {
  return absl::StrFormat("%s%020u%s", kSegmentPrefix, first_sequence, kSegmentSuffix);
}

std::string SnapshotName(uint64_t sequence) {
  return absl::StrFormat("%s%020u%s", kSnapshotPrefix, sequence, kSnapshotSuffix);
}

std::optional<uint64_t> ParseSegmentName(absl::string_view name) {
  return ParseName(name, kSegmentPrefix, kSegmentSuffix);
}

std::optional<uint64_t> ParseSnapshotName(absl::string_view name) {
  return ParseName(name, kSnapshotPrefix, kSnapshotSuffix);
}

}  // namespace tended::coordinator::journal_format
