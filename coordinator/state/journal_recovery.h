// Reads a state journal folder back after a start or a crash: the newest snapshot, the
// records after it, a torn last record dropped, anything else corrupt refused. The rules are
// in journal.h; Journal::Open is the only caller.
#ifndef TENDED_COORDINATOR_STATE_JOURNAL_RECOVERY_H_
#define TENDED_COORDINATOR_STATE_JOURNAL_RECOVERY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tended::coordinator {

// What the journal held at Open, for its owner to rebuild its state from.
struct RecoveredJournal {
  // No snapshot and no record: a missing folder, no files, or only empty segments.
  bool empty = true;
  std::optional<std::string> snapshot;
  uint64_t snapshot_sequence = 0;
  // The records after the snapshot, in sequence order (snapshot_sequence + 1, + 2, ...).
  std::vector<std::pair<uint64_t, std::string>> records;
  // The last record was torn (a crash while writing it) and was cut off the file.
  bool dropped_torn_tail = false;
  // What recovery noticed or changed, one sentence each, for the log.
  std::vector<std::string> notes;
};

// One journal segment file that stays in use.
struct JournalSegment {
  uint64_t first_sequence = 0;
  std::string path;
  uint64_t bytes = 0;
};

struct JournalRecoveryResult {
  RecoveredJournal recovered;
  // Live segments in sequence order; the last one is where appending may go on.
  std::vector<JournalSegment> segments;
  // The highest sequence in the snapshot or the records (0 when empty).
  uint64_t last_sequence = 0;
};

// Creates `dir` (0700) when missing. Cuts a torn tail off, removes leftover snapshot temp
// files, snapshots older than the newest and segments the newest snapshot covers; changes
// nothing before every file has been checked.
absl::StatusOr<JournalRecoveryResult> RecoverJournal(const std::string& dir);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_STATE_JOURNAL_RECOVERY_H_
