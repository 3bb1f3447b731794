#include "coordinator/state/journal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// How long a test waits for the writer thread before it calls that a failure (not a sleep:
// every wait ends as soon as its event happens).
constexpr absl::Duration kBound = absl::Seconds(60);

std::unique_ptr<Journal> OpenOrDie(const Journal::Options& options, Journal::Recovered* recovered) {
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options, recovered);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return journal.ok() ? std::move(*journal) : nullptr;
}

std::vector<std::string> FileNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// A fault injector that blocks one operation until released, and can be armed to fail one.
class Gate {
 public:
  std::function<absl::Status(absl::string_view)> Injector() {
    return [this](absl::string_view operation) { return Pass(operation); };
  }
  void HoldNext(std::string operation) {
    absl::MutexLock lock(&mu_);
    hold_ = std::move(operation);
  }
  void FailNext(std::string operation) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(operation);
  }
  bool WaitUntilHeld() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&held_), kBound);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    hold_.clear();
  }

 private:
  absl::Status Pass(absl::string_view operation) {
    absl::MutexLock lock(&mu_);
    if (!fail_.empty() && operation == fail_) {
      fail_.clear();
      return absl::InternalError("disk on fire");
    }
    if (!hold_.empty() && operation == hold_) {
      held_ = true;
      auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return hold_.empty(); };
      mu_.Await(absl::Condition(&released));
      held_ = false;
    }
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  std::string hold_ ABSL_GUARDED_BY(mu_);
  std::string fail_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

class JournalTest : public ::testing::TestWithParam<bool> {
 protected:
  Journal::Options Options() {
    Journal::Options options;
    options.dir = dir_.Path("state");
    options.synchronous = GetParam();
    return options;
  }
  testing::TempDir dir_;
};

TEST_P(JournalTest, AppendedRecordsComeBackInOrderAndSequencesContinue) {
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(Options(), &recovered);
    ASSERT_NE(journal, nullptr);
    EXPECT_TRUE(recovered.empty);
    EXPECT_EQ(journal->Append("first"), 1u);
    EXPECT_EQ(journal->Append(std::string("\0bin\xFF", 5)), 2u);
    EXPECT_EQ(journal->Append(""), 3u);
    EXPECT_TRUE(journal->WaitDurable(3).ok());
    EXPECT_EQ(journal->durable_sequence(), 3u);
    EXPECT_EQ(journal->last_sequence(), 3u);
    EXPECT_GT(journal->journal_bytes(), 0u);
  }
  {
    auto journal = OpenOrDie(Options(), &recovered);
    ASSERT_NE(journal, nullptr);
    EXPECT_FALSE(recovered.empty);
    EXPECT_FALSE(recovered.snapshot.has_value());
    EXPECT_FALSE(recovered.dropped_torn_tail);
    EXPECT_THAT(recovered.records,
                ElementsAre(Pair(1, "first"), Pair(2, std::string("\0bin\xFF", 5)), Pair(3, "")));
    EXPECT_EQ(journal->Append("fourth"), 4u);
    EXPECT_TRUE(journal->WaitDurable(4).ok());
  }
  auto journal = OpenOrDie(Options(), &recovered);
  ASSERT_NE(journal, nullptr);
  ASSERT_EQ(recovered.records.size(), 4u);
  EXPECT_THAT(recovered.records.back(), Pair(4, "fourth"));
}

TEST_P(JournalTest, ClosingWritesWhatWasQueued) {
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(Options(), &recovered);
    for (int i = 0; i < 100; ++i) journal->Append(std::to_string(i));
  }
  auto journal = OpenOrDie(Options(), &recovered);
  ASSERT_EQ(recovered.records.size(), 100u);
  EXPECT_THAT(recovered.records[99], Pair(100, "99"));
}

TEST_P(JournalTest, AfterDurableRunsOnceDurable) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  uint64_t sequence = journal->Append("a");
  absl::Notification ran;
  journal->AfterDurable(sequence, [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kBound));
  EXPECT_GE(journal->durable_sequence(), sequence);
}

TEST_P(JournalTest, SnapshotCompactsAndRecoveryGivesSnapshotPlusLaterRecords) {
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(Options(), &recovered);
    for (int i = 1; i <= 5; ++i) journal->Append("r" + std::to_string(i));
    ASSERT_TRUE(journal->WaitDurable(5).ok());
    uint64_t before = journal->journal_bytes();
    ASSERT_TRUE(journal->WriteSnapshot(5, "state@5").ok());
    EXPECT_EQ(journal->snapshot_sequence(), 5u);
    EXPECT_LT(journal->journal_bytes(), before);
    EXPECT_THAT(FileNames(Options().dir), UnorderedElementsAre("snapshot-00000000000000000005.bin",
                                                               "journal-00000000000000000006.log"));
    for (int i = 6; i <= 8; ++i) journal->Append("r" + std::to_string(i));
    // Record 8 is in the same segment as 6 and 7: that segment stays, snapshot 5 goes.
    ASSERT_TRUE(journal->WriteSnapshot(7, "state@7").ok());
    EXPECT_THAT(FileNames(Options().dir), UnorderedElementsAre("snapshot-00000000000000000007.bin",
                                                               "journal-00000000000000000006.log",
                                                               "journal-00000000000000000009.log"));
    journal->Append("r9");
    ASSERT_TRUE(journal->WaitDurable(9).ok());
    EXPECT_EQ(journal->stats().snapshots, 2u);
  }
  auto journal = OpenOrDie(Options(), &recovered);
  ASSERT_NE(journal, nullptr);
  EXPECT_FALSE(recovered.empty);
  EXPECT_EQ(recovered.snapshot, "state@7");
  EXPECT_EQ(recovered.snapshot_sequence, 7u);
  EXPECT_THAT(recovered.records, ElementsAre(Pair(8, "r8"), Pair(9, "r9")));
  EXPECT_EQ(journal->Append("r10"), 10u);
}

TEST_P(JournalTest, SegmentsRollBySizeAndRecoveryReadsAcrossThem) {
  Journal::Options options = Options();
  options.segment_bytes = 100;
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(options, &recovered);
    for (int i = 1; i <= 20; ++i) {
      ASSERT_TRUE(journal->WaitDurable(journal->Append(std::string(30, 'a' + i % 26))).ok());
    }
  }
  EXPECT_GT(FileNames(options.dir).size(), 5u);
  auto journal = OpenOrDie(options, &recovered);
  ASSERT_EQ(recovered.records.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(recovered.records[i].first, i + 1);
}

TEST_P(JournalTest, WriteSnapshotFromInsideAnAfterDurableCallback) {
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(Options(), &recovered);
    journal->Append("r1");
    journal->Append("r2");
    absl::Notification done;
    absl::Status snapshot_status = absl::UnknownError("not run");
    journal->AfterDurable(2, [&] {
      snapshot_status = journal->WriteSnapshot(2, "state@2");
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kBound));
    EXPECT_TRUE(snapshot_status.ok()) << snapshot_status;
    journal->Append("r3");
    ASSERT_TRUE(journal->WaitDurable(3).ok());
  }
  auto journal = OpenOrDie(Options(), &recovered);
  EXPECT_EQ(recovered.snapshot, "state@2");
  EXPECT_THAT(recovered.records, ElementsAre(Pair(3, "r3")));
}

TEST_P(JournalTest, SnapshotMayCoverARecordNotWrittenYet) {
  // In a callback the owner appends and snapshots state that includes the new record before
  // the writer gets to it: the snapshot makes it durable, recovery does not replay it twice.
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(Options(), &recovered);
    journal->Append("r1");
    absl::Notification done;
    absl::Status snapshot_status;
    journal->AfterDurable(1, [&] {
      uint64_t sequence = journal->Append("r2");
      snapshot_status = journal->WriteSnapshot(sequence, "state@2");
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kBound));
    ASSERT_TRUE(snapshot_status.ok()) << snapshot_status;
    EXPECT_TRUE(journal->WaitDurable(2).ok());
    EXPECT_EQ(journal->Append("r3"), 3u);
    EXPECT_TRUE(journal->WaitDurable(3).ok());
  }
  auto journal = OpenOrDie(Options(), &recovered);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(recovered.snapshot, "state@2");
  EXPECT_THAT(recovered.records, ElementsAre(Pair(3, "r3")));
  EXPECT_EQ(journal->Append("r4"), 4u);
}

TEST_P(JournalTest, SnapshotOutsideTheRecordsIsRefusedAndTheJournalStaysGood) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  journal->Append("r1");
  journal->Append("r2");
  EXPECT_EQ(journal->WriteSnapshot(3, "x").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(journal->WriteSnapshot(2, "state@2").ok());
  EXPECT_EQ(journal->WriteSnapshot(1, "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(journal->failed());
  EXPECT_EQ(journal->Append("r3"), 3u);
}

TEST_P(JournalTest, ScheduledSnapshotReportsWhenDone) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  journal->Append("r1");
  absl::Notification done;
  absl::Status result = absl::UnknownError("not run");
  journal->ScheduleSnapshot(1, "state@1", [&](const absl::Status& status) {
    result = status;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kBound));
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(journal->snapshot_sequence(), 1u);
}

TEST_P(JournalTest, WriteFaultFailsTheJournalForGood) {
  Gate gate;
  Journal::Options options = Options();
  options.fault_injector = gate.Injector();
  std::atomic<int> failures{0};
  options.on_failure = [&](const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    ++failures;
  };
  Journal::Recovered recovered;
  auto journal = OpenOrDie(options, &recovered);
  ASSERT_TRUE(journal->WaitDurable(journal->Append("r1")).ok());
  gate.FailNext("write");
  bool late_callback_ran = false;
  journal->AfterDurable(2, [&] { late_callback_ran = true; });
  uint64_t sequence = journal->Append("r2");
  EXPECT_EQ(sequence, 2u);
  absl::Status waited = journal->WaitDurable(sequence);
  EXPECT_EQ(waited.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(waited.message(), HasSubstr("injected fault on write"));
  EXPECT_THAT(waited.message(), HasSubstr("disk on fire"));
  EXPECT_TRUE(journal->failed());
  EXPECT_EQ(journal->failure(), waited);
  EXPECT_EQ(journal->Append("r3"), 0u);
  EXPECT_EQ(journal->WaitDurable(0).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(journal->WaitDurable(1).ok());  // Durable before the failure.
  journal->AfterDurable(1, [&] { late_callback_ran = true; });
  EXPECT_EQ(journal->WriteSnapshot(1, "x").code(), absl::StatusCode::kUnavailable);
  journal.reset();
  EXPECT_FALSE(late_callback_ran);
  EXPECT_EQ(failures.load(), 1);
  journal = OpenOrDie(Options(), &recovered);
  EXPECT_THAT(recovered.records, ElementsAre(Pair(1, "r1")));
}

TEST_P(JournalTest, FsyncFaultFailsEveryWaiter) {
  Gate gate;
  Journal::Options options = Options();
  options.fault_injector = gate.Injector();
  std::atomic<int> failures{0};
  options.on_failure = [&](const absl::Status&) { ++failures; };
  Journal::Recovered recovered;
  auto journal = OpenOrDie(options, &recovered);
  gate.FailNext("fsync");
  std::vector<uint64_t> sequences;
  for (int i = 0; i < 3; ++i) sequences.push_back(journal->Append("r"));
  std::vector<absl::Status> results(sequences.size());
  std::vector<std::thread> waiters;
  for (size_t i = 0; i < sequences.size(); ++i) {
    waiters.emplace_back([&, i] { results[i] = journal->WaitDurable(sequences[i]); });
  }
  for (std::thread& waiter : waiters) waiter.join();
  for (size_t i = 0; i < results.size(); ++i) {
    // Synchronous mode fails at the first Append; the later ones return 0.
    EXPECT_EQ(results[i].code(), absl::StatusCode::kUnavailable) << i;
    EXPECT_THAT(results[i].message(), HasSubstr("fsync"));
  }
  EXPECT_EQ(failures.load(), 1);
  EXPECT_EQ(journal->durable_sequence(), 0u);
}

TEST_P(JournalTest, SnapshotFaultFailsTheJournalAndKeepsTheRecords) {
  Gate gate;
  Journal::Options options = Options();
  options.fault_injector = gate.Injector();
  std::atomic<int> failures{0};
  options.on_failure = [&](const absl::Status&) { ++failures; };
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(options, &recovered);
    journal->Append("r1");
    journal->Append("r2");
    gate.FailNext("snapshot");
    absl::Status status = journal->WriteSnapshot(2, "state@2");
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(status.message(), HasSubstr("injected fault on snapshot"));
    EXPECT_TRUE(journal->failed());
    EXPECT_EQ(journal->Append("r3"), 0u);
    EXPECT_EQ(failures.load(), 1);
  }
  auto journal = OpenOrDie(Options(), &recovered);
  EXPECT_FALSE(recovered.snapshot.has_value());
  EXPECT_THAT(recovered.records, ElementsAre(Pair(1, "r1"), Pair(2, "r2")));
}

TEST_P(JournalTest, FailedRenameOfASnapshotLeavesNoSnapshot) {
  Gate gate;
  Journal::Options options = Options();
  options.fault_injector = gate.Injector();
  Journal::Recovered recovered;
  {
    auto journal = OpenOrDie(options, &recovered);
    journal->Append("r1");
    gate.FailNext("rename");
    EXPECT_EQ(journal->WriteSnapshot(1, "state@1").code(), absl::StatusCode::kUnavailable);
  }
  auto journal = OpenOrDie(Options(), &recovered);
  EXPECT_FALSE(recovered.snapshot.has_value());
  EXPECT_THAT(recovered.records, ElementsAre(Pair(1, "r1")));
}

INSTANTIATE_TEST_SUITE_P(Modes, JournalTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Synchronous" : "Asynchronous";
                         });

// Asynchronous mode only: the writer thread, its batches and its callbacks.
class JournalWriterTest : public ::testing::Test {
 protected:
  Journal::Options Options() {
    Journal::Options options;
    options.dir = dir_.Path("state");
    options.fault_injector = gate_.Injector();
    return options;
  }
  testing::TempDir dir_;
  Gate gate_;
};

TEST_F(JournalWriterTest, ConcurrentWritersShareFsyncs) {
  constexpr int kThreads = 16;
  constexpr int kRounds = 50;
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  // Hold the first sync until every writer has queued a record, so that batching is certain
  // rather than likely.
  gate_.HoldNext("fsync");
  std::atomic<int> errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        uint64_t sequence = journal->Append(std::string(300, static_cast<char>('a' + t)));
        if (!journal->WaitDurable(sequence).ok()) ++errors;
      }
    });
  }
  ASSERT_TRUE(gate_.WaitUntilHeld());
  absl::Time deadline = absl::Now() + kBound;
  while (journal->last_sequence() < kThreads && absl::Now() < deadline) std::this_thread::yield();
  EXPECT_EQ(journal->last_sequence(), uint64_t{kThreads}) << "Append waited for the disk";
  gate_.Release();
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(errors.load(), 0);
  Journal::Stats stats = journal->stats();
  EXPECT_EQ(stats.records, uint64_t{kThreads * kRounds});
  EXPECT_LT(stats.batches, stats.records);
  EXPECT_LT(stats.fsyncs, stats.records);
  EXPECT_GE(stats.max_batch_records, uint64_t{kThreads / 2});
  journal.reset();
  journal = OpenOrDie(Options(), &recovered);
  EXPECT_EQ(recovered.records.size(), size_t{kThreads * kRounds});
}

TEST_F(JournalWriterTest, CallbacksRunInSequenceOrderOffTheCallersThread) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  gate_.HoldNext("write");
  journal->Append("r1");
  ASSERT_TRUE(gate_.WaitUntilHeld());  // The writer took record 1 alone; 2 to 5 queue behind it.
  for (int i = 2; i <= 5; ++i) journal->Append("r");
  absl::Mutex mu;
  std::vector<std::string> order;
  std::vector<std::thread::id> threads;
  auto note = [&](std::string what) {
    absl::MutexLock lock(&mu);
    order.push_back(std::move(what));
    threads.push_back(std::this_thread::get_id());
  };
  for (int i = 5; i >= 1; --i) journal->AfterDurable(i, [&, i] { note(std::to_string(i)); });
  journal->AfterDurable(3, [&] { note("3b"); });
  gate_.Release();
  ASSERT_TRUE(journal->WaitDurable(5).ok());
  absl::Notification last;
  // Already durable: runs at the writer's next turn, after the other callbacks for 5.
  journal->AfterDurable(5, [&] { last.Notify(); });
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(kBound));
  absl::MutexLock lock(&mu);
  // Record 1 was its own batch, 2 to 5 the next one.
  EXPECT_THAT(order, ElementsAre("1", "2", "3", "3b", "4", "5"));
  for (std::thread::id id : threads) EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(journal->stats().batches, 2u);
}

TEST_F(JournalWriterTest, AppendDoesNotWaitForTheDisk) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  gate_.HoldNext("fsync");
  journal->Append("r1");
  ASSERT_TRUE(gate_.WaitUntilHeld());
  // The writer is stuck in its sync; appends still return at once.
  for (int i = 2; i <= 100; ++i) EXPECT_EQ(journal->Append("r"), uint64_t(i));
  EXPECT_EQ(journal->durable_sequence(), 0u);
  gate_.Release();
  EXPECT_TRUE(journal->WaitDurable(100).ok());
}

TEST_F(JournalWriterTest, WriteSnapshotFromAnotherThreadWaitsForTheWriter) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  for (int i = 0; i < 10; ++i) journal->Append("r");
  absl::Status status;
  std::thread snapshotter([&] { status = journal->WriteSnapshot(10, "state@10"); });
  snapshotter.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(journal->durable_sequence(), 10u);
  EXPECT_EQ(journal->snapshot_sequence(), 10u);
}

TEST_F(JournalWriterTest, WaitingForARecordNeverAppendedIsAnError) {
  Journal::Recovered recovered;
  auto journal = OpenOrDie(Options(), &recovered);
  EXPECT_EQ(journal->WaitDurable(1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(journal->WaitDurable(0).ok());
}

// A coordinator killed with -9 in the middle of writing: every record it was told was durable
// comes back, in order, and the journal goes on after it. Three kills in a row.
TEST_F(JournalWriterTest, KilledWriterLosesNothingAcknowledged) {
  uint64_t acknowledged = 0;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    int acks[2];
    ASSERT_EQ(::pipe(acks), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(acks[0]);
      Journal::Options options;
      options.dir = dir_.Path("state");
      Journal::Recovered recovered;
      auto journal = Journal::Open(options, &recovered);
      if (!journal.ok()) ::_exit(3);
      std::vector<std::thread> writers;
      for (int t = 0; t < 4; ++t) {
        writers.emplace_back([&] {
          while (true) {
            uint64_t sequence = (*journal)->Append(std::string(200, 'k'));
            if (!(*journal)->WaitDurable(sequence).ok()) ::_exit(4);
            if (::write(acks[1], &sequence, sizeof(sequence)) != sizeof(sequence)) ::_exit(5);
          }
        });
      }
      for (std::thread& writer : writers) writer.join();
      ::_exit(6);
    }
    ::close(acks[1]);
    uint64_t sequence = 0;
    int received = 0;
    while (received < 300 && ::read(acks[0], &sequence, sizeof(sequence)) == sizeof(sequence)) {
      acknowledged = std::max(acknowledged, sequence);
      ++received;
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child stopped by itself: " << status;
    while (::read(acks[0], &sequence, sizeof(sequence)) == sizeof(sequence)) {
      acknowledged = std::max(acknowledged, sequence);
    }
    ::close(acks[0]);
    Journal::Recovered recovered;
    auto journal = Journal::Open(Options(), &recovered);
    ASSERT_TRUE(journal.ok()) << journal.status();
    ASSERT_GE(recovered.records.size(), acknowledged);
    for (size_t i = 0; i < recovered.records.size(); ++i) {
      ASSERT_EQ(recovered.records[i].first, i + 1);
      ASSERT_EQ(recovered.records[i].second, std::string(200, 'k'));
    }
  }
}

}  // namespace
}  // namespace tended::coordinator
