#include "agent/simulated_rebooter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/config.h"
#include "agent/logind_rebooter.h"
#include "agent/node_facts.h"
#include "agent/run.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

bool IsLowercaseUuidV4(const std::string& id) {
  static const std::regex kUuid(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(id, kUuid);
}

void Write(const std::string& path, const std::string& contents) {
  size_t slash = path.rfind('/');
  ASSERT_TRUE(MakeDirectories(path.substr(0, slash)).ok()) << path;
  ASSERT_TRUE(WriteFileAtomically(path, contents).ok()) << path;
}

std::string Read(const std::string& path) {
  auto contents = ReadFileToString(path);
  EXPECT_TRUE(contents.ok()) << contents.status();
  return contents.ok() ? *contents : "";
}

bool IsSymlink(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

class SimulatedRebooterTest : public ::testing::Test {
 protected:
  std::unique_ptr<SimulatedRebooter> MakeRebooter() {
    auto rebooter = SimulatedRebooter::Create(RootPath(root_.path()), clock_);
    EXPECT_TRUE(rebooter.ok()) << rebooter.status();
    return rebooter.ok() ? std::move(rebooter).value() : nullptr;
  }
  std::string BootId() {
    RootPath root(root_.path());
    AgentConfig config;
    NodeFactsReader reader(root, config, "node-1");
    auto boot_id = reader.ReadBootId();
    EXPECT_TRUE(boot_id.ok()) << boot_id.status();
    return boot_id.ok() ? *boot_id : "";
  }

  testing::TempDir root_;
  testing::FakeClock clock_{absl::FromUnixSeconds(1767225600)};
};

TEST_F(SimulatedRebooterTest, GivesANewValidBootIdEachTime) {
  Write(root_.Path("proc/sys/kernel/random/boot_id"), "6f1c0a8e-0000-4000-8000-000000000001\n");
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  EXPECT_TRUE(rebooter->simulated());

  ASSERT_TRUE(rebooter->Reboot("test").ok());
  std::string first = BootId();
  EXPECT_TRUE(IsLowercaseUuidV4(first)) << first;
  EXPECT_NE(first, "6f1c0a8e-0000-4000-8000-000000000001");
  // Like the kernel's file: the id and a newline.
  EXPECT_EQ(Read(root_.Path("proc/sys/kernel/random/boot_id")), absl::StrCat(first, "\n"));

  ASSERT_TRUE(rebooter->Reboot("again").ok());
  std::string second = BootId();
  EXPECT_TRUE(IsLowercaseUuidV4(second)) << second;
  EXPECT_NE(second, first);
  EXPECT_EQ(rebooter->reboot_count(), 2);
}

TEST_F(SimulatedRebooterTest, CreatesProcFilesInAnEmptyRoot) {
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  ASSERT_TRUE(rebooter->Reboot("first boot").ok());
  EXPECT_TRUE(IsLowercaseUuidV4(BootId()));
  EXPECT_EQ(Read(root_.Path("proc/stat")), "btime 1767225600\n");
}

TEST_F(SimulatedRebooterTest, SetsBtimeToNowAndKeepsTheRestOfProcStat) {
  Write(root_.Path("proc/stat"), "cpu  1 2 3\nbtime 1700000000\nprocesses 42\n");
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  clock_.Advance(absl::Hours(3));
  ASSERT_TRUE(rebooter->Reboot("test").ok());
  EXPECT_EQ(Read(root_.Path("proc/stat")),
            absl::StrCat("cpu  1 2 3\nbtime ", 1767225600 + 3 * 3600, "\nprocesses 42\n"));
}

TEST_F(SimulatedRebooterTest, EmptiesRunAndVarRunButNothingElse) {
  Write(root_.Path("run/reboot-required"), "*** System restart required ***\n");
  Write(root_.Path("run/reboot-required.pkgs"), "linux-image-generic\n");
  Write(root_.Path("run/systemd/deep/nested/file"), "x");
  Write(root_.Path("var/run/gated-reboot-required"), "");
  Write(root_.Path("var/lib/tended/journal"), "keep me");
  Write(root_.Path("etc/tended/agent.yaml"), "keep me too");
  testing::TempDir outside;
  Write(outside.Path("precious"), "outside the root");
  ASSERT_EQ(::symlink(outside.Path("precious").c_str(), root_.Path("run/link-out").c_str()), 0);
  ASSERT_EQ(::symlink(outside.path().c_str(), root_.Path("run/dir-link-out").c_str()), 0);

  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  ASSERT_TRUE(rebooter->Reboot("test").ok());

  EXPECT_THAT(Entries(root_.Path("run")), IsEmpty());
  EXPECT_THAT(Entries(root_.Path("var/run")), IsEmpty());
  EXPECT_EQ(Read(root_.Path("var/lib/tended/journal")), "keep me");
  EXPECT_EQ(Read(root_.Path("etc/tended/agent.yaml")), "keep me too");
  // Symlinks inside run were removed, not followed.
  EXPECT_EQ(Read(outside.Path("precious")), "outside the root");
}

TEST_F(SimulatedRebooterTest, KeepsAVarRunSymlinkAndClearsItsTarget) {
  Write(root_.Path("run/reboot-required"), "");
  ASSERT_TRUE(MakeDirectories(root_.Path("var")).ok());
  ASSERT_EQ(::symlink("../run", root_.Path("var/run").c_str()), 0);
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  ASSERT_TRUE(rebooter->Reboot("test").ok());
  EXPECT_TRUE(IsSymlink(root_.Path("var/run")));
  EXPECT_THAT(Entries(root_.Path("run")), IsEmpty());
}

TEST_F(SimulatedRebooterTest, LeavesRunDirectoriesOutsideTheRootAlone) {
  testing::TempDir outside;
  Write(outside.Path("run/pid"), "123");
  Write(outside.Path("var/run/pid"), "456");
  ASSERT_TRUE(MakeDirectories(root_.Path("var")).ok());
  ASSERT_EQ(::symlink(outside.Path("var/run").c_str(), root_.Path("var/run").c_str()), 0);
  ASSERT_EQ(::symlink(outside.Path("run").c_str(), root_.Path("run").c_str()), 0);
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  ASSERT_TRUE(rebooter->Reboot("test").ok());
  EXPECT_EQ(Read(outside.Path("run/pid")), "123");
  EXPECT_EQ(Read(outside.Path("var/run/pid")), "456");
  EXPECT_TRUE(IsSymlink(root_.Path("var/run")));
}

TEST_F(SimulatedRebooterTest, RefusesToWriteProcThroughASymlinkOutOfTheRoot) {
  testing::TempDir outside;
  ASSERT_EQ(::symlink(outside.path().c_str(), root_.Path("proc").c_str()), 0);
  auto rebooter = MakeRebooter();
  ASSERT_NE(rebooter, nullptr);
  absl::Status status = rebooter->Reboot("test");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(Entries(outside.path()), IsEmpty());
}

// Only Create() is exercised with a host root: if its check ever broke, Reboot() would act on
// this machine, so the test never calls Reboot() there.
TEST(SimulatedRebooterRootTest, RefusesTheHostRoot) {
  testing::FakeClock clock;
  for (const char* root : {"/", "", "//", "/tmp/.."}) {
    auto rebooter = SimulatedRebooter::Create(RootPath(root), clock);
    EXPECT_EQ(rebooter.status().code(), absl::StatusCode::kFailedPrecondition) << root;
    EXPECT_THAT(rebooter.status().message(), HasSubstr("/")) << root;
  }
  testing::TempDir dir;
  EXPECT_EQ(SimulatedRebooter::Create(RootPath(dir.Path("missing")), clock).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SimulatedRebooterRootTest, NewBootIdsAreUuidsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string id = SimulatedRebooter::NewBootId();
    EXPECT_TRUE(IsLowercaseUuidV4(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(ChooseRebooterTest, PicksTheConfiguredMethodWithoutRebooting) {
  testing::TempDir dir;
  AgentConfig config;
  config.reboot.method = RebootMethod::kSimulate;
  auto simulated = ChooseRebooter(config, RootPath(dir.path()), Clock::Real());
  ASSERT_TRUE(simulated.ok()) << simulated.status();
  EXPECT_TRUE((*simulated)->simulated());
  EXPECT_FALSE(ChooseRebooter(config, RootPath("/"), Clock::Real()).ok());

  // Constructing the logind rebooter connects to nothing; Reboot() is never called here.
  config.reboot.method = RebootMethod::kLogind;
  auto logind = ChooseRebooter(config, RootPath(dir.path()), Clock::Real());
  ASSERT_TRUE(logind.ok()) << logind.status();
  EXPECT_FALSE((*logind)->simulated());
  // A non-host root points the bus connection below that root, never at the host's bus.
  auto* logind_rebooter = dynamic_cast<LogindRebooter*>(logind->get());
  ASSERT_NE(logind_rebooter, nullptr);
  EXPECT_EQ(logind_rebooter->bus_address(),
            absl::StrCat("unix:path=", dir.path(), "/run/dbus/system_bus_socket"));
  EXPECT_EQ(LogindRebooter(RootPath("/")).bus_address(), "");
}

}  // namespace
}  // namespace tended::agent
