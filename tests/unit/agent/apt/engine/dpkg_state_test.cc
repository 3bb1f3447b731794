// The reboot sentinel as the engine reads it: inside the root, never blocking, capped.
#include "agent/apt/engine/dpkg_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::apt {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RebootSentinelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirectories(root_.Resolve("/run")).ok());
    ASSERT_TRUE(MakeDirectories(root_.Resolve("/var")).ok());
    // As on a real host: an absolute link, which must stay inside the root.
    ASSERT_EQ(::symlink("/run", root_.Resolve("/var/run").c_str()), 0);
  }
  void Write(const std::string& path, const std::string& contents) {
    ASSERT_TRUE(WriteFileAtomically(root_.Resolve(path), contents).ok());
  }

  tended::testing::TempDir dir_;
  RootPath root_{dir_.Path("root")};
};

TEST_F(RebootSentinelTest, ReadsThroughTheRootsOwnRunLink) {
  absl::StatusOr<RebootSentinel> sentinel = ReadRebootSentinel(root_);
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  EXPECT_FALSE(sentinel->exists);
  Write("/run/reboot-required", "");
  Write("/run/reboot-required.pkgs", "libc6\nlinux-image-6.1.0-28-amd64\nlibc6\n");
  sentinel = ReadRebootSentinel(root_);
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  EXPECT_TRUE(sentinel->exists);
  EXPECT_THAT(sentinel->packages, ElementsAre("libc6", "linux-image-6.1.0-28-amd64"));
}

TEST_F(RebootSentinelTest, AFifoListIsIgnoredAtOnce) {
  Write("/run/reboot-required", "");
  ASSERT_EQ(::mkfifo(root_.Resolve("/run/reboot-required.pkgs").c_str(), 0644), 0);
  absl::StatusOr<RebootSentinel> sentinel = ReadRebootSentinel(root_);
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  EXPECT_TRUE(sentinel->exists);
  EXPECT_THAT(sentinel->packages, IsEmpty());
}

TEST_F(RebootSentinelTest, AHugeListIsReadUpToTheCapWithoutACutName) {
  std::string list;
  for (int i = 0; list.size() < 10 * 1024 * 1024; ++i)
    list += "package-" + std::to_string(i) + "\n";
  Write("/run/reboot-required", "");
  Write("/run/reboot-required.pkgs", list);
  absl::StatusOr<RebootSentinel> sentinel = ReadRebootSentinel(root_);
  ASSERT_TRUE(sentinel.ok()) << sentinel.status();
  std::string head = list.substr(0, kRebootPackagesMaxBytes);
  head.erase(head.rfind('\n') + 1);
  std::vector<std::string> expected = absl::StrSplit(head, '\n', absl::SkipEmpty());
  EXPECT_EQ(sentinel->packages, expected);
}

}  // namespace
}  // namespace tended::agent::apt
