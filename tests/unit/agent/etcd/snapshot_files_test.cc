// Snapshot file names sort by time, and PruneSnapshots deletes the oldest of them only:
// never another file, a folder, or a temporary file of a snapshot being taken.
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "agent/etcd/snapshot.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::etcd {
namespace {

using ::testing::HasSubstr;

TEST(SnapshotFileNameTest, IsTheUtcTimeToTheSecond) {
  absl::Time time;
  std::string error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, "2026-12-06T13:00:00.75+01:00", &time, &error))
      << error;
  EXPECT_EQ(SnapshotFileName(time), "etcd-snapshot-20261206T120000Z.db");
  EXPECT_TRUE(IsSnapshotFileName(SnapshotFileName(time)));
  EXPECT_LT(SnapshotFileName(time), SnapshotFileName(time + absl::Seconds(1)));
}

TEST(SnapshotFileNameTest, RecognisesOnlyItsOwnNames) {
  EXPECT_TRUE(IsSnapshotFileName("etcd-snapshot-20261206T120000Z.db"));
  for (const char* other :
       {"etcd-snapshot-20261206T120000Z.db.part-Ab12Cd", "etcd-snapshot-20261206T120000.db",
        "etcd-snapshot-2026120XT120000Z.db", "etcd-snapshot-20261206T120000Z.db.bak", "snapshot.db",
        "etcd-snapshot-20261206-120000Z.db", "etcd-snapshot-.db", ""}) {
    EXPECT_FALSE(IsSnapshotFileName(other)) << other;
  }
}

class PruneSnapshotsTest : public ::testing::Test {
 protected:
  void Touch(const std::string& name) {
    ASSERT_TRUE(WriteFileAtomically(dir_.Path(name), "x").ok()) << name;
  }
  std::vector<std::string> Remaining(const std::vector<std::string>& names) {
    std::vector<std::string> present;
    for (const std::string& name : names) {
      if (PathExists(dir_.Path(name))) present.push_back(name);
    }
    return present;
  }

  testing::TempDir dir_;
  absl::Time start_ = absl::FromUnixSeconds(1796558400);  // 2026-12-06T12:00:00Z
};

TEST_F(PruneSnapshotsTest, KeepsTheNewestAndNeverTouchesOtherFiles) {
  std::vector<std::string> ours;
  for (int day = 0; day < 5; ++day)
    ours.push_back(SnapshotFileName(start_ + absl::Hours(24 * day)));
  // Written out of order: age is in the name, not the file's times.
  for (int i : {3, 0, 4, 1, 2}) Touch(ours[static_cast<size_t>(i)]);
  const std::vector<std::string> foreign = {
      "etcd-snapshot-20200101T000000Z.db.part-a1B2c3",  // A snapshot being taken.
      "kubeadm-backup.db", "etcd-snapshot-20200101T000000Z.db.keep", "notes.txt"};
  for (const std::string& name : foreign) Touch(name);
  ASSERT_EQ(::mkdir(dir_.Path("etcd-snapshot-20190101T000000Z.db").c_str(), 0755), 0);

  ASSERT_TRUE(PruneSnapshots(dir_.path(), 2).ok());
  EXPECT_EQ(Remaining(ours), (std::vector<std::string>{ours[3], ours[4]}));
  EXPECT_EQ(Remaining(foreign), foreign);
  EXPECT_TRUE(PathExists(dir_.Path("etcd-snapshot-20190101T000000Z.db")));

  // Already within the limit: nothing more goes.
  ASSERT_TRUE(PruneSnapshots(dir_.path(), 2).ok());
  ASSERT_TRUE(PruneSnapshots(dir_.path(), 5).ok());
  EXPECT_EQ(Remaining(ours), (std::vector<std::string>{ours[3], ours[4]}));
  ASSERT_TRUE(PruneSnapshots(dir_.path(), 1).ok());
  EXPECT_EQ(Remaining(ours), (std::vector<std::string>{ours[4]}));
  EXPECT_EQ(Remaining(foreign), foreign);
}

TEST_F(PruneSnapshotsTest, UnfinishedSnapshotsAreRemovedOnlyWhenStale) {
  const std::string stale = SnapshotFileName(start_ - absl::Hours(3)) + ".part-a1B2c3";
  const std::string running = SnapshotFileName(start_ - absl::Minutes(1)) + ".part-d4E5f6";
  const std::vector<std::string> others = {SnapshotFileName(start_ - absl::Hours(5)),
                                           "kubeadm-backup.db.part-x", "notes.part-y"};
  Touch(stale);
  Touch(running);
  for (const std::string& name : others) Touch(name);
  ASSERT_TRUE(RemoveStalePartialSnapshots(dir_.path(), start_, absl::Hours(1)).ok());
  EXPECT_FALSE(PathExists(dir_.Path(stale)));
  EXPECT_TRUE(PathExists(dir_.Path(running)));
  EXPECT_EQ(Remaining(others), others);
  EXPECT_FALSE(RemoveStalePartialSnapshots(dir_.Path("absent"), start_, absl::Hours(1)).ok());
}

TEST_F(PruneSnapshotsTest, RefusesToKeepNothingAndSaysWhenTheFolderIsMissing) {
  Touch(SnapshotFileName(start_));
  absl::Status none = PruneSnapshots(dir_.path(), 0);
  EXPECT_TRUE(absl::IsInvalidArgument(none)) << none;
  EXPECT_THAT(std::string(none.message()), HasSubstr("at least 1, got 0"));
  EXPECT_TRUE(PathExists(dir_.Path(SnapshotFileName(start_))));

  absl::Status missing = PruneSnapshots(dir_.Path("absent"), 3);
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr(dir_.Path("absent")));
}

}  // namespace
}  // namespace tended::agent::etcd
