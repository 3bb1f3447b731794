#include "agent/k8s/apt_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended::agent::k8s {
namespace {

using ::testing::HasSubstr;

constexpr char kPattern[] = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";

KubeVersion V(int major, int minor, int patch) { return KubeVersion{major, minor, patch}; }

TEST(SwitchSourceMinorTest, RewritesTheOneLineFormKeepingTheKeyring) {
  const std::string text =
      "# Kubernetes\n"
      "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
      "https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /\n";
  auto switched = SwitchSourceMinor(text, kPattern, V(1, 32, 0));
  ASSERT_TRUE(switched.ok()) << switched.status();
  EXPECT_EQ(switched->text,
            "# Kubernetes\n"
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
            "https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\n");
  EXPECT_EQ(switched->lines_changed, 1);
  EXPECT_EQ(switched->from_minor, "1.31");
}

TEST(SwitchSourceMinorTest, RewritesDeb822UrisAndLeavesCommentsAlone) {
  const std::string text =
      "# was https://pkgs.k8s.io/core:/stable:/v1.30/deb/\n"
      "Types: deb\n"
      "URIs: https://pkgs.k8s.io/core:/stable:/v1.31/deb/\n"
      "Suites: /\n"
      "Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n";
  auto switched = SwitchSourceMinor(text, kPattern, V(1, 32, 3));
  ASSERT_TRUE(switched.ok()) << switched.status();
  EXPECT_THAT(switched->text, HasSubstr("URIs: https://pkgs.k8s.io/core:/stable:/v1.32/deb/\n"));
  EXPECT_THAT(switched->text, HasSubstr("# was https://pkgs.k8s.io/core:/stable:/v1.30/deb/"));
  EXPECT_THAT(switched->text, HasSubstr("Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg"));
}

TEST(SwitchSourceMinorTest, AlreadyAtTheTargetChangesNothing) {
  const std::string text = "deb https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\n";
  auto switched = SwitchSourceMinor(text, kPattern, V(1, 32, 1));
  ASSERT_TRUE(switched.ok()) << switched.status();
  EXPECT_EQ(switched->lines_changed, 0);
  EXPECT_EQ(switched->text, text);
}

TEST(SwitchSourceMinorTest, RefusesTwoMinorsDownAndNoLine) {
  EXPECT_THAT(SwitchSourceMinor("deb https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /\n", kPattern,
                                V(1, 32, 0))
                  .status()
                  .message(),
              HasSubstr("would not be the next minor"));
  EXPECT_EQ(SwitchSourceMinor("deb https://pkgs.k8s.io/core:/stable:/v1.33/deb/ /\n", kPattern,
                              V(1, 32, 0))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  auto none =
      SwitchSourceMinor("deb http://deb.debian.org/debian bookworm main\n", kPattern, V(1, 32, 0));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(), HasSubstr("no source line names"));
}

TEST(SwitchSourceMinorTest, RefusesLinesThatDisagree) {
  auto mixed = SwitchSourceMinor(
      "deb https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /\n"
      "deb https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\n",
      kPattern, V(1, 32, 0));
  EXPECT_THAT(mixed.status().message(), HasSubstr("disagree"));
}

TEST(SwitchSourceMinorTest, MatchesOverEitherSchemeAndWithoutTheLastSlash) {
  auto switched = SwitchSourceMinor("deb http://pkgs.k8s.io/core:/stable:/v1.31/deb /\n", kPattern,
                                    V(1, 32, 0));
  ASSERT_TRUE(switched.ok()) << switched.status();
  EXPECT_EQ(switched->text, "deb http://pkgs.k8s.io/core:/stable:/v1.32/deb /\n");
}

TEST(SwitchSourceMinorTest, RefusesAPatternWithoutMinorAndAHugeFile) {
  EXPECT_EQ(SwitchSourceMinor("x", "https://pkgs.k8s.io/", V(1, 32, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SwitchSourceMinor(std::string(kMaxSourcesFileBytes + 1, 'x'), kPattern, V(1, 32, 0))
                .status()
                .code(),
            absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace tended::agent::k8s
