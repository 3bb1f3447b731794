// Apply installs exactly the plan it is given, by name and version: when the lists gain newer
// versions after the plan was made (a newer dependency, a dependency that pulls in a new
// package), the plan's upgrades that would need them are skipped with the reason, and nothing
// outside the plan is installed. The plan is what the canary vetted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "agent/apt/package_manager.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using testing::Deb;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using testing::RepoSet;
using testing::RepoSpec;
using testing::Sh;
using ::testing::UnorderedElementsAre;
using testing::UpgradedNames;
using testing::WriteFile;

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern {
  "o=NodeOS,n=${distro_codename}-security";
};
)";

const char kSecurity[] = "o=NodeOS,a=stable-security,n=bookworm-security,l=NodeOS-Security,c=main";

std::string SkipReason(const ApplyResult& result, const std::string& package) {
  for (const KeptPackage& k : result.skipped) {
    if (k.package == package) return k.reason;
  }
  return "<not skipped>";
}

class ExactApplyTest : public testing::LabTest<ExactApplyTest> {
 public:
  // What the plan is made from.
  static std::vector<RepoSpec> Repos() {
    RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
    security.debs = {Deb{"libfoo", "1.1", "libbar"}, Deb{"libbar", "1.0"},
                     Deb{"usesx", "1.1", "x (>= 1.1)"}, Deb{"x", "1.1"}, Deb{"other", "1.1"}};
    return {security};
  }

  // What the lists gain after the plan: from an allowed origin, so a fresh plan would take it.
  static void SetUpTestSuite() {
    LabTest<ExactApplyTest>::SetUpTestSuite();
    later_dir_ = new tended::testing::TempDir();
    RepoSpec later{"later-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
    later.debs = {Deb{"libbar", "1.1", "libbaz"}, Deb{"libbaz", "1.0"}, Deb{"x", "1.2"}};
    later_ = new RepoSet(later_dir_->path(), {later});
  }
  static void TearDownTestSuite() {
    delete later_;
    delete later_dir_;
    LabTest<ExactApplyTest>::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    MakeLab(kPolicy,
            {Deb{"libfoo", "1.0"}, Deb{"usesx", "1.0", "x"}, Deb{"x", "1.0"}, Deb{"other", "1.0"}});
  }

  void PublishLaterVersions() {
    std::string keyring = lab_->Path("etc/apt/keyrings/later.gpg");
    Sh(absl::StrCat("cp '", later_->keyring(), "' '", keyring, "'"));
    WriteFile(lab_->Path("etc/apt/sources.list.d/later.sources"), later_->Sources(keyring));
  }

  static inline tended::testing::TempDir* later_dir_ = nullptr;
  static inline RepoSet* later_ = nullptr;
};

TEST_F(ExactApplyTest, NothingNewerThanThePlanIsInstalled) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_THAT(plan->upgrades, ElementsAre(PackageUpgrade{"libbar", "", "1.0", kSecurity},
                                          PackageUpgrade{"libfoo", "1.0", "1.1", kSecurity},
                                          PackageUpgrade{"other", "1.0", "1.1", kSecurity},
                                          PackageUpgrade{"usesx", "1.0", "1.1", kSecurity},
                                          PackageUpgrade{"x", "1.0", "1.1", kSecurity}));

  PublishLaterVersions();
  ASSERT_TRUE(manager->Update().ok());
  absl::StatusOr<ApplyResult> result = manager->Apply(*plan, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();

  EXPECT_THAT(result->installed, ElementsAre(PackageUpgrade{"other", "1.0", "1.1", kSecurity}));
  EXPECT_THAT(result->skipped, UnorderedElementsAre(Field(&KeptPackage::package, "libfoo"),
                                                    Field(&KeptPackage::package, "usesx"),
                                                    Field(&KeptPackage::package, "x")));
  // A newer version of a new dependency, which itself brings a package the plan never had.
  EXPECT_THAT(SkipReason(*result, "libfoo"), HasSubstr("libbar 1.1"));
  EXPECT_THAT(SkipReason(*result, "libfoo"), HasSubstr("not in the plan"));
  // A newer version of an upgraded dependency.
  EXPECT_THAT(SkipReason(*result, "usesx"), HasSubstr("x 1.2"));
  EXPECT_EQ(SkipReason(*result, "x"), "the plan had 1.1 but the candidate is now 1.2");
  EXPECT_EQ(lab_->State("other"), "ii 1.1");
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");
  EXPECT_EQ(lab_->State("libbar"), "absent");
  EXPECT_EQ(lab_->State("libbaz"), "absent");
  EXPECT_EQ(lab_->State("usesx"), "ii 1.0");
  EXPECT_EQ(lab_->State("x"), "ii 1.0");

  // A fresh plan has the new versions; applied whole, it installs exactly them.
  absl::StatusOr<UpgradePlan> fresh = manager->Plan();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_THAT(UpgradedNames(*fresh), ElementsAre("libbar", "libbaz", "libfoo", "usesx", "x"));
  absl::StatusOr<ApplyResult> again = manager->Apply(*fresh, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->installed, fresh->upgrades);
  EXPECT_THAT(again->skipped, ::testing::IsEmpty());
  EXPECT_EQ(lab_->State("libbar"), "ii 1.1");
  EXPECT_EQ(lab_->State("x"), "ii 1.2");
}

TEST_F(ExactApplyTest, APlanWithoutItsNewDependencyInstallsNothingThatNeedsIt) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  // libfoo 1.1 needs libbar, which this plan does not name.
  UpgradePlan plan;
  plan.upgrades = {{"libfoo", "1.0", "1.1", kSecurity}, {"other", "1.0", "1.1", kSecurity}};
  absl::StatusOr<ApplyResult> result = manager->Apply(plan, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->installed, ElementsAre(PackageUpgrade{"other", "1.0", "1.1", kSecurity}));
  EXPECT_THAT(SkipReason(*result, "libfoo"), HasSubstr("libbar 1.0"));
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");
  EXPECT_EQ(lab_->State("libbar"), "absent");
}

}  // namespace
}  // namespace tended::agent::apt
