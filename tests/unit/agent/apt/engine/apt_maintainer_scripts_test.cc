// What maintainer scripts run with when the engine installs (Apply) and when it repairs an
// interrupted dpkg: nothing may prompt. A postinst records its environment and its stdin.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "agent/apt/package_manager.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using ::testing::AllOf;
using testing::Deb;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::RepoSpec;
using testing::Sh;

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern { "o=NodeOS"; };
)";

// Records what the script saw, under the root (scripts run chrootless with $DPKG_ROOT).
const char kRecordingPostinst[] =
    "if [ \"$1\" = configure ]; then\n"
    "  env > \"$DPKG_ROOT/var/tmp/postinst-env\"\n"
    "  readlink /proc/self/fd/0 > \"$DPKG_ROOT/var/tmp/postinst-stdin\" || true\n"
    "fi";

class MaintainerScriptsTest : public testing::LabTest<MaintainerScriptsTest> {
 public:
  static std::vector<RepoSpec> Repos() {
    RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
    security.debs = {Deb{"recorder", "1.1", "", kRecordingPostinst}};
    return {security};
  }

 protected:
  void SetUp() override {
    MakeLab(kPolicy, {Deb{"recorder", "1.0"}});
    ASSERT_TRUE(MakeDirectories(lab_->Path("var/tmp")).ok());
  }

  void ExpectNothingCanPrompt() {
    std::string env = ReadFile(lab_->Path("var/tmp/postinst-env"));
    EXPECT_THAT(env, AllOf(HasSubstr("DEBIAN_FRONTEND=noninteractive\n"),
                           HasSubstr("UCF_FORCE_CONFFOLD=1\n"),
                           HasSubstr("APT_LISTCHANGES_FRONTEND=none\n")));
    EXPECT_EQ(ReadFile(lab_->Path("var/tmp/postinst-stdin")), "/dev/null\n");
  }
};

TEST_F(MaintainerScriptsTest, ApplyRunsScriptsThatCannotPrompt) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<ApplyResult> result = manager->Apply(*plan, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(lab_->State("recorder"), "ii 1.1");
  ExpectNothingCanPrompt();
}

TEST_F(MaintainerScriptsTest, RepairRunsScriptsThatCannotPrompt) {
  std::string deb = testing::BuildDeb(
      dir_.Path("work"), Deb{"recorder", "1.1", "", kRecordingPostinst}, dir_.Path("extra"));
  Sh(absl::StrCat(lab_->Dpkg(), " --unpack '", deb, "' >/dev/null"));
  EXPECT_EQ(lab_->State("recorder"), "iU 1.1");
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<bool> repaired = manager->RepairInterruptedDpkg(nullptr);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(*repaired);
  EXPECT_EQ(lab_->State("recorder"), "ii 1.1");
  ExpectNothingCanPrompt();
}

}  // namespace
}  // namespace tended::agent::apt
