#include "common/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;

int ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 07777);
}

TEST(CheckNotWritableByOthersTest, RefusesAFileEveryUserMayChangeNamingIt) {
  testing::TempDir dir;
  const std::string path = dir.Path("agent.yaml");
  ASSERT_TRUE(WriteFileAtomically(path, "x: 1\n", 0644).ok());
  EXPECT_TRUE(CheckNotWritableByOthers(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  absl::Status refused = CheckNotWritableByOthers(path);
  EXPECT_TRUE(absl::IsPermissionDenied(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr(path));
  EXPECT_THAT(refused.message(), HasSubstr("0666"));
  // Group-writable is fine for root's group only.
  ASSERT_EQ(::chmod(path.c_str(), 0664), 0);
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);
  EXPECT_TRUE(CheckNotWritableByOthers(path).ok());
  ASSERT_EQ(::chown(path.c_str(), 0, 4242), 0);
  EXPECT_THAT(CheckNotWritableByOthers(path).message(), HasSubstr("group 4242"));
  // Through a symlink (a Kubernetes ConfigMap mount) the target counts.
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  ASSERT_EQ(::symlink(path.c_str(), dir.Path("link.yaml").c_str()), 0);
  EXPECT_TRUE(absl::IsPermissionDenied(CheckNotWritableByOthers(dir.Path("link.yaml"))));
  EXPECT_TRUE(absl::IsNotFound(CheckNotWritableByOthers(dir.Path("missing.yaml"))));
}

TEST(StampFileTest, ARewriteChangesTheStampAndAFolderIsNotRegular) {
  testing::TempDir dir;
  const std::string path = dir.Path("ca.crt");
  ASSERT_TRUE(WriteFileAtomically(path, "one\n").ok());
  absl::StatusOr<FileStamp> first = StampFile(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->regular);
  EXPECT_EQ(first->size, 4);
  absl::StatusOr<FileStamp> again = StampFile(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);
  // Same size, new inode (rename over it): a watcher must read it again.
  ASSERT_TRUE(WriteFileAtomically(path, "two\n").ok());
  absl::StatusOr<FileStamp> rewritten = StampFile(path);
  ASSERT_TRUE(rewritten.ok());
  EXPECT_NE(*first, *rewritten);
  absl::StatusOr<FileStamp> folder = StampFile(dir.Path(""));
  ASSERT_TRUE(folder.ok());
  EXPECT_FALSE(folder->regular);
  absl::StatusOr<FileStamp> missing = StampFile(dir.Path("missing"));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.Path("missing")));
}

TEST(MakePrivateDirectoryTest, MakesOrNarrowsTheFolderTo0700) {
  testing::TempDir dir;
  ASSERT_TRUE(MakePrivateDirectory(dir.Path("a/b/state")).ok());
  EXPECT_EQ(ModeOf(dir.Path("a/b/state")), 0700);
  ASSERT_TRUE(MakeDirectories(dir.Path("wide"), 0755).ok());
  ASSERT_EQ(::chmod(dir.Path("wide").c_str(), 0755), 0);
  ASSERT_TRUE(MakePrivateDirectory(dir.Path("wide")).ok());
  EXPECT_EQ(ModeOf(dir.Path("wide")), 0700);
}

}  // namespace
}  // namespace tended
