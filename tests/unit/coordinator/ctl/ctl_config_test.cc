#include "coordinator/ctl/ctl_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CtlConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = dir_.Path(name);
    EXPECT_TRUE(WriteFileAtomically(path, contents).ok());
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(CtlConfigTest, FlagWinsOverEnvironmentAndFile) {
  std::string file = Write("a.yaml", "address: file:1\n");
  absl::StatusOr<CtlEndpoint> endpoint = ResolveEndpoint("flag:1", false, "env:1", {file});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->address, "flag:1");
  EXPECT_EQ(endpoint->address_source, "--address");
}

TEST_F(CtlConfigTest, EnvironmentWinsOverFile) {
  std::string file = Write("a.yaml", "address: file:1\n");
  absl::StatusOr<CtlEndpoint> endpoint = ResolveEndpoint("", false, "env:1", {file});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->address, "env:1");
  EXPECT_EQ(endpoint->address_source, "TENDED_ADDRESS");
}

TEST_F(CtlConfigTest, FirstExistingFileIsRead) {
  std::string second = Write("second.yaml", "address: second:2\n");
  absl::StatusOr<CtlEndpoint> endpoint =
      ResolveEndpoint("", false, "", {dir_.Path("missing.yaml"), second});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->address, "second:2");
  EXPECT_EQ(endpoint->address_source, second);
  EXPECT_FALSE(endpoint->insecure);
}

TEST_F(CtlConfigTest, FileMaySayInsecure) {
  std::string file = Write("a.yaml", "address: c:7443\ninsecure: true\n");
  absl::StatusOr<CtlEndpoint> endpoint = ResolveEndpoint("", false, nullptr, {file});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_TRUE(endpoint->insecure);
}

TEST_F(CtlConfigTest, DefaultWhenNothingIsSet) {
  absl::StatusOr<CtlEndpoint> endpoint =
      ResolveEndpoint("", false, nullptr, {dir_.Path("none.yaml")});
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->address, kDefaultAddress);
  EXPECT_EQ(endpoint->address_source, "default");
}

TEST_F(CtlConfigTest, UnknownKeyIsAnErrorNamingFileAndKey) {
  std::string file = Write("bad.yaml", "address: c:1\nadress: typo\n");
  absl::StatusOr<CtlEndpoint> endpoint = ResolveEndpoint("flag:1", false, nullptr, {file});
  ASSERT_FALSE(endpoint.ok());
  EXPECT_THAT(endpoint.status().message(), HasSubstr("bad.yaml"));
  EXPECT_THAT(endpoint.status().message(), HasSubstr("adress"));
}

TEST_F(CtlConfigTest, InsecureMustBeABool) {
  EXPECT_FALSE(ParseCtlConfig("insecure: maybe\n", "x.yaml").ok());
}

TEST(CtlConfigPathsTest, XdgThenHomeThenEtc) {
  EXPECT_THAT(DefaultCtlConfigPaths("/x", "/home/op"),
              ElementsAre("/x/tended/tendedctl.yaml", "/etc/tended/tendedctl.yaml"));
  EXPECT_THAT(DefaultCtlConfigPaths(nullptr, "/home/op"),
              ElementsAre("/home/op/.config/tended/tendedctl.yaml", "/etc/tended/tendedctl.yaml"));
  EXPECT_THAT(DefaultCtlConfigPaths(nullptr, nullptr), ElementsAre("/etc/tended/tendedctl.yaml"));
}

}  // namespace
}  // namespace tended::ctl
