#include "agent/instance_id.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>

#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

TEST(InstanceIdTest, NewIdsAreVersion4UuidsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = NewRandomUuid();
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(InstanceIdTest, RecognisesOnlyCanonicalUuids) {
  EXPECT_TRUE(IsUuid("0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e"));
  EXPECT_TRUE(IsUuid("0B7C1D3E-5A2F-4C3B-9D1E-2F3A4B5C6D7E"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("0b7c1d3e5a2f4c3b9d1e2f3a4b5c6d7e"));
  EXPECT_FALSE(IsUuid("0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7"));
  EXPECT_FALSE(IsUuid("0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7g"));
  EXPECT_FALSE(IsUuid("0b7c1d3e_5a2f-4c3b-9d1e-2f3a4b5c6d7e"));
}

TEST(InstanceIdTest, CreatesTheFileOnceWithMode0600AndReadsItAfter) {
  testing::TempDir dir;
  const std::string path = dir.Path("agent-id");
  auto made = LoadOrCreateAgentInstanceId(path);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(IsUuid(*made));
  EXPECT_EQ(*ReadFileToString(path), *made + "\n");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*LoadOrCreateAgentInstanceId(path), *made);
  // Nothing is left beside it.
  EXPECT_FALSE(PathExists(path + ".new." + std::to_string(::getpid())));
}

TEST(InstanceIdTest, KeepsAnIdWrittenByHandAndLowercasesIt) {
  testing::TempDir dir;
  const std::string path = dir.Path("agent-id");
  ASSERT_TRUE(WriteFileAtomically(path, "  0B7C1D3E-5A2F-4C3B-9D1E-2F3A4B5C6D7E\n\n").ok());
  EXPECT_EQ(*LoadOrCreateAgentInstanceId(path), "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e");
}

TEST(InstanceIdTest, ReplacesGarbageAnOversizedFileAndASymlink) {
  testing::TempDir dir;
  const std::string path = dir.Path("agent-id");
  for (const std::string& garbage :
       {std::string(""), std::string("not an id\n"), std::string(4096, 'a')}) {
    ASSERT_TRUE(WriteFileAtomically(path, garbage).ok());
    auto id = LoadOrCreateAgentInstanceId(path);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(IsUuid(*id));
    EXPECT_EQ(*ReadFileToString(path), *id + "\n");
  }
  // A symlink is replaced, never followed: its target stays as it was.
  const std::string target = dir.Path("elsewhere");
  ASSERT_TRUE(WriteFileAtomically(target, "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e\n").ok());
  ASSERT_TRUE(RemoveFileIfExists(path).ok());
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  auto id = LoadOrCreateAgentInstanceId(path);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_NE(*id, "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e");
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(*ReadFileToString(target), "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e\n");
}

TEST(InstanceIdTest, FailsWhenTheFolderIsMissing) {
  testing::TempDir dir;
  EXPECT_FALSE(LoadOrCreateAgentInstanceId(dir.Path("missing/agent-id")).ok());
}

}  // namespace
}  // namespace tended::agent
