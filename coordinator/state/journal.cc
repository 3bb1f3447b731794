#include "coordinator/state/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/posix_status.h"
#include "common/status_macros.h"
#include "coordinator/state/journal_format.h"
#include "coordinator/state/posix_file.h"

namespace tended::coordinator {
namespace {

namespace jf = journal_format;

uint64_t TotalBytes(const std::vector<JournalSegment>& segments) {
  uint64_t total = 0;
  for (const JournalSegment& segment : segments) total += segment.bytes;
  return total;
}

absl::Status PastTheEnd(uint64_t through_sequence, uint64_t last_sequence) {
  return absl::InvalidArgumentError(absl::StrCat("a snapshot through record ", through_sequence,
                                                 ", but the last is ", last_sequence));
}

}  // namespace

Journal::Journal(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const Options& options,
                                                       Recovered* recovered) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no state journal folder given");
  ASSIGN_OR_RETURN(JournalRecoveryResult result, RecoverJournal(options.dir));
  std::unique_ptr<Journal> journal(new Journal(options));
  {
    absl::MutexLock io(&journal->io_mu_);
    journal->segments_ = std::move(result.segments);
    journal->written_sequence_ = result.last_sequence;
    journal->has_snapshot_file_ = result.recovered.snapshot.has_value();
    journal->snapshot_file_sequence_ = result.recovered.snapshot_sequence;
    uint64_t next = result.last_sequence + 1;
    if (!journal->segments_.empty() && journal->segments_.back().first_sequence == next) {
      // An empty segment left by an earlier Open or snapshot: go on in it.
      const std::string& path = journal->segments_.back().path;
      journal->segment_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (journal->segment_fd_ < 0) return PosixErrorToStatus(absl::StrCat("open ", path), errno);
    } else {
      RETURN_IF_ERROR(journal->StartSegment(next));
    }
    absl::MutexLock lock(&journal->mu_);
    journal->last_sequence_ = result.last_sequence;
    journal->durable_sequence_ = result.last_sequence;
    journal->snapshot_sequence_ = result.recovered.snapshot_sequence;
    journal->journal_bytes_ = TotalBytes(journal->segments_);
  }
  if (!options.synchronous) {
    journal->writer_ = std::thread([raw = journal.get()] { raw->WriterLoop(); });
  }
  if (recovered != nullptr) *recovered = std::move(result.recovered);
  return journal;
}

Journal::~Journal() {
  Stop();
  absl::MutexLock io(&io_mu_);
  if (segment_fd_ >= 0) ::close(segment_fd_);
}

void Journal::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable() && !OnWriterThread()) writer_.join();
}

uint64_t Journal::Append(std::string payload) {
  if (failed()) return 0;
  if (payload.size() > jf::kMaxRecordPayload) {
    Fail(absl::InvalidArgumentError(absl::StrCat(
        "a record of ", payload.size(), " bytes, over the limit of ", jf::kMaxRecordPayload)));
    return 0;
  }
  uint32_t payload_crc = Crc32c(payload);
  if (!options_.synchronous) {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return 0;
    uint64_t sequence = ++last_sequence_;
    jf::AppendRecord(sequence, payload, payload_crc, &pending_);
    ++pending_records_;
    return sequence;
  }
  uint64_t sequence;
  absl::Status status;
  {
    absl::MutexLock io(&io_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (!failure_.ok()) return 0;
      sequence = ++last_sequence_;
    }
    std::string encoded;
    jf::AppendRecord(sequence, payload, payload_crc, &encoded);
    status = WriteBatch(encoded, sequence);
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      durable_sequence_ = std::max(durable_sequence_, sequence);
      ++stats_.batches;
      ++stats_.records;
      stats_.bytes_written += encoded.size();
      stats_.last_batch_records = 1;
      stats_.max_batch_records = std::max<uint64_t>(stats_.max_batch_records, 1);
      journal_bytes_ = TotalBytes(segments_);
    }
  }
  if (!status.ok()) {
    Fail(status);
  } else {
    RunDueCallbacks();  // Only callbacks registered for this sequence before it existed.
  }
  return sequence;
}

absl::Status Journal::WaitDurable(uint64_t sequence) {
  absl::MutexLock lock(&mu_);
  if (sequence == 0) return failure_;
  if (sequence > last_sequence_) {
    if (!failure_.ok()) return failure_;
    return absl::InvalidArgumentError(absl::StrCat(
        "state journal record ", sequence, " was never appended (last is ", last_sequence_, ")"));
  }
  auto ready = [this, sequence]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_sequence_ >= sequence || !failure_.ok();
  };
  mu_.Await(absl::Condition(&ready));
  if (durable_sequence_ >= sequence) return absl::OkStatus();
  return failure_;
}

void Journal::AfterDurable(uint64_t sequence, std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return;
    if (!options_.synchronous || sequence > durable_sequence_) {
      callbacks_.emplace(sequence, std::move(fn));
      return;
    }
  }
  fn();
}

absl::Status Journal::WriteSnapshot(uint64_t through_sequence, std::string bytes) {
  if (options_.synchronous || OnWriterThread()) return SnapshotNow(through_sequence, bytes);
  absl::Notification done;
  absl::Status result;
  ScheduleSnapshot(through_sequence, std::move(bytes), [&](const absl::Status& status) {
    result = status;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void Journal::ScheduleSnapshot(uint64_t through_sequence, std::string bytes,
                               std::function<void(const absl::Status&)> done) {
  absl::Status status;
  if (options_.synchronous || OnWriterThread()) {
    status = SnapshotNow(through_sequence, bytes);
  } else {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) {
      status = failure_;
    } else if (stopping_) {
      status = absl::FailedPreconditionError("the state journal is closing");
    } else if (through_sequence > last_sequence_) {
      status = PastTheEnd(through_sequence, last_sequence_);
    } else {
      snapshot_requests_.push_back({through_sequence, std::move(bytes), std::move(done)});
      return;
    }
  }
  if (done) done(status);
}

uint64_t Journal::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

uint64_t Journal::durable_sequence() const {
  absl::MutexLock lock(&mu_);
  return durable_sequence_;
}

uint64_t Journal::snapshot_sequence() const {
  absl::MutexLock lock(&mu_);
  return snapshot_sequence_;
}

absl::Status Journal::failure() const {
  absl::MutexLock lock(&mu_);
  return failure_;
}

uint64_t Journal::journal_bytes() const {
  absl::MutexLock lock(&mu_);
  return journal_bytes_;
}

Journal::Stats Journal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool Journal::OnWriterThread() const {
  return writer_id_.load(std::memory_order_acquire) == std::this_thread::get_id();
}

bool Journal::WriterHasWork() const {
  return pending_records_ > 0 || !snapshot_requests_.empty() || stopping_ || !failure_.ok() ||
         (!callbacks_.empty() && callbacks_.begin()->first <= durable_sequence_);
}

void Journal::WriterLoop() {
  writer_id_.store(std::this_thread::get_id(), std::memory_order_release);
  std::string batch;
  while (true) {
    batch.clear();
    uint64_t batch_records = 0;
    uint64_t batch_last = 0;
    std::vector<SnapshotRequest> snapshots;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Journal::WriterHasWork));
      if (!failure_.ok()) return;
      bool callbacks_due = !callbacks_.empty() && callbacks_.begin()->first <= durable_sequence_;
      if (stopping_ && pending_records_ == 0 && snapshot_requests_.empty() && !callbacks_due) {
        return;
      }
      batch.swap(pending_);
      batch_records = pending_records_;
      pending_records_ = 0;
      batch_last = last_sequence_;
      snapshots.swap(snapshot_requests_);
    }
    if (batch_records > 0) {
      absl::Status status;
      uint64_t journal_bytes = 0;
      {
        absl::MutexLock io(&io_mu_);
        status = WriteBatch(batch, batch_last);
        journal_bytes = TotalBytes(segments_);
      }
      if (!status.ok()) {
        Fail(status);
        absl::Status failure = this->failure();
        for (SnapshotRequest& request : snapshots) {
          if (request.done) request.done(failure);
        }
        return;
      }
      absl::MutexLock lock(&mu_);
      durable_sequence_ = std::max(durable_sequence_, batch_last);
      ++stats_.batches;
      stats_.records += batch_records;
      stats_.bytes_written += batch.size();
      stats_.last_batch_records = batch_records;
      stats_.max_batch_records = std::max(stats_.max_batch_records, batch_records);
      journal_bytes_ = journal_bytes;
    }
    RunDueCallbacks();
    for (SnapshotRequest& request : snapshots) {
      absl::Status status = SnapshotNow(request.through_sequence, request.bytes);
      if (request.done) request.done(status);
    }
  }
}

void Journal::RunDueCallbacks() {
  std::vector<std::function<void()>> due;
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return;
    auto end = callbacks_.upper_bound(durable_sequence_);
    for (auto it = callbacks_.begin(); it != end; ++it) due.push_back(std::move(it->second));
    callbacks_.erase(callbacks_.begin(), end);
  }
  for (std::function<void()>& fn : due) fn();
}

absl::Status Journal::Inject(absl::string_view operation) {
  if (!options_.fault_injector) return absl::OkStatus();
  absl::Status status = options_.fault_injector(operation);
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("injected fault on ", operation, ": ", status.message()));
}

absl::Status Journal::WriteBatch(absl::string_view encoded, uint64_t last_sequence) {
  if (segments_.back().bytes > 0 && segments_.back().bytes >= options_.segment_bytes) {
    RETURN_IF_ERROR(StartSegment(written_sequence_ + 1));
  }
  JournalSegment& segment = segments_.back();
  RETURN_IF_ERROR(Inject("write"));
  RETURN_IF_ERROR(WriteAll(segment_fd_, encoded, segment.path));
  segment.bytes += encoded.size();
  RETURN_IF_ERROR(Inject("fsync"));
  if (::fdatasync(segment_fd_) != 0) {
    return PosixErrorToStatus(absl::StrCat("fdatasync ", segment.path), errno);
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.fsyncs;
  }
  written_sequence_ = last_sequence;
  return absl::OkStatus();
}

absl::Status Journal::StartSegment(uint64_t first_sequence) {
  std::string path = absl::StrCat(options_.dir, "/", jf::SegmentName(first_sequence));
  RETURN_IF_ERROR(Inject("create"));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("create ", path), errno);
  absl::Status synced = Inject("dir-fsync");
  if (synced.ok()) synced = SyncDirectory(options_.dir);
  if (!synced.ok()) {
    ::close(fd);
    return synced;
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.fsyncs;
  }
  if (segment_fd_ >= 0) ::close(segment_fd_);
  segment_fd_ = fd;
  segments_.push_back(JournalSegment{first_sequence, std::move(path), 0});
  return absl::OkStatus();
}

absl::Status Journal::SnapshotNow(uint64_t through_sequence, absl::string_view bytes) {
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return failure_;
    if (through_sequence > last_sequence_) return PastTheEnd(through_sequence, last_sequence_);
  }
  absl::Status status;
  uint64_t journal_bytes = 0;
  {
    absl::MutexLock io(&io_mu_);
    if (has_snapshot_file_ && through_sequence < snapshot_file_sequence_) {
      return absl::InvalidArgumentError(absl::StrCat("a snapshot through record ", through_sequence,
                                                     ", older than snapshot ",
                                                     snapshot_file_sequence_));
    }
    status = WriteSnapshotFile(through_sequence, bytes);
    if (status.ok()) status = Compact(through_sequence);
    journal_bytes = TotalBytes(segments_);
  }
  if (!status.ok()) {
    Fail(status);
    return failure();
  }
  absl::MutexLock lock(&mu_);
  snapshot_sequence_ = through_sequence;
  durable_sequence_ = std::max(durable_sequence_, through_sequence);
  ++stats_.snapshots;
  journal_bytes_ = journal_bytes;
  return absl::OkStatus();
}

absl::Status Journal::WriteSnapshotFile(uint64_t through_sequence, absl::string_view bytes) {
  std::string path = absl::StrCat(options_.dir, "/", jf::SnapshotName(through_sequence));
  std::string temp_path = absl::StrCat(path, ".tmp");
  RETURN_IF_ERROR(Inject("snapshot"));
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return PosixErrorToStatus(absl::StrCat("create ", temp_path), errno);
  absl::Status status = WriteAll(fd, jf::EncodeSnapshotHeader(through_sequence, bytes), temp_path);
  if (status.ok()) status = WriteAll(fd, bytes, temp_path);
  if (status.ok()) status = Inject("snapshot-fsync");
  if (status.ok() && ::fsync(fd) != 0) {
    status = PosixErrorToStatus(absl::StrCat("fsync ", temp_path), errno);
  }
  if (::close(fd) != 0 && status.ok()) {
    status = PosixErrorToStatus(absl::StrCat("close ", temp_path), errno);
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.fsyncs;
  }
  RETURN_IF_ERROR(Inject("rename"));
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    return PosixErrorToStatus(absl::StrCat("rename ", temp_path, " to ", path), errno);
  }
  RETURN_IF_ERROR(Inject("dir-fsync"));
  RETURN_IF_ERROR(SyncDirectory(options_.dir));
  absl::MutexLock lock(&mu_);
  ++stats_.fsyncs;
  return absl::OkStatus();
}

absl::Status Journal::Compact(uint64_t through_sequence) {
  // Records after the snapshot go to a new segment, so that the older ones can go whole.
  if (segments_.back().bytes > 0) RETURN_IF_ERROR(StartSegment(written_sequence_ + 1));
  std::vector<std::string> doomed;
  if (has_snapshot_file_ && snapshot_file_sequence_ != through_sequence) {
    doomed.push_back(absl::StrCat(options_.dir, "/", jf::SnapshotName(snapshot_file_sequence_)));
  }
  has_snapshot_file_ = true;
  snapshot_file_sequence_ = through_sequence;
  size_t keep_from = 0;
  while (keep_from + 1 < segments_.size() &&
         segments_[keep_from + 1].first_sequence <= through_sequence + 1) {
    doomed.push_back(segments_[keep_from].path);
    ++keep_from;
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(keep_from));
  if (doomed.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Inject("remove"));
  for (const std::string& path : doomed) RETURN_IF_ERROR(RemoveFileIfExists(path));
  RETURN_IF_ERROR(Inject("dir-fsync"));
  RETURN_IF_ERROR(SyncDirectory(options_.dir));
  absl::MutexLock lock(&mu_);
  ++stats_.fsyncs;
  return absl::OkStatus();
}

void Journal::Fail(const absl::Status& cause) {
  std::multimap<uint64_t, std::function<void()>> dropped;
  std::vector<SnapshotRequest> requests;
  absl::Status failure;
  {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) return;
    failure_ = absl::UnavailableError(
        absl::StrCat("state journal in ", options_.dir, " failed (", cause.ToString(),
                     "); what is on disk is the state: restart from it"));
    failed_.store(true, std::memory_order_release);
    dropped.swap(callbacks_);
    requests.swap(snapshot_requests_);
    pending_.clear();
    pending_records_ = 0;
    failure = failure_;
  }
  dropped.clear();
  for (SnapshotRequest& request : requests) {
    if (request.done) request.done(failure);
  }
  if (options_.on_failure) options_.on_failure(failure);
}

}  // namespace tended::coordinator
