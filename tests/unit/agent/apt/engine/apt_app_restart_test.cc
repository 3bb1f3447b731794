// Upgrade-Requires: app-restart, read from lz4-compressed lists as on a Debian host (the
// planner reads these package records ahead, in file order).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/package_manager.h"
#include "common/status_macros.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using testing::Deb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeptReason;
using testing::RepoSpec;
using testing::UpgradedNames;

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern {
  "o=NodeOS,n=${distro_codename}-security";
};
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order { "lz4"; };
)";

Deb RestartDeb(const std::string& name, const std::string& version) {
  Deb deb(name, version);
  deb.extra_control = "Upgrade-Requires: app-restart\n";
  return deb;
}

std::vector<Deb> Installed() {
  return {Deb{"alpha", "1.0"}, Deb{"srv", "1.0"}, Deb{"usessrv", "1.0", "srv"}, Deb{"zeta", "1.0"},
          Deb{"zrestart", "1.0"}};
}

std::vector<RepoSpec> LabRepos() {
  RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
  security.debs = {Deb{"alpha", "1.1"}, RestartDeb("srv", "1.1"),
                   Deb{"usessrv", "1.1", "srv (>= 1.1)"}, Deb{"zeta", "1.1"},
                   RestartDeb("zrestart", "1.1")};
  return {security};
}

class AppRestartTest : public testing::LabTest<AppRestartTest> {
 public:
  static std::vector<RepoSpec> Repos() { return LabRepos(); }
  static bool Lz4() { return true; }

 protected:
  absl::StatusOr<UpgradePlan> PlanWith(const std::string& apt_conf) {
    MakeLab(apt_conf, Installed());
    AptOptions options;
    options.root = lab_->path();
    ASSIGN_OR_RETURN(std::unique_ptr<PackageManager> manager, CreateAptPackageManager(options));
    RETURN_IF_ERROR(manager->Update());
    return manager->Plan();
  }

  // The lists apt stored for the lab's repository.
  std::vector<std::string> Lists() const {
    std::vector<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(lab_->Path("var/lib/apt/lists"))) {
      std::string name = entry.path().filename().string();
      if (name.find("_Packages") != std::string::npos) out.push_back(name);
    }
    return out;
  }
};

TEST_F(AppRestartTest, KeepsBackAppRestartUpgradesAndWhatNeedsThem) {
  absl::StatusOr<UpgradePlan> plan = PlanWith(kPolicy);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> lists = Lists();
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_TRUE(absl::EndsWith(lists[0], "_Packages.lz4")) << lists[0];

  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("alpha", "zeta"));
  ASSERT_THAT(plan->kept, ::testing::SizeIs(3));
  EXPECT_THAT(KeptReason(*plan, "srv"), HasSubstr("Upgrade-Requires: app-restart"));
  EXPECT_THAT(KeptReason(*plan, "zrestart"), HasSubstr("Upgrade-Requires: app-restart"));
  EXPECT_THAT(KeptReason(*plan, "usessrv"), HasSubstr("needs srv >= 1.1"));
  EXPECT_THAT(KeptReason(*plan, "usessrv"), HasSubstr("requires an application restart"));
}

TEST_F(AppRestartTest, IgnoreAppsRequireRestartUpgradesThemAll) {
  absl::StatusOr<UpgradePlan> plan =
      PlanWith(absl::StrCat(kPolicy, "Unattended-Upgrade::IgnoreAppsRequireRestart \"true\";\n"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("alpha", "srv", "usessrv", "zeta", "zrestart"));
  EXPECT_THAT(plan->kept, IsEmpty());
}

}  // namespace
}  // namespace tended::agent::apt
