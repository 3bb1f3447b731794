// Upgrade-Requires: app-restart, read from lz4-compressed lists as on a Debian host (the
// planner reads these package records ahead, in file order).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/apt/apt_package_manager.h"
#include "agent/apt/package_manager.h"
#include "common/status_macros.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using testing::Deb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::LabRoot;
using testing::RepoSet;
using testing::RepoSpec;

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

std::vector<RepoSpec> Repos() {
  RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
  security.debs = {Deb{"alpha", "1.1"}, RestartDeb("srv", "1.1"),
                   Deb{"usessrv", "1.1", "srv (>= 1.1)"}, Deb{"zeta", "1.1"},
                   RestartDeb("zrestart", "1.1")};
  return {security};
}

class AppRestartTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new tended::testing::TempDir();
    repos_ = new RepoSet(suite_dir_->path(), Repos(), /*sign=*/true, /*lz4=*/true);
  }
  static void TearDownTestSuite() {
    delete repos_;
    delete suite_dir_;
  }

  absl::StatusOr<UpgradePlan> PlanWith(const std::string& apt_conf) {
    lab_ = std::make_unique<LabRoot>(dir_.Path("root"), *repos_, apt_conf);
    lab_->Install(dir_.Path("work"), Installed());
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

  static std::vector<std::string> Names(const UpgradePlan& plan) {
    std::vector<std::string> out;
    for (const PackageUpgrade& u : plan.upgrades) out.push_back(u.package);
    return out;
  }
  static std::string Reason(const UpgradePlan& plan, const std::string& package) {
    for (const KeptPackage& k : plan.kept) {
      if (k.package == package) return k.reason;
    }
    return "<not kept>";
  }

  static inline tended::testing::TempDir* suite_dir_ = nullptr;
  static inline RepoSet* repos_ = nullptr;
  tended::testing::TempDir dir_;
  std::unique_ptr<LabRoot> lab_;
};

TEST_F(AppRestartTest, KeepsBackAppRestartUpgradesAndWhatNeedsThem) {
  absl::StatusOr<UpgradePlan> plan = PlanWith(kPolicy);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> lists = Lists();
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_TRUE(absl::EndsWith(lists[0], "_Packages.lz4")) << lists[0];

  EXPECT_THAT(Names(*plan), ElementsAre("alpha", "zeta"));
  ASSERT_THAT(plan->kept, ::testing::SizeIs(3));
  EXPECT_THAT(Reason(*plan, "srv"), HasSubstr("Upgrade-Requires: app-restart"));
  EXPECT_THAT(Reason(*plan, "zrestart"), HasSubstr("Upgrade-Requires: app-restart"));
  EXPECT_THAT(Reason(*plan, "usessrv"), HasSubstr("needs srv >= 1.1"));
  EXPECT_THAT(Reason(*plan, "usessrv"), HasSubstr("requires an application restart"));
}

TEST_F(AppRestartTest, IgnoreAppsRequireRestartUpgradesThemAll) {
  absl::StatusOr<UpgradePlan> plan =
      PlanWith(absl::StrCat(kPolicy, "Unattended-Upgrade::IgnoreAppsRequireRestart \"true\";\n"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(*plan), ElementsAre("alpha", "srv", "usessrv", "zeta", "zrestart"));
  EXPECT_THAT(plan->kept, IsEmpty());
}

}  // namespace
}  // namespace tended::agent::apt
