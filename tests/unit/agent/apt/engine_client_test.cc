// The agent's apt engine in a child process: the real tended-apt-engine against a throwaway
// dpkg root gives the same answers as the in-process engine, and a broken engine process is
// a clear error, never a result.
#include "agent/apt/engine_client.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/package_manager.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using ::testing::Contains;
using testing::Deb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LabRoot;
using testing::RepoSet;
using testing::RepoSpec;
using testing::Sh;
using testing::WriteFile;

constexpr char kEngine[] = TENDED_BINARY_DIR "/agent/tended-apt-engine";

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern { "o=NodeOS"; };
Unattended-Upgrade::Package-Blacklist { "blk"; };
)";

const char kRebootPostinst[] =
    "if [ \"$1\" = configure ] && [ -n \"$2\" ]; then\n"
    "  touch \"$DPKG_ROOT/var/run/reboot-required\"\nfi";

class EngineClientTest : public testing::LabTest<EngineClientTest> {
 public:
  static std::vector<RepoSpec> Repos() {
    RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
    security.debs = {Deb{"libfoo", "1.1", "libbar"}, Deb{"libbar", "1.0"}, Deb{"blk", "1.1"},
                     Deb{"kubelet", "1.1"}, Deb{"rebooter", "1.1", "", kRebootPostinst}};
    return {security};
  }

 protected:
  void SetUp() override {
    MakeLab(kPolicy, {Deb{"libfoo", "1.0"}, Deb{"blk", "1.0"}, Deb{"kubelet", "1.0"},
                      Deb{"rebooter", "1.0", "", kRebootPostinst}});
    Sh(absl::StrCat("echo 'kubelet hold' | ", lab_->Dpkg(), " --set-selections"));
  }

  AptOptions Options() const {
    AptOptions options;
    options.root = lab_->path();
    return options;
  }

  std::unique_ptr<PackageManager> Child(const AptOptions& options, const std::string& engine) {
    absl::StatusOr<std::unique_ptr<PackageManager>> m =
        CreateEngineProcessPackageManager(options, engine);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  // A shell script posing as the engine; it answers the check at creation correctly.
  std::string FakeEngine(const std::string& name, const std::string& on_call) {
    std::string path = dir_.Path(name);
    WriteFile(path,
              "#!/bin/sh\nrequest=$(cat)\n"
              "case \"$request\" in *'\"call\":\"check\"'*) echo '{\"result\":null}' >&3; "
              "exit 0;; esac\n" +
                  on_call + "\n",
              0755);
    return path;
  }
};

TEST_F(EngineClientTest, PlansTheSameAsTheInProcessEngine) {
  std::unique_ptr<PackageManager> child = Child(Options(), kEngine);
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->Update().ok());
  absl::StatusOr<UpgradePlan> from_child = child->Plan();
  ASSERT_TRUE(from_child.ok()) << from_child.status();

  absl::StatusOr<std::unique_ptr<PackageManager>> in_process = CreateAptPackageManager(Options());
  ASSERT_TRUE(in_process.ok()) << in_process.status();
  absl::StatusOr<UpgradePlan> direct = (*in_process)->Plan();
  ASSERT_TRUE(direct.ok()) << direct.status();

  EXPECT_EQ(from_child->upgrades, direct->upgrades);
  EXPECT_EQ(from_child->kept, direct->kept);
  ASSERT_EQ(from_child->upgrades.size(), 3u);  // libbar (new), libfoo, rebooter.
  EXPECT_EQ(from_child->upgrades[1].package, "libfoo");
  EXPECT_EQ(from_child->upgrades[1].to, "1.1");
  EXPECT_EQ(from_child->kept.size(), 2u);  // blk (blacklisted), kubelet (held).
}

TEST_F(EngineClientTest, AppliesThroughTheEngineAndForwardsProgress) {
  AptOptions options = Options();
  options.policy.holds = {"blk"};
  std::unique_ptr<PackageManager> child = Child(options, kEngine);
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->Update().ok());
  absl::StatusOr<UpgradePlan> plan = child->Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();

  std::vector<ApplyProgress::Stage> stages;
  absl::StatusOr<ApplyResult> result =
      child->Apply(*plan, [&](const ApplyProgress& p) { stages.push_back(p.stage); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(stages, Contains(ApplyProgress::Stage::kDownloading));
  EXPECT_THAT(stages, Contains(ApplyProgress::Stage::kInstalling));
  EXPECT_EQ(result->installed.size(), 3u);
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.1");
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.0");
  EXPECT_EQ(lab_->State("blk"), "hi 1.0");
  EXPECT_THAT(result->reheld, ElementsAre("blk"));
  EXPECT_TRUE(result->reboot.required);
  EXPECT_THAT(result->reboot.packages, ElementsAre("rebooter"));

  absl::StatusOr<std::vector<std::string>> holds = child->Holds();
  ASSERT_TRUE(holds.ok()) << holds.status();
  EXPECT_THAT(*holds, ElementsAre("blk", "kubelet"));
  ASSERT_TRUE(child->Unhold({"blk"}).ok());
  holds = child->Holds();
  ASSERT_TRUE(holds.ok());
  EXPECT_THAT(*holds, ElementsAre("kubelet"));
  absl::StatusOr<RebootRequirement> reboot = child->RebootRequired();
  ASSERT_TRUE(reboot.ok()) << reboot.status();
  EXPECT_TRUE(reboot->required);
  absl::StatusOr<bool> repaired = child->RepairInterruptedDpkg(nullptr);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_FALSE(*repaired);
}

TEST_F(EngineClientTest, AvailableVersionsThroughTheEngine) {
  std::unique_ptr<PackageManager> child = Child(Options(), kEngine);
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->Update().ok());
  absl::StatusOr<std::vector<std::string>> versions = child->AvailableVersions("libfoo");
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_THAT(*versions, ElementsAre("1.1"));
  versions = child->AvailableVersions("no-such-pkg");
  ASSERT_TRUE(versions.ok()) << versions.status();
  EXPECT_TRUE(versions->empty());
}

TEST_F(EngineClientTest, InstallsAPinnedVersionOfAHeldPackageThroughTheEngine) {
  std::unique_ptr<PackageManager> child = Child(Options(), kEngine);
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->Update().ok());
  absl::StatusOr<ApplyResult> unknown = child->InstallPinned({{"kubelet", "9.9"}}, nullptr);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.0");

  std::vector<ApplyProgress::Stage> stages;
  absl::StatusOr<ApplyResult> result = child->InstallPinned(
      {{"kubelet", "1.1"}}, [&](const ApplyProgress& p) { stages.push_back(p.stage); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(stages, Contains(ApplyProgress::Stage::kInstalling));
  ASSERT_EQ(result->installed.size(), 1u);
  EXPECT_EQ(result->installed[0].package, "kubelet");
  EXPECT_EQ(result->installed[0].from, "1.0");
  EXPECT_EQ(result->installed[0].to, "1.1");
  EXPECT_EQ(lab_->State("kubelet"), "hi 1.1");  // Installed, and held again.
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");   // Nothing else.
}

TEST_F(EngineClientTest, ErrorsCrossTheProcessBoundaryWithTheirCode) {
  AptOptions options = Options();
  options.lock_timeout = absl::Milliseconds(300);
  options.lock_poll_interval = absl::Milliseconds(20);
  std::unique_ptr<PackageManager> child = Child(options, kEngine);
  ASSERT_NE(child, nullptr);
  // Another process holds dpkg's lock for the whole call.
  int fd = open(lab_->Path("var/lib/dpkg/lock").c_str(), O_RDWR | O_CREAT, 0640);
  ASSERT_GE(fd, 0);
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ASSERT_EQ(fcntl(fd, F_SETLK, &fl), 0);  // Ours; the engine is another process.
  absl::Status held = child->Hold({"libfoo"});
  close(fd);
  EXPECT_EQ(held.code(), absl::StatusCode::kDeadlineExceeded) << held;
  EXPECT_THAT(held.message(), HasSubstr(absl::StrCat(getpid())));
  EXPECT_EQ(lab_->State("libfoo"), "ii 1.0");
}

TEST_F(EngineClientTest, CreationChecksTheEngineAndTheRootsPolicy) {
  absl::StatusOr<std::unique_ptr<PackageManager>> missing =
      CreateEngineProcessPackageManager(Options(), dir_.Path("no-such-engine"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-engine"));

  AptOptions bad_policy = Options();
  bad_policy.policy.origins_pattern = {"colour=blue"};
  absl::StatusOr<std::unique_ptr<PackageManager>> refused =
      CreateEngineProcessPackageManager(bad_policy, kEngine);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("colour"));

  AptOptions no_dpkg = Options();
  no_dpkg.root = dir_.Path("empty");
  ASSERT_TRUE(MakeDirectories(no_dpkg.root).ok());
  absl::StatusOr<std::unique_ptr<PackageManager>> empty =
      CreateEngineProcessPackageManager(no_dpkg, kEngine);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(empty.status().message(), HasSubstr("no dpkg database"));
}

TEST_F(EngineClientTest, AnEngineThatDiesIsAnErrorNotAResult) {
  std::unique_ptr<PackageManager> silent = Child(Options(), FakeEngine("silent", "exit 3"));
  ASSERT_NE(silent, nullptr);
  absl::StatusOr<UpgradePlan> plan = silent->Plan();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(plan.status().message(),
              HasSubstr("apt engine (plan) exited with 3 before its result"));

  std::unique_ptr<PackageManager> killed = Child(Options(), FakeEngine("killed", "kill -9 $$"));
  ASSERT_NE(killed, nullptr);
  absl::StatusOr<ApplyResult> applied = killed->Apply(UpgradePlan{}, nullptr);
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(applied.status().message(), HasSubstr("killed by signal 9"));

  // Progress that arrived is delivered even when the result never comes.
  std::unique_ptr<PackageManager> partial = Child(
      Options(), FakeEngine("partial",
                            "echo '{\"progress\":{\"stage\":\"installing\",\"package\":\"libfoo\","
                            "\"percent\":50,\"message\":\"unpacking\"}}' >&3\nexit 1"));
  ASSERT_NE(partial, nullptr);
  std::vector<std::string> seen;
  applied =
      partial->Apply(UpgradePlan{}, [&](const ApplyProgress& p) { seen.push_back(p.package); });
  EXPECT_FALSE(applied.ok());
  EXPECT_THAT(seen, ElementsAre("libfoo"));
}

TEST_F(EngineClientTest, AHungEngineIsKilledAtItsTimeout) {
  EngineTimeouts timeouts;
  timeouts.plan = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<PackageManager>> hung =
      CreateEngineProcessPackageManager(Options(), FakeEngine("hung", "exec sleep 600"), timeouts);
  ASSERT_TRUE(hung.ok()) << hung.status();
  absl::StatusOr<UpgradePlan> plan = (*hung)->Plan();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("apt engine (plan)"));
}

TEST_F(EngineClientTest, GarbageFromTheEngineIsAnErrorNotAResult) {
  std::unique_ptr<PackageManager> garbage =
      Child(Options(), FakeEngine("garbage", "echo 'Reading package lists... Done' >&3"));
  ASSERT_NE(garbage, nullptr);
  absl::StatusOr<UpgradePlan> plan = garbage->Plan();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(plan.status().message(), HasSubstr("malformed apt engine message"));

  // A well-formed answer of the wrong shape for the call is refused too.
  std::unique_ptr<PackageManager> wrong =
      Child(Options(), FakeEngine("wrong", "echo '{\"result\":true}' >&3"));
  ASSERT_NE(wrong, nullptr);
  EXPECT_FALSE(wrong->Plan().ok());
  // Its error, as the engine reported it, keeps the code.
  std::unique_ptr<PackageManager> refusing = Child(
      Options(),
      FakeEngine("refusing", "echo '{\"error\":{\"code\":14,\"message\":\"mirror down\"}}' >&3"));
  ASSERT_NE(refusing, nullptr);
  absl::Status updated = refusing->Update();
  EXPECT_EQ(updated.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(updated.message(), "mirror down");
}

}  // namespace
}  // namespace tended::agent::apt
