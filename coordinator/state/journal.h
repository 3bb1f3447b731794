// The coordinator's state journal: an append-only log of opaque, checksummed records with
// group commit, snapshots for compaction and crash recovery. It is the storage under the
// state ledger, which gives the records their meaning; the journal only orders them, makes
// them durable and hands them back after a restart.
//
// Writing. Append gives each record the next sequence number (1, 2, ...; continuing after a
// restart) and queues it. One writer thread takes everything queued, writes it with one
// write() and makes it durable with one fdatasync(): the more callers wait, the larger the
// batch (group commit). WaitDurable blocks until a record is durable; AfterDurable runs a
// function then instead, on the writer thread. In synchronous mode there is no thread: Append
// writes and syncs on the caller's thread (for the deterministic fleet simulation and tests).
//
// Fail-stop. Any failed write, fsync, rename, create or remove (or an error from
// Options::fault_injector) fails the journal for good: every pending and later wait returns
// UNAVAILABLE naming the cause, AfterDurable callbacks still pending never run, Append returns
// 0, on_failure runs once. After a failed fsync the kernel may already have dropped the dirty
// pages and marked them clean (PostgreSQL's "fsyncgate", 2018), so a retry can report success
// for data that never reached the disk: the only trustworthy state is what is on disk, and the
// coordinator stops and restarts from it.
//
// Files, all in one folder (mode 0700), integers little-endian:
//   journal-<first sequence, 20 digits>.log  segments; each record is a 20-byte header
//       (magic "\xD7TJ1", payload length u32, sequence u64, CRC-32C u32 of the payload
//       extended with the length and sequence bytes) followed by the payload. The records of
//       a segment are consecutive, starting at the number in its name.
//   snapshot-<sequence, 20 digits>.bin  the owner's state after every record up to that
//       sequence: a 28-byte header (magic "\xD7TS1", format version u32 = 1, sequence u64,
//       length u64, CRC-32C u32 of version, sequence, length and bytes) and the bytes. Written
//       to snapshot-....bin.tmp, fsync'ed, renamed into place, folder fsync'ed.
//   LOCK  StateDirLock's (state_dir_lock.h); the journal does not take it, its owner does.
// Only the newest snapshot is kept: every segment it fully covers is removed with the older
// snapshot, so an older snapshot could not be replayed forward anyway. A new segment starts
// at every snapshot, at every Open and when the current one passes Options::segment_bytes,
// unless the current one is still empty.
// The folder is fsync'ed whenever a file in it is created, renamed or removed.
//
// Recovery (Open):
//   - The newest snapshot must be whole: a bad checksum, length or magic is DATA_LOSS naming
//     the file. Recovery never falls back to an older state.
//   - Then the records after the snapshot are replayed in order. Sequence numbers must run on
//     without a gap or repeat, within a segment and from one segment to the next, and the
//     first segment must start at or before the record after the snapshot.
//   - A bad record in the last segment with no well-formed record anywhere after it (the file
//     ends inside a record, a bad checksum on the very last record, zeros the file system
//     left after the last write) is the record being written at a crash, never acknowledged:
//     it is dropped, the file cut back to the last good record, and a note says so.
//   - Anything else corrupt is DATA_LOSS with the file and offset: a bad record followed by
//     good ones, a bad record in an earlier segment, a gap, a repeat, a record missing between
//     the snapshot and the journal. A record is never silently lost. (A crash that wrote the
//     later pages of a batch but not the earlier ones also ends here: refusing is the safe
//     side.)
//   - A snapshot newer than every record is fine. Unknown files are left alone (noted),
//     leftover snapshot temp files removed, and so are segments the snapshot covers.
#ifndef TENDED_COORDINATOR_STATE_JOURNAL_H_
#define TENDED_COORDINATOR_STATE_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/state/journal_recovery.h"

namespace tended::coordinator {

class Journal {
 public:
  struct Options {
    std::string dir;
    // No writer thread: Append writes and fdatasyncs before it returns.
    bool synchronous = false;
    // Consulted before each file operation with its name: "write", "fsync" (a segment's
    // fdatasync), "create" (a new segment), "snapshot" (writing a snapshot's temp file),
    // "snapshot-fsync", "rename", "remove" (compaction), "dir-fsync". An error fails the
    // journal as if the operation had failed. For tests.
    std::function<absl::Status(absl::string_view operation)> fault_injector;
    // Runs once when the journal fails, on the thread that saw the failure (the writer thread;
    // in synchronous mode possibly the thread inside Append), without the journal's lock. It
    // should only record the failure or start the shutdown.
    std::function<void(const absl::Status&)> on_failure;
    // A new segment starts once the current one is past this size.
    uint64_t segment_bytes = 64ull << 20;
  };

  using Recovered = RecoveredJournal;

  struct Stats {
    uint64_t batches = 0;        // Writes of queued records, each followed by one sync.
    uint64_t records = 0;        // Records written.
    uint64_t fsyncs = 0;         // fdatasync/fsync calls of every kind.
    uint64_t bytes_written = 0;  // Record bytes written to segments.
    uint64_t last_batch_records = 0;
    uint64_t max_batch_records = 0;
    uint64_t snapshots = 0;
  };

  // Recovers the folder (creating it when missing, see above) into `recovered` (may be null)
  // and opens the journal to append after the last recovered record. Errors: DATA_LOSS for
  // corruption, FAILED_PRECONDITION for a snapshot format this build does not read, or the
  // I/O error. Take the folder's StateDirLock first.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const Options& options,
                                                       Recovered* recovered);

  // Writes and syncs whatever is queued, runs the callbacks that become due, then stops the
  // writer. Callbacks for sequences never appended are dropped. For when nothing appends any
  // more: the journal still answers its callbacks' calls meanwhile. The destructor stops.
  void Stop();
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Assigns the next sequence number and queues the record. In asynchronous mode it takes a
  // short lock, copies the payload and returns: no I/O, no callback. Returns 0 and does
  // nothing once the journal has failed (and fails it for a payload over 256 MiB).
  uint64_t Append(std::string payload);

  // Blocks until every record up to `sequence` is durable. UNAVAILABLE with the cause when the
  // journal failed first (also for sequence 0, which is what Append returns after a failure);
  // INVALID_ARGUMENT for a sequence not yet appended. Never call it from an AfterDurable
  // callback for a later record, nor while holding a lock such a callback takes.
  absl::Status WaitDurable(uint64_t sequence);

  // Runs `fn` once every record up to `sequence` is durable: on the writer thread (in
  // synchronous mode: right here when already durable), never under the journal's lock.
  // Callbacks that come due together run in sequence order, ties in registration order. Never
  // runs when the journal fails before `sequence` is durable, nor when registered after a
  // failure. `fn` may call any Journal method except WaitDurable for a later record.
  void AfterDurable(uint64_t sequence, std::function<void()> fn);

  // Writes a snapshot holding the owner's state after every record up to `through_sequence`,
  // then starts a new segment and removes the older snapshot and the segments it covers.
  // Blocks until done; callable from any thread, AfterDurable callbacks included (there it
  // runs at once on the writer thread, between batches). Records up to `through_sequence` not
  // yet written count as durable once the snapshot is. INVALID_ARGUMENT when
  // `through_sequence` is past last_sequence() or before the current snapshot (the journal
  // stays good); UNAVAILABLE when the journal failed, before or because of this write.
  absl::Status WriteSnapshot(uint64_t through_sequence, std::string bytes);

  // WriteSnapshot without waiting: the writer thread does it between batches and then calls
  // `done` (if set) with the result. In synchronous mode, or on the writer thread, it is
  // written before this returns.
  void ScheduleSnapshot(uint64_t through_sequence, std::string bytes,
                        std::function<void(const absl::Status&)> done = nullptr);

  uint64_t last_sequence() const;     // The last sequence Append assigned.
  uint64_t durable_sequence() const;  // Everything up to it is on disk.
  uint64_t snapshot_sequence() const;
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  absl::Status failure() const;  // OK while not failed.
  // Bytes in the segments still kept, i.e. written since the last snapshot started a new one
  // (plus any segment that straddles it): what the owner weighs to decide when to compact.
  uint64_t journal_bytes() const;
  Stats stats() const;

 private:
  struct SnapshotRequest {
    uint64_t through_sequence;
    std::string bytes;
    std::function<void(const absl::Status&)> done;
  };

  explicit Journal(Options options);

  void WriterLoop();
  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OnWriterThread() const;
  // Runs the callbacks due at durable_ (after taking them out under mu_).
  void RunDueCallbacks() ABSL_LOCKS_EXCLUDED(mu_, io_mu_);
  // Writes and syncs one batch of encoded records, rolling the segment first when it is full.
  absl::Status WriteBatch(absl::string_view encoded, uint64_t last_sequence)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  absl::Status StartSegment(uint64_t first_sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  absl::Status SnapshotNow(uint64_t through_sequence, absl::string_view bytes)
      ABSL_LOCKS_EXCLUDED(mu_, io_mu_);
  absl::Status WriteSnapshotFile(uint64_t through_sequence, absl::string_view bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  absl::Status Compact(uint64_t through_sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  absl::Status Inject(absl::string_view operation);
  // Marks the journal failed (first cause wins) and runs on_failure once.
  void Fail(const absl::Status& cause) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;

  // Serialises file I/O: the writer thread, or the appending caller in synchronous mode.
  // Taken before mu_ when both are needed, and never while mu_ is held.
  absl::Mutex io_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<JournalSegment> segments_ ABSL_GUARDED_BY(io_mu_);  // Last = current.
  int segment_fd_ ABSL_GUARDED_BY(io_mu_) = -1;
  uint64_t written_sequence_ ABSL_GUARDED_BY(io_mu_) = 0;
  bool has_snapshot_file_ ABSL_GUARDED_BY(io_mu_) = false;
  uint64_t snapshot_file_sequence_ ABSL_GUARDED_BY(io_mu_) = 0;

  mutable absl::Mutex mu_;
  uint64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t snapshot_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::string pending_ ABSL_GUARDED_BY(mu_);  // Encoded records not yet taken by the writer.
  uint64_t pending_records_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<uint64_t, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  std::vector<SnapshotRequest> snapshot_requests_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t journal_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> failed_{false};

  std::atomic<std::thread::id> writer_id_{};
  std::thread writer_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_STATE_JOURNAL_H_
