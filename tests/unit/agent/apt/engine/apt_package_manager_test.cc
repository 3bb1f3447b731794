// Real-package tests: tiny .deb files, two signed local repositories with different
// Origin/Label/Suite, and a throwaway dpkg root per test (maintainer scripts run chrootless
// and write only under $DPKG_ROOT).
#include "agent/apt/engine/apt_package_manager.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "agent/apt/engine/dpkg_state.h"
#include "agent/apt/engine/plan_command.h"
#include "agent/apt/package_manager.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using ::testing::Contains;
using testing::Deb;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeptReason;
using testing::ReadFile;
using testing::RepoSpec;
using testing::Sh;
using ::testing::UnorderedElementsAre;
using testing::UpgradedNames;
using testing::WriteFile;

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern {
  "o=NodeOS,n=${distro_codename}-security";
};
Unattended-Upgrade::Package-Blacklist { "blk"; };
)";

const char kRebootPostinst[] =
    "if [ \"$1\" = configure ] && [ -n \"$2\" ]; then\n"
    "  touch \"$DPKG_ROOT/var/run/reboot-required\"\nfi";

Deb Cfg(const std::string& version, const std::string& setting) {
  Deb deb("cfg", version);
  deb.files["etc/cfg.conf"] = "setting=" + setting + "\n";
  deb.conffiles = {"/etc/cfg.conf"};
  return deb;
}

std::vector<Deb> BaseDebs() {
  return {Deb{"libfoo", "1.0"},  Deb{"blk", "1.0"}, Deb{"usesblk", "1.0", "blk"},
          Deb{"kubelet", "1.0"}, Cfg("1.0", "1"),   Deb{"rebooter", "1.0", "", kRebootPostinst},
          Deb{"app", "1.0"}};
}

std::vector<RepoSpec> LabRepos() {
  RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
  security.debs = {Deb{"libfoo", "1.1", "libbar"},
                   Deb{"libbar", "1.0"},
                   Deb{"blk", "1.1"},
                   Deb{"usesblk", "1.1", "blk (>= 1.1)"},
                   Deb{"kubelet", "1.1"},
                   Cfg("1.1", "2"),
                   Deb{"rebooter", "1.1", "", kRebootPostinst}};
  RepoSpec extras{"extras", "ThirdParty", "Extras", "extras", {}};
  extras.debs = {Deb{"libfoo", "1.2", "libbar"}, Deb{"app", "2.0"}};
  return {security, extras};
}

class AptEngineTest : public testing::LabTest<AptEngineTest> {
 public:
  static std::vector<RepoSpec> Repos() { return LabRepos(); }

 protected:
  void SetUp() override { MakeRoot(kPolicy); }

  void MakeRoot(const std::string& apt_conf, const std::string& name = "root") {
    MakeLab(apt_conf, BaseDebs(), name);
    Sh(absl::StrCat("echo 'kubelet hold' | ", lab_->Dpkg(), " --set-selections"));
  }
};

TEST_F(AptEngineTest, PlanFollowsOriginsBlacklistAndHolds) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string security =
      "o=NodeOS,a=stable-security,n=bookworm-security,l=NodeOS-Security,c=main";
  EXPECT_THAT(plan->upgrades,
              ElementsAre(PackageUpgrade{"cfg", "1.0", "1.1", security},
                          PackageUpgrade{"libbar", "", "1.0", security},
                          PackageUpgrade{"libfoo", "1.0", "1.1", security},  // Not 1.2 (extras).
                          PackageUpgrade{"rebooter", "1.0", "1.1", security}));
  ASSERT_THAT(plan->kept, ::testing::SizeIs(4));
  EXPECT_THAT(KeptReason(*plan, "app"), HasSubstr("only available from a disallowed origin"));
  EXPECT_THAT(KeptReason(*plan, "app"), HasSubstr("o=ThirdParty"));
  EXPECT_THAT(KeptReason(*plan, "blk"), HasSubstr("blacklisted"));
  EXPECT_THAT(KeptReason(*plan, "kubelet"), HasSubstr("held"));
  EXPECT_EQ(KeptReason(*plan, "usesblk"), "needs blk >= 1.1, which is blacklisted");
}

// Every file under the root with its size and modification time.
std::map<std::string, std::pair<uintmax_t, int64_t>> Snapshot(const std::string& root) {
  std::map<std::string, std::pair<uintmax_t, int64_t>> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    out[entry.path().string()] = {entry.file_size(),
                                  entry.last_write_time().time_since_epoch().count()};
  }
  return out;
}

TEST_F(AptEngineTest, PlanCommandPrintsJsonAndTouchesNothing) {
  ASSERT_NE(Manager(), nullptr);  // Fetches the lists once.
  auto before = Snapshot(lab_->path());
  std::ostringstream out, err;
  int rc = RunPlanCommandForTest({"--root", lab_->path(), "--json"}, out, err);
  ASSERT_EQ(rc, 0) << err.str();
  EXPECT_EQ(Snapshot(lab_->path()), before);
  nlohmann::json j = nlohmann::json::parse(out.str());
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 2u);
  ASSERT_EQ(j["upgrade"].size(), 4u);
  EXPECT_EQ(j["upgrade"][2]["package"], "libfoo");
  EXPECT_EQ(j["upgrade"][2]["from"], "1.0");
  EXPECT_EQ(j["upgrade"][2]["to"], "1.1");
  EXPECT_THAT(j["upgrade"][2]["origin"].get<std::string>(), HasSubstr("o=NodeOS"));
  ASSERT_EQ(j["kept"].size(), 4u);
  EXPECT_EQ(j["kept"][3]["package"], "usesblk");
  EXPECT_EQ(j["kept"][3]["reason"], "needs blk >= 1.1, which is blacklisted");

  std::ostringstream text, text_err;
  ASSERT_EQ(RunPlanCommandForTest({"--root=" + lab_->path()}, text, text_err), 0);
  EXPECT_THAT(text.str(), HasSubstr("libfoo 1.0 -> 1.1"));
  EXPECT_THAT(text.str(), HasSubstr("usesblk: needs blk >= 1.1, which is blacklisted"));
  std::ostringstream bad_out, bad_err;
  EXPECT_EQ(RunPlanCommandForTest({"--bogus"}, bad_out, bad_err), 2);
}

TEST_F(AptEngineTest, PlanCommandReadsTheAgentYaml) {
  ASSERT_NE(Manager(), nullptr);
  WriteFile(dir_.Path("agent.yaml"), absl::StrCat("root: ", lab_->path(),
                                                  "\napt:\n  holds: [libfoo]\n"
                                                  "  origins_pattern: [\"o=ThirdParty\"]\n"));
  std::ostringstream out, err;
  ASSERT_EQ(RunPlanCommandForTest({"--config", dir_.Path("agent.yaml"), "--json"}, out, err), 0)
      << err.str();
  nlohmann::json j = nlohmann::json::parse(out.str());
  std::map<std::string, std::string> kept;
  for (const auto& k : j["kept"]) kept[k["package"]] = k["reason"];
  EXPECT_THAT(kept["libfoo"], HasSubstr("held"));
  std::vector<std::string> upgraded;
  for (const auto& u : j["upgrade"]) upgraded.push_back(u["package"]);
  EXPECT_THAT(upgraded, Contains("app"));  // ThirdParty is now allowed too.
}

TEST_F(AptEngineTest, ApplyInstallsKeepsConffilesReholdsAndFlagsReboot) {
  WriteFile(lab_->Path("etc/cfg.conf"), "setting=admin\n");
  AptOptions options;
  options.policy.holds = {"app"};
  std::unique_ptr<PackageManager> manager = Manager(options);
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(KeptReason(*plan, "app"), HasSubstr("held (tended holds)"));

  std::vector<ApplyProgress::Stage> stages;
  absl::StatusOr<ApplyResult> result =
      manager->Apply(*plan, [&](const ApplyProgress& p) { stages.push_back(p.stage); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->installed, ::testing::SizeIs(4));
  EXPECT_THAT(result->skipped, IsEmpty());
  EXPECT_THAT(stages, Contains(ApplyProgress::Stage::kInstalling));

  EXPECT_EQ(lab_->State("libfoo"), "ii 1.1");
  EXPECT_EQ(lab_->State("libbar"), "ii 1.0");
  EXPECT_EQ(lab_->State("rebooter"), "ii 1.1");
  EXPECT_EQ(lab_->State("blk"), "ii 1.0");
  EXPECT_EQ(lab_->State("usesblk"), "ii 1.0");
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.0");
  EXPECT_EQ(lab_->State("app"), "hi 1.0");  // Configured hold now set in dpkg.
  EXPECT_THAT(result->reheld, ElementsAre("app"));
  // The admin's conffile stays; the package's new one sits beside it.
  EXPECT_EQ(lab_->State("cfg"), "ii 1.1");
  EXPECT_EQ(ReadFile(lab_->Path("etc/cfg.conf")), "setting=admin\n");
  EXPECT_EQ(ReadFile(lab_->Path("etc/cfg.conf.dpkg-dist")), "setting=2\n");
  // rebooter's postinst created the sentinel; the engine recorded who asked for it.
  EXPECT_TRUE(result->reboot.required);
  EXPECT_THAT(result->reboot.packages, ElementsAre("rebooter"));
  EXPECT_EQ(ReadFile(lab_->Path("run/reboot-required.pkgs")), "rebooter\n");
  absl::StatusOr<RebootRequirement> reboot = manager->RebootRequired();
  ASSERT_TRUE(reboot.ok());
  EXPECT_TRUE(reboot->required);

  // Nothing left to do, and the second plan keeps the same packages back.
  absl::StatusOr<UpgradePlan> again = manager->Plan();
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(again->upgrades, IsEmpty());
  EXPECT_THAT(again->kept, ::testing::SizeIs(5));
  EXPECT_THAT(KeptReason(*again, "libfoo"),
              HasSubstr("1.2 is only available from a disallowed origin"));
}

TEST_F(AptEngineTest, ApplySkipsUpgradesTheLatestPlanNoLongerAllows) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  UpgradePlan stale;
  stale.upgrades = {{"libfoo", "1.0", "1.2", "o=ThirdParty"}, {"app", "1.0", "2.0", ""}};
  absl::StatusOr<ApplyResult> result = manager->Apply(stale, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->installed, IsEmpty());
  EXPECT_THAT(result->skipped, UnorderedElementsAre(Field(&KeptPackage::package, "app"),
                                                    Field(&KeptPackage::package, "libfoo")));
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");
  EXPECT_EQ(lab_->State("app"), "ii 1.0");
}

TEST_F(AptEngineTest, HoldUnholdAndHolds) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_TRUE(manager->Hold({"libfoo"}).ok());
  EXPECT_THAT(*manager->Holds(), ElementsAre("kubelet", "libfoo"));
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(KeptReason(*plan, "libfoo"), HasSubstr("held (dpkg hold)"));
  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("cfg", "rebooter"));
  ASSERT_TRUE(manager->Unhold({"libfoo", "kubelet"}).ok());
  EXPECT_THAT(*manager->Holds(), IsEmpty());
}

// What `apt-cache madison` shows: the versions in the lists, newest first, whichever
// repository offers them, and not the installed version no list offers any more.
TEST_F(AptEngineTest, AvailableVersionsListsTheListsVersionsNewestFirst) {
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<std::vector<std::string>> libfoo = manager->AvailableVersions("libfoo");
  ASSERT_TRUE(libfoo.ok()) << libfoo.status();
  EXPECT_THAT(*libfoo, ElementsAre("1.2", "1.1"));  // 1.0 is installed, in no list.
  EXPECT_THAT(*manager->AvailableVersions("libbar"), ElementsAre("1.0"));  // Not installed.
  absl::StatusOr<std::vector<std::string>> unknown = manager->AvailableVersions("no-such-pkg");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_THAT(*unknown, IsEmpty());
  // Reading versions changes nothing.
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");
}

TEST_F(AptEngineTest, NonStrictWhitelistRestrictsButAllowsDependencies) {
  MakeRoot(absl::StrCat(kPolicy, "Unattended-Upgrade::Package-Whitelist { \"libfoo\"; };\n"));
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("libbar", "libfoo"));
  EXPECT_THAT(KeptReason(*plan, "cfg"), HasSubstr("not in Package-Whitelist"));
  EXPECT_THAT(KeptReason(*plan, "rebooter"), HasSubstr("not in Package-Whitelist"));
}

TEST_F(AptEngineTest, StrictWhitelistKeepsBackNonWhitelistedDependencies) {
  MakeRoot(absl::StrCat(kPolicy,
                        "Unattended-Upgrade::Package-Whitelist { \"libfoo\"; \"cfg\"; };\n"
                        "Unattended-Upgrade::Package-Whitelist-Strict \"true\";\n"));
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("cfg"));
  EXPECT_EQ(KeptReason(*plan, "libfoo"),
            "needs libbar, which is not in the Package-Whitelist (strict)");
}

TEST_F(AptEngineTest, LegacyAllowedOriginsMatchTheSuite) {
  MakeRoot("Unattended-Upgrade::Allowed-Origins { \"ThirdParty:extras\"; };\n");
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  // libfoo 1.2 needs libbar, which only the (disallowed) security repository has.
  EXPECT_THAT(UpgradedNames(*plan), ElementsAre("app"));
  EXPECT_EQ(KeptReason(*plan, "libfoo"),
            "needs libbar, which is only available from a disallowed origin");
}

TEST_F(AptEngineTest, RepairsAnInterruptedDpkgBeforeLocking) {
  // cfg 1.1 unpacked but never configured, with an admin-changed conffile, and a journal
  // entry that dpkg has not folded into the status file yet.
  WriteFile(lab_->Path("etc/cfg.conf"), "setting=admin\n");
  std::string deb = testing::BuildDeb(dir_.Path("work"), Cfg("1.1", "2"), dir_.Path("extra"));
  Sh(absl::StrCat(lab_->Dpkg(), " --force-confold --unpack '", deb, "' >/dev/null"));
  EXPECT_EQ(lab_->State("cfg"), "iU 1.1");
  std::string app_stanza =
      Sh(absl::StrCat("dpkg-query --admindir='", lab_->path(), "/var/lib/dpkg' -s app"));
  size_t status = app_stanza.find("Status: install ok installed");
  ASSERT_NE(status, std::string::npos);
  app_stanza.replace(status, 28, "Status: hold ok installed");
  WriteFile(lab_->Path("var/lib/dpkg/updates/0000"), app_stanza + "\n");
  absl::StatusOr<DpkgInterruption> found = InspectDpkg(lab_->Path("var/lib/dpkg"));
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->journal_files, ElementsAre("0000"));
  EXPECT_THAT(found->unfinished, ElementsAre(HasSubstr("cfg")));

  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<ApplyResult> result = manager->Apply(UpgradePlan{}, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->repaired_dpkg);
  EXPECT_EQ(lab_->State("cfg"), "ii 1.1");
  EXPECT_EQ(lab_->State("app"), "hi 1.0");  // The journal entry was applied.
  EXPECT_EQ(ReadFile(lab_->Path("etc/cfg.conf")), "setting=admin\n");
  EXPECT_EQ(ReadFile(lab_->Path("etc/cfg.conf.dpkg-dist")), "setting=2\n");
  found = InspectDpkg(lab_->Path("var/lib/dpkg"));
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->interrupted());
  absl::StatusOr<bool> again = manager->RepairInterruptedDpkg(nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

// Another process holding dpkg's frontend lock until told to let go.
class LockHolderProcess {
 public:
  explicit LockHolderProcess(const std::string& path) {
    EXPECT_EQ(pipe(ready_), 0);
    EXPECT_EQ(pipe(release_), 0);
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(path.c_str(), O_RDWR | O_CREAT, 0640);
      struct flock fl = {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      char c = fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
      if (write(ready_[1], &c, 1) != 1) _exit(1);
      // Released, or the parent is gone: either way the lock goes with this process.
      _exit(read(release_[0], &c, 1) == 1 ? 0 : 1);
    }
    char c = 0;
    EXPECT_EQ(read(ready_[0], &c, 1), 1);
    EXPECT_EQ(c, 'y');
  }
  void Release() {
    if (pid_ <= 0) return;
    char c = 'x';
    EXPECT_EQ(write(release_[1], &c, 1), 1);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  ~LockHolderProcess() {
    Release();
    for (int fd : {ready_[0], ready_[1], release_[0], release_[1]}) close(fd);
  }
  pid_t pid() const { return pid_; }

 private:
  int ready_[2] = {-1, -1};
  int release_[2] = {-1, -1};
  pid_t pid_ = -1;
};

TEST_F(AptEngineTest, WaitsForTheDpkgLockThenProceeds) {
  AptOptions options;
  options.lock_timeout = absl::Minutes(2);
  options.lock_poll_interval = absl::Milliseconds(20);
  std::unique_ptr<PackageManager> manager = Manager(options);
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  LockHolderProcess holder(lab_->Path("var/lib/dpkg/lock-frontend"));
  absl::Notification waiting;
  std::string waiting_message;
  absl::StatusOr<ApplyResult> result;
  std::thread apply([&] {
    result = manager->Apply(*plan, [&](const ApplyProgress& p) {
      if (p.stage == ApplyProgress::Stage::kWaitingForLock && !waiting.HasBeenNotified()) {
        waiting_message = p.message;
        waiting.Notify();
      }
    });
  });
  waiting.WaitForNotification();
  EXPECT_THAT(waiting_message, HasSubstr(absl::StrCat(holder.pid())));
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");  // Nothing ran while the lock was held.
  holder.Release();
  apply.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.1");
}

TEST_F(AptEngineTest, GivesUpOnTheLockAfterTheTimeout) {
  AptOptions options;
  options.lock_timeout = absl::Milliseconds(300);
  options.lock_poll_interval = absl::Milliseconds(20);
  std::unique_ptr<PackageManager> manager = Manager(options);
  ASSERT_NE(manager, nullptr);
  LockHolderProcess holder(lab_->Path("var/lib/dpkg/lock"));
  absl::StatusOr<ApplyResult> result = manager->Apply(UpgradePlan{}, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr(absl::StrCat(holder.pid())));
  EXPECT_TRUE(manager->Hold({"libfoo"}).code() == absl::StatusCode::kDeadlineExceeded);
}

// The installed packages unattended-upgrades' own planning code would upgrade on the root.
std::vector<std::string> UnattendedUpgradesWouldUpgrade(const std::string& root) {
  absl::StatusOr<ProcessResult> run = RunProcess(
      {"/usr/bin/python3", TENDED_SOURCE_DIR "/tests/unit/agent/apt/engine/testdata/uu_oracle.py",
       root, "Debian", "bookworm"});
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return {"<oracle failed>"};
  EXPECT_EQ(run->exit_code, 0) << run->output;
  std::string json_line;
  std::istringstream lines(run->output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.front() == '[') json_line = line;
  }
  nlohmann::json names = nlohmann::json::parse(json_line, nullptr, false);
  if (!names.is_array()) return {"<oracle output: " + run->output + ">"};
  return names.get<std::vector<std::string>>();
}

std::vector<std::string> InstalledUpgrades(const UpgradePlan& plan) {
  std::vector<std::string> out;
  for (const PackageUpgrade& u : plan.upgrades) {
    if (!u.from.empty()) out.push_back(u.package);
  }
  return out;
}

TEST_F(AptEngineTest, ChoosesTheSamePackagesAsUnattendedUpgrades) {
  if (!PathExists("/usr/bin/unattended-upgrade")) GTEST_SKIP() << "unattended-upgrades absent";
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"reference", kPolicy},
      {"legacy", "Unattended-Upgrade::Allowed-Origins { \"ThirdParty:extras\"; };\n"},
      {"both-origins",
       "Unattended-Upgrade::Origins-Pattern { \"o=NodeOS,l=*-Security\"; \"o=Third*\"; };\n"},
      {"strict-whitelist",
       absl::StrCat(kPolicy,
                    "Unattended-Upgrade::Package-Whitelist { \"libfoo\"; \"cfg\"; };\n"
                    "Unattended-Upgrade::Package-Whitelist-Strict \"true\";\n")},
      {"blacklist-regex",
       absl::StrCat(kPolicy, "Unattended-Upgrade::Package-Blacklist { \"lib.*\"; };\n")},
  };
  for (const auto& [name, conf] : configs) {
    SCOPED_TRACE(name);
    MakeRoot(conf, name);
    std::unique_ptr<PackageManager> manager = Manager();
    ASSERT_NE(manager, nullptr);
    absl::StatusOr<UpgradePlan> plan = manager->Plan();
    ASSERT_TRUE(plan.ok()) << plan.status();
    std::vector<std::string> ours = InstalledUpgrades(*plan);
    EXPECT_FALSE(ours.empty());
    EXPECT_EQ(ours, UnattendedUpgradesWouldUpgrade(lab_->path()));
  }
}

// unattended-upgrades' non-strict whitelist restricts nothing (research §1); ours does.
TEST_F(AptEngineTest, NonStrictWhitelistIsWhereWeDifferFromUnattendedUpgradesOnPurpose) {
  if (!PathExists("/usr/bin/unattended-upgrade")) GTEST_SKIP() << "unattended-upgrades absent";
  MakeRoot(absl::StrCat(kPolicy, "Unattended-Upgrade::Package-Whitelist { \"libfoo\"; };\n"),
           "whitelist");
  std::unique_ptr<PackageManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  absl::StatusOr<UpgradePlan> plan = manager->Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(InstalledUpgrades(*plan), ElementsAre("libfoo"));
  EXPECT_THAT(UnattendedUpgradesWouldUpgrade(lab_->path()),
              ElementsAre("cfg", "libfoo", "rebooter"));
}

TEST(KernelTest, NewerKernelPackage) {
  std::vector<std::string> installed = {"linux-image-amd64", "linux-image-6.1.0-18-amd64",
                                        "linux-image-6.1.0-20-amd64", "libc6"};
  EXPECT_EQ(NewerKernelPackage(installed, "6.1.0-18-amd64"), "linux-image-6.1.0-20-amd64");
  EXPECT_EQ(NewerKernelPackage(installed, "6.1.0-20-amd64"), "");
  EXPECT_EQ(NewerKernelPackage({"linux-image-6.1.0-9-amd64"}, "6.1.0-10-amd64"), "");
  EXPECT_LT(CompareDebianVersions("1.0", "1.0.1"), 0);
  EXPECT_GT(CompareDebianVersions("1:0.9", "2.0"), 0);
}

}  // namespace
}  // namespace tended::agent::apt
