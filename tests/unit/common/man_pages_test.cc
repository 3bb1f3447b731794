// The man pages in docs/man: one for every shipped program, each accepted by groff with
// every warning on (`groff -man -ww -z` prints nothing), and scripts/build-debs.sh installs
// them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

constexpr char kManDir[] = TENDED_SOURCE_DIR "/docs/man/";
constexpr char kBuildDebs[] = TENDED_SOURCE_DIR "/scripts/build-debs.sh";
// Every program the packages install into /usr/bin, with its section.
constexpr const char* kPages[] = {"tendedctl.1", "tended-agent.8", "tended-coordinator.8",
                                  "tended-apt-engine.8"};

struct Ran {
  std::string exit;
  std::string output;
};

// `groff -man -ww -z PAGE` in the C.UTF-8 locale.
Ran Groff(const std::string& page, const testing::TempDir& dir) {
  const std::string log = dir.Path("groff.log");
  (void)RemoveFileIfExists(log);
  auto child = testing::ChildProcess::Start(
      {"/usr/bin/env", "LC_ALL=C.UTF-8", "groff", "-man", "-ww", "-z", page}, log);
  if (!child.ok()) return {std::string(child.status().message()), ""};
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while ((*child)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  Ran ran{(*child)->DescribeExit(), ""};
  (*child)->Stop();
  ran.output = ReadFileToString(log).value_or("");
  return ran;
}

bool HaveGroff() { return PathExists("/usr/bin/groff"); }

TEST(ManPagesTest, EveryPageHasNoGroffWarning) {
  if (!HaveGroff()) GTEST_SKIP() << "groff is not installed (apt install groff-base)";
  testing::TempDir dir;
  for (const char* page : kPages) {
    const std::string path = absl::StrCat(kManDir, page);
    ASSERT_TRUE(PathExists(path)) << path;
    Ran ran = Groff(path, dir);
    EXPECT_EQ(ran.exit, "exited with 0") << page << "\n" << ran.output;
    EXPECT_EQ(ran.output, "") << page;
  }
}

TEST(ManPagesTest, ABrokenPageWarns) {
  // So the check above can fail: an unknown request and a bad font escape.
  if (!HaveGroff()) GTEST_SKIP() << "groff is not installed";
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.Path("broken.8"),
                                  ".TH BROKEN 8\n.SH NAME\nbroken \\- x\n.XYZZY\n\\fQword\n")
                  .ok());
  Ran ran = Groff(dir.Path("broken.8"), dir);
  EXPECT_NE(ran.output, "");
}

TEST(ManPagesTest, EachPageNamesItsProgramAndTheDebsInstallThem) {
  auto script = ReadFileToString(kBuildDebs);
  ASSERT_TRUE(script.ok()) << script.status();
  EXPECT_THAT(*script, ::testing::HasSubstr("docs/man/"));
  EXPECT_THAT(*script, ::testing::HasSubstr("usr/share/man/man"));
  for (const char* page : kPages) {
    auto text = ReadFileToString(absl::StrCat(kManDir, page));
    ASSERT_TRUE(text.ok()) << page;
    std::string name(page);
    name = name.substr(0, name.rfind('.'));
    EXPECT_TRUE(absl::StrContains(*text, ".SH NAME")) << page;
    EXPECT_TRUE(absl::StrContains(*script, absl::StrCat(" ", name, " ")) ||
                absl::StrContains(*script, absl::StrCat("\"", name, " ")) ||
                absl::StrContains(*script, absl::StrCat(" ", name, "\"")))
        << name << " is not among build-debs.sh's programs";
  }
}

}  // namespace
}  // namespace tended
