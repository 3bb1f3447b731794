#include "coordinator/state/journal_recovery.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/posix_status.h"
#include "common/status_macros.h"
#include "coordinator/state/journal_format.h"
#include "coordinator/state/posix_file.h"
#include "coordinator/state/state_dir_lock.h"

namespace tended::coordinator {
namespace {

namespace jf = journal_format;

struct Truncation {
  std::string path;
  uint64_t length = 0;
};

absl::Status TruncateFile(const Truncation& cut) {
  int fd = ::open(cut.path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("open ", cut.path), errno);
  if (::ftruncate(fd, static_cast<off_t>(cut.length)) != 0 || ::fdatasync(fd) != 0) {
    int saved_errno = errno;
    ::close(fd);
    return PosixErrorToStatus(absl::StrCat("truncate ", cut.path), saved_errno);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status SegmentCorrupt(const std::string& path, size_t offset, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("state journal ", path, " at offset ", offset, ": ", what,
                                          "; refusing to start without that record"));
}

}  // namespace

absl::StatusOr<JournalRecoveryResult> RecoverJournal(const std::string& dir) {
  JournalRecoveryResult result;
  RecoveredJournal& out = result.recovered;
  RETURN_IF_ERROR(EnsureDirectory(dir));
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));

  std::map<uint64_t, std::string> snapshots;
  std::map<uint64_t, std::string> segments;
  std::vector<std::string> to_remove;
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    if (name == kStateDirLockFileName) continue;
    if (auto sequence = jf::ParseSnapshotName(name)) {
      snapshots[*sequence] = path;
    } else if (auto first = jf::ParseSegmentName(name); first && *first > 0) {
      segments[*first] = path;
    } else if (absl::StartsWith(name, "snapshot-") && absl::EndsWith(name, ".bin.tmp")) {
      to_remove.push_back(path);
      out.notes.push_back(absl::StrCat("removed ", path, ", a snapshot never completed"));
    } else {
      out.notes.push_back(absl::StrCat("left alone ", path, ": not a journal file"));
    }
  }

  uint64_t snapshot_sequence = 0;
  if (!snapshots.empty()) {
    const auto& [sequence, path] = *snapshots.rbegin();
    ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
    absl::StatusOr<jf::DecodedSnapshot> decoded = jf::DecodeSnapshot(std::move(contents));
    if (decoded.ok() && decoded->sequence != sequence) {
      decoded = absl::DataLossError(absl::StrCat("its header says sequence ", decoded->sequence));
    }
    if (!decoded.ok()) {
      return absl::Status(decoded.status().code(),
                          absl::StrCat("state snapshot ", path, ": ", decoded.status().message(),
                                       "; refusing to start from an older state or without it"));
    }
    snapshot_sequence = sequence;
    out.snapshot = std::move(decoded->bytes);
    out.snapshot_sequence = sequence;
    for (const auto& [older, older_path] : snapshots) {
      if (older == sequence) continue;
      to_remove.push_back(older_path);
      out.notes.push_back(absl::StrCat("removed ", older_path, ", older than ", path));
    }
  }

  std::vector<std::pair<uint64_t, std::string>> files(segments.begin(), segments.end());
  size_t first_live = 0;
  // A segment is covered when the next one starts at or before the record after the snapshot.
  while (first_live + 1 < files.size() && files[first_live + 1].first <= snapshot_sequence + 1) {
    to_remove.push_back(files[first_live].second);
    out.notes.push_back(absl::StrCat("removed ", files[first_live].second,
                                     ", all of it covered by snapshot ", snapshot_sequence));
    ++first_live;
  }

  std::optional<Truncation> truncation;
  uint64_t last_sequence = snapshot_sequence;
  uint64_t previous_end = 0;  // The record after the last one of the previous segment.
  for (size_t i = first_live; i < files.size(); ++i) {
    const auto& [first, path] = files[i];
    bool last_file = i + 1 == files.size();
    if (i == first_live && first > snapshot_sequence + 1) {
      return absl::DataLossError(absl::StrCat(
          "state journal ", path, " starts at record ", first, " but ",
          snapshot_sequence == 0 ? std::string("there is no snapshot")
                                 : absl::StrCat("the snapshot ends at ", snapshot_sequence),
          ": records ", snapshot_sequence + 1, " to ", first - 1,
          " are missing; refusing to start"));
    }
    if (i != first_live && first != previous_end) {
      return absl::DataLossError(absl::StrCat("state journal ", path, " starts at record ", first,
                                              " but the segment before it ends at record ",
                                              previous_end - 1, "; refusing to start"));
    }
    ASSIGN_OR_RETURN(std::string data, ReadFileToString(path));
    uint64_t next = first;
    size_t offset = 0;
    while (offset < data.size()) {
      jf::ParsedRecord record = jf::ParseRecord(data, offset);
      if (record.kind == jf::ParsedRecord::Kind::kOk) {
        if (record.sequence != next) {
          return SegmentCorrupt(
              path, offset,
              absl::StrCat("record ", record.sequence, " where record ", next, " belongs (",
                           record.sequence > next ? "a gap" : "a repeat", ")"));
        }
        if (record.sequence > snapshot_sequence) {
          out.records.emplace_back(record.sequence, std::string(record.payload));
        }
        ++next;
        offset = record.end;
        continue;
      }
      if (last_file && !jf::AnyValidRecordFrom(data, offset + 1)) {
        truncation = Truncation{path, offset};
        out.dropped_torn_tail = true;
        out.notes.push_back(absl::StrCat(
            "cut ", path, " at offset ", offset, ", dropping ", data.size() - offset, " bytes (",
            jf::DescribeKind(record.kind), "): a record torn by a crash, never acknowledged"));
        break;
      }
      return SegmentCorrupt(path, offset,
                            absl::StrCat(jf::DescribeKind(record.kind),
                                         last_file ? ", with good records after it"
                                                   : ", in a segment that is not the last"));
    }
    previous_end = next;
    last_sequence = std::max(last_sequence, next - 1);
    result.segments.push_back(
        JournalSegment{first, path, truncation ? truncation->length : data.size()});
  }
  result.last_sequence = last_sequence;
  out.empty = !out.snapshot.has_value() && out.records.empty();

  if (truncation) RETURN_IF_ERROR(TruncateFile(*truncation));
  for (const std::string& path : to_remove) RETURN_IF_ERROR(RemoveFileIfExists(path));
  if (!to_remove.empty()) RETURN_IF_ERROR(SyncDirectory(dir));
  return result;
}

}  // namespace tended::coordinator
