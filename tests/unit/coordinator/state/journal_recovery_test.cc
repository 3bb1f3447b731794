// Recovery of a state journal folder from files made byte by byte: torn tails, corruption,
// gaps, snapshots, empty folders.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/crc32c.h"
#include "common/file_util.h"
#include "coordinator/state/journal.h"
#include "coordinator/state/journal_format.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

namespace jf = journal_format;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

std::string Record(uint64_t sequence, absl::string_view payload) {
  std::string out;
  jf::AppendRecord(sequence, payload, Crc32c(payload), &out);
  return out;
}

std::string Records(uint64_t first, uint64_t last) {
  std::string out;
  for (uint64_t s = first; s <= last; ++s) out += Record(s, "payload " + std::to_string(s));
  return out;
}

std::string Snapshot(uint64_t sequence, absl::string_view bytes) {
  return jf::EncodeSnapshotHeader(sequence, bytes) + std::string(bytes);
}

void WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

class JournalRecoveryTest : public ::testing::Test {
 protected:
  JournalRecoveryTest() { std::filesystem::create_directory(dir()); }
  std::string dir() const { return temp_.Path("state"); }
  std::string Segment(uint64_t first) const { return dir() + "/" + jf::SegmentName(first); }
  std::string SnapshotFile(uint64_t sequence) const {
    return dir() + "/" + jf::SnapshotName(sequence);
  }
  // Opens (and closes) the journal; the next sequence Append gave is in *next.
  absl::StatusOr<Journal::Recovered> Recover(uint64_t* next = nullptr) {
    Journal::Options options;
    options.dir = dir();
    options.synchronous = true;
    Journal::Recovered recovered;
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options, &recovered);
    if (!journal.ok()) return journal.status();
    if (next != nullptr) *next = (*journal)->Append("next");
    return recovered;
  }
  testing::TempDir temp_;
};

TEST_F(JournalRecoveryTest, MissingFolderIsEmptyAndCreatedPrivate) {
  std::string missing = temp_.Path("a/b/state");
  Journal::Options options;
  options.dir = missing;
  Journal::Recovered recovered;
  auto journal = Journal::Open(options, &recovered);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_TRUE(recovered.empty);
  struct stat st;
  ASSERT_EQ(::stat(missing.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(JournalRecoveryTest, EmptyFolderAndZeroLengthSegmentAreEmpty) {
  auto recovered = Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(recovered->empty);
  std::filesystem::remove_all(dir());
  std::filesystem::create_directory(dir());
  WriteFile(Segment(1), "");
  WriteFile(dir() + "/LOCK", "pid: 1\n");
  uint64_t next = 0;
  recovered = Recover(&next);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(recovered->empty);
  EXPECT_THAT(recovered->notes, IsEmpty());
  EXPECT_EQ(next, 1u);
  recovered = Recover();
  ASSERT_TRUE(recovered.ok());
  EXPECT_FALSE(recovered->empty);
}

TEST_F(JournalRecoveryTest, TornLastRecordIsDroppedAtEveryCut) {
  std::string good = Records(1, 2);
  std::string last = Record(3, "the last record, torn by a crash");
  for (size_t cut = 0; cut < last.size(); ++cut) {
    SCOPED_TRACE(cut);
    std::filesystem::remove_all(dir());
    std::filesystem::create_directory(dir());
    WriteFile(Segment(1), good + last.substr(0, cut));
    uint64_t next = 0;
    auto recovered = Recover(&next);
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_THAT(recovered->records, ElementsAre(Pair(1, "payload 1"), Pair(2, "payload 2")));
    EXPECT_EQ(recovered->dropped_torn_tail, cut > 0);
    if (cut > 0) {
      ASSERT_FALSE(recovered->notes.empty());
      EXPECT_THAT(recovered->notes[0], HasSubstr(Segment(1)));
    }
    EXPECT_EQ(std::filesystem::file_size(Segment(1)), good.size());
    EXPECT_EQ(next, 3u);
    recovered = Recover();
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_FALSE(recovered->dropped_torn_tail);
    EXPECT_EQ(recovered->records.size(), 3u);
  }
}

TEST_F(JournalRecoveryTest, BadChecksumOnTheVeryLastRecordIsTorn) {
  std::string data = Records(1, 3);
  data[data.size() - 1] ^= 0x01;
  WriteFile(Segment(1), data);
  auto recovered = Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(recovered->dropped_torn_tail);
  EXPECT_EQ(recovered->records.size(), 2u);
}

TEST_F(JournalRecoveryTest, ZerosAfterTheLastRecordAreTorn) {
  WriteFile(Segment(1), Records(1, 3) + std::string(4096, '\0'));
  auto recovered = Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(recovered->dropped_torn_tail);
  EXPECT_EQ(recovered->records.size(), 3u);
}

TEST_F(JournalRecoveryTest, BadChecksumWithGoodRecordsAfterItIsDataLoss) {
  std::string first = Record(1, "one");
  std::string data = first + Record(2, "two") + Record(3, "three");
  data[first.size() + jf::kRecordHeaderBytes] ^= 0x40;  // A payload byte of record 2.
  WriteFile(Segment(1), data);
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss) << recovered.status();
  EXPECT_THAT(recovered.status().message(), HasSubstr(Segment(1)));
  EXPECT_THAT(recovered.status().message(), HasSubstr("offset " + std::to_string(first.size())));
  EXPECT_THAT(recovered.status().message(), HasSubstr("checksum"));
  EXPECT_EQ(std::filesystem::file_size(Segment(1)), data.size());  // Nothing was cut.
}

TEST_F(JournalRecoveryTest, BadMagicMidFileIsDataLoss) {
  std::string first = Record(1, "one");
  std::string data = first + Record(2, "two") + Record(3, "three");
  data[first.size()] = 'X';
  WriteFile(Segment(1), data);
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr("magic"));
}

TEST_F(JournalRecoveryTest, TornRecordInAnEarlierSegmentIsDataLoss) {
  std::string data = Records(1, 2);
  WriteFile(Segment(1), data.substr(0, data.size() - 1));
  WriteFile(Segment(3), Records(3, 4));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr(Segment(1)));
}

TEST_F(JournalRecoveryTest, SequenceGapOrRepeatInAFileIsDataLoss) {
  WriteFile(Segment(1), Records(1, 2) + Record(4, "four"));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr("a gap"));
  WriteFile(Segment(1), Records(1, 2) + Record(2, "again"));
  recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr("a repeat"));
}

TEST_F(JournalRecoveryTest, GapBetweenSegmentsIsDataLoss) {
  WriteFile(Segment(1), Records(1, 2));
  WriteFile(Segment(4), Records(4, 5));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr(Segment(4)));
}

TEST_F(JournalRecoveryTest, SegmentWhoseRecordsDoNotMatchItsNameIsDataLoss) {
  WriteFile(Segment(1), Records(2, 3));
  EXPECT_EQ(Recover().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(JournalRecoveryTest, JournalStartingLateWithoutSnapshotIsDataLoss) {
  WriteFile(Segment(3), Records(3, 4));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr("records 1 to 2 are missing"));
}

TEST_F(JournalRecoveryTest, RecordsMissingBetweenSnapshotAndJournalIsDataLoss) {
  WriteFile(SnapshotFile(3), Snapshot(3, "state@3"));
  WriteFile(Segment(6), Records(6, 7));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr("records 4 to 5 are missing"));
}

TEST_F(JournalRecoveryTest, CorruptNewestSnapshotIsDataLossEvenWithAnOlderGoodOne) {
  WriteFile(SnapshotFile(2), Snapshot(2, "state@2"));
  std::string newest = Snapshot(5, "state@5");
  newest.back() ^= 0x01;
  WriteFile(SnapshotFile(5), newest);
  WriteFile(Segment(1), Records(1, 7));
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(recovered.status().message(), HasSubstr(SnapshotFile(5)));
  EXPECT_TRUE(PathExists(SnapshotFile(2)));  // Nothing removed.
  WriteFile(SnapshotFile(5), Snapshot(5, "state@5").substr(0, 20));
  EXPECT_EQ(Recover().status().code(), absl::StatusCode::kDataLoss);
  WriteFile(SnapshotFile(5), Snapshot(4, "state@4"));  // Header and name disagree.
  EXPECT_EQ(Recover().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(JournalRecoveryTest, SnapshotNewerThanEveryRecordIsFine) {
  WriteFile(Segment(1), Records(1, 3));
  WriteFile(SnapshotFile(10), Snapshot(10, "state@10"));
  uint64_t next = 0;
  auto recovered = Recover(&next);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->snapshot, "state@10");
  EXPECT_THAT(recovered->records, IsEmpty());
  EXPECT_EQ(next, 11u);
  recovered = Recover(&next);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_THAT(recovered->records, ElementsAre(Pair(11, "next")));
  EXPECT_EQ(next, 12u);
}

TEST_F(JournalRecoveryTest, SnapshotOnlyIsNotEmpty) {
  WriteFile(SnapshotFile(0), Snapshot(0, "imported"));
  uint64_t next = 0;
  auto recovered = Recover(&next);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_FALSE(recovered->empty);
  EXPECT_EQ(recovered->snapshot, "imported");
  EXPECT_EQ(next, 1u);
}

TEST_F(JournalRecoveryTest, CoveredSegmentsAndOlderSnapshotsGoLeftoversToo) {
  WriteFile(Segment(1), Records(1, 3));
  WriteFile(Segment(4), Records(4, 6));
  WriteFile(SnapshotFile(1), Snapshot(1, "state@1"));
  WriteFile(SnapshotFile(4), Snapshot(4, "state@4"));
  WriteFile(SnapshotFile(9) + ".tmp", "half a snapshot");
  WriteFile(dir() + "/notes.txt", "an operator's file");
  auto recovered = Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->snapshot, "state@4");
  EXPECT_THAT(recovered->records, ElementsAre(Pair(5, "payload 5"), Pair(6, "payload 6")));
  EXPECT_FALSE(PathExists(Segment(1)));
  EXPECT_FALSE(PathExists(SnapshotFile(1)));
  EXPECT_FALSE(PathExists(SnapshotFile(9) + ".tmp"));
  EXPECT_TRUE(PathExists(Segment(4)));
  EXPECT_TRUE(PathExists(dir() + "/notes.txt"));
  std::string notes;
  for (const std::string& note : recovered->notes) notes += note + "\n";
  EXPECT_THAT(notes, HasSubstr("left alone " + dir() + "/notes.txt"));
  EXPECT_THAT(notes, HasSubstr("removed " + Segment(1)));
}

TEST_F(JournalRecoveryTest, NewerSnapshotFormatIsRefused) {
  std::string header = Snapshot(1, "x").substr(0, jf::kSnapshotHeaderBytes);
  header[4] = 2;  // Format version 2, with a checksum that matches it.
  uint32_t crc = Crc32cExtend(Crc32c(absl::string_view(header).substr(4, 20)), "x");
  for (int i = 0; i < 4; ++i) header[24 + i] = static_cast<char>(crc >> (8 * i));
  WriteFile(SnapshotFile(1), header + "x");
  auto recovered = Recover();
  ASSERT_EQ(recovered.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(recovered.status().message(), HasSubstr("format version 2"));
}

}  // namespace
}  // namespace tended::coordinator
