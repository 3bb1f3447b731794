#include "agent/node_facts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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
  RootPath root_{dir_.path()};
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

}  // namespace
}  // namespace tended::agent
