#include "agent/node_facts.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class NodeFactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Write(kBootIdPath, "3a9c7e2e-6f1d-4c1e-9b7a-1f2e3d4c5b6a\n");
    Write(kKernelReleasePath, "6.1.0-28-amd64\n");
    Write(kProcStatPath, "cpu  1 2 3\nbtime 1790000000\nprocesses 7\n");
  }
  void Write(const std::string& path, const std::string& contents) {
    ASSERT_TRUE(MakeDirectories(Dirname(root_.Resolve(path))).ok());
    ASSERT_TRUE(WriteFileAtomically(root_.Resolve(path), contents).ok());
  }
  absl::StatusOr<tended::v1::NodeFacts> Read() {
    return NodeFactsReader(root_, config_, "k8s-node1").Read();
  }

  tended::testing::TempDir dir_;
  RootPath root_{dir_.Path("root")};
  AgentConfig config_;
};

TEST_F(NodeFactsTest, ReadsBootKernelAndBootTime) {
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->node_name(), "k8s-node1");
  EXPECT_EQ(facts->boot_id(), "3a9c7e2e-6f1d-4c1e-9b7a-1f2e3d4c5b6a");
  EXPECT_EQ(facts->kernel_release(), "6.1.0-28-amd64");
  EXPECT_EQ(facts->boot_time().seconds(), 1790000000);
  EXPECT_FALSE(facts->reboot_required());
}

TEST_F(NodeFactsTest, AnEmptyBootIdIsAnError) {
  Write(kBootIdPath, " \n");
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(facts.status().message(), HasSubstr("cannot tell boots apart"));
}

TEST_F(NodeFactsTest, RebootReasonsComeFromThePackageListOnceEach) {
  Write(config_.reboot.sentinel, "*** System restart required ***\n");
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok());
  EXPECT_TRUE(facts->reboot_required());
  EXPECT_THAT(facts->reboot_required_reasons(),
              ElementsAre("/var/run/reboot-required exists (no package list)"));

  Write(config_.reboot.sentinel + ".pkgs", "linux-image-6.1.0-28-amd64\n  libc6 \nlibc6\n\n");
  facts = Read();
  ASSERT_TRUE(facts.ok());
  EXPECT_THAT(facts->reboot_required_reasons(), ElementsAre("linux-image-6.1.0-28-amd64", "libc6"));
}

TEST_F(NodeFactsTest, GarbageInThePackageListStillMakesAReportableMessage) {
  Write(config_.reboot.sentinel, "");
  Write(config_.reboot.sentinel + ".pkgs",
        "libc6\nf\xE9"
        "e-\xFF\n");
  Write(kKernelReleasePath, "6.1.0-\xC0\xAF\n");
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok());
  EXPECT_THAT(facts->reboot_required_reasons(), ElementsAre("libc6",
                                                            "f\xEF\xBF\xBD"
                                                            "e-\xEF\xBF\xBD"));
  EXPECT_EQ(facts->kernel_release(), "6.1.0-\xEF\xBF\xBD\xEF\xBF\xBD");
  // What the coordinator receives parses: protobuf refuses invalid UTF-8 in strings.
  tended::v1::NodeFacts parsed;
  EXPECT_TRUE(parsed.ParseFromString(facts->SerializeAsString()));
  EXPECT_EQ(parsed.reboot_required_reasons(1), facts->reboot_required_reasons(1));
}

TEST_F(NodeFactsTest, AHugePackageListIsSummedUp) {
  std::string list;
  for (int i = 0; i < 5000; ++i) absl::StrAppend(&list, "pkg", i, "\n");
  Write(config_.reboot.sentinel, "");
  Write(config_.reboot.sentinel + ".pkgs", list);
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok());
  ASSERT_EQ(facts->reboot_required_reasons_size(), kMaxRebootReasons + 1);
  EXPECT_EQ(facts->reboot_required_reasons(0), "pkg0");
  EXPECT_EQ(facts->reboot_required_reasons(kMaxRebootReasons), "and 4900 more");
}

TEST_F(NodeFactsTest, AFifoAtThePackageListDoesNotBlock) {
  Write(config_.reboot.sentinel, "");
  const std::string fifo = root_.Resolve(config_.reboot.sentinel + ".pkgs");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  std::future<absl::StatusOr<tended::v1::NodeFacts>> reading =
      std::async(std::launch::async, [&] { return Read(); });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // A writer that comes and goes lets the blocked open return, so the test can end.
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    FAIL() << "reading the node facts blocked on a FIFO at " << fifo;
  }
  absl::StatusOr<tended::v1::NodeFacts> facts = reading.get();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_TRUE(facts->reboot_required());
  ASSERT_EQ(facts->reboot_required_reasons_size(), 1);
  EXPECT_THAT(facts->reboot_required_reasons(0), HasSubstr("not a regular file"));
}

TEST_F(NodeFactsTest, APackageListLinkedOutOfTheRootIsNotFollowedThere) {
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("outside"), "outside-secret\n").ok());
  Write(config_.reboot.sentinel, "");
  const std::string pkgs = root_.Resolve(config_.reboot.sentinel + ".pkgs");
  for (const std::string& target :
       std::vector<std::string>{"/etc/passwd", "../../../outside", dir_.Path("outside")}) {
    SCOPED_TRACE(target);
    ::unlink(pkgs.c_str());
    ASSERT_EQ(::symlink(target.c_str(), pkgs.c_str()), 0);
    absl::StatusOr<tended::v1::NodeFacts> facts = Read();
    ASSERT_TRUE(facts.ok()) << facts.status();
    ASSERT_EQ(facts->reboot_required_reasons_size(), 1);
    EXPECT_THAT(facts->reboot_required_reasons(0), HasSubstr("exists"));
    EXPECT_THAT(facts->reboot_required_reasons(0), Not(HasSubstr("root:")));
    EXPECT_THAT(facts->reboot_required_reasons(0), Not(HasSubstr("outside-secret")));
  }
  // Inside the root the same link means the root's own file.
  Write("/etc/passwd", "inside-pkg\n");
  ::unlink(pkgs.c_str());
  ASSERT_EQ(::symlink("/etc/passwd", pkgs.c_str()), 0);
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_THAT(facts->reboot_required_reasons(), ElementsAre("inside-pkg"));
}

TEST_F(NodeFactsTest, ATenMegabytePackageListIsCappedAndSaysSo) {
  std::string list;
  while (list.size() < 10 * 1024 * 1024) absl::StrAppend(&list, "pkg", list.size(), "\n");
  Write(config_.reboot.sentinel, "");
  Write(config_.reboot.sentinel + ".pkgs", list);
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok());
  ASSERT_EQ(facts->reboot_required_reasons_size(), kMaxRebootReasons + 1);
  EXPECT_EQ(facts->reboot_required_reasons(0), "pkg0");
  EXPECT_THAT(facts->reboot_required_reasons(kMaxRebootReasons),
              HasSubstr("more: the list is longer than 64 KiB"));
}

TEST_F(NodeFactsTest, ADirectoryOrAnOversizedFileWhereAFileIsExpected) {
  ASSERT_TRUE(MakeDirectories(root_.Resolve(config_.reboot.sentinel + ".pkgs")).ok());
  Write(config_.reboot.sentinel, "");
  absl::StatusOr<tended::v1::NodeFacts> facts = Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_THAT(facts->reboot_required_reasons(), ElementsAre(HasSubstr("not a regular file")));

  Write(kBootIdPath, std::string(5000, 'a'));
  EXPECT_THAT(Read().status().message(), HasSubstr("larger than"));
  ::unlink(root_.Resolve(kBootIdPath).c_str());
  ASSERT_TRUE(MakeDirectories(root_.Resolve(kBootIdPath)).ok());
  EXPECT_THAT(Read().status().message(), HasSubstr("not a regular file"));
}

TEST_F(NodeFactsTest, TheSentinelCountsOnlyInsideTheRoot) {
  // An absolute link resolves inside the root, as it would for a process chrooted there.
  ASSERT_TRUE(MakeDirectories(root_.Resolve("/run")).ok());
  ASSERT_TRUE(MakeDirectories(root_.Resolve("/var")).ok());
  ASSERT_EQ(::symlink("/run", root_.Resolve("/var/run").c_str()), 0);
  EXPECT_FALSE(Read()->reboot_required());
  Write("/run/reboot-required", "");
  EXPECT_TRUE(Read()->reboot_required());
}

}  // namespace
}  // namespace tended::agent
