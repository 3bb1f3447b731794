#include "common/root_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tended {
namespace {

TEST(RootPathTest, ResolvesUnderTheRoot) {
  RootPath root("/srv/node1/");
  EXPECT_EQ(root.root(), "/srv/node1");
  EXPECT_FALSE(root.is_host_root());
  EXPECT_EQ(root.Resolve("/var/run/reboot-required"), "/srv/node1/var/run/reboot-required");
  EXPECT_EQ(root.Resolve("var/lib/dpkg"), "/srv/node1/var/lib/dpkg");
  EXPECT_EQ(root.Resolve("/var/lib/dpkg/"), "/srv/node1/var/lib/dpkg/");
  EXPECT_EQ(root.Resolve("//var//./lib/"), "/srv/node1/var/lib/");
  EXPECT_EQ(root.Resolve("/"), "/srv/node1/");
  EXPECT_EQ(root.Resolve(""), "/srv/node1/");

  RootPath host;
  EXPECT_TRUE(host.is_host_root());
  EXPECT_EQ(host.Resolve("/var/run/reboot-required"), "/var/run/reboot-required");
  EXPECT_EQ(host.Resolve("/"), "/");
}

TEST(RootPathTest, DotDotNeverClimbsOutOfTheRoot) {
  RootPath root("/srv/node1");
  EXPECT_EQ(root.Resolve("/../etc/shadow"), "/srv/node1/etc/shadow");
  EXPECT_EQ(root.Resolve("/var/lib/tended/../../../../../etc/shadow"), "/srv/node1/etc/shadow");
  EXPECT_EQ(root.Resolve("../../outside"), "/srv/node1/outside");
  EXPECT_EQ(root.Resolve("/var/run/../lib"), "/srv/node1/var/lib");
  EXPECT_EQ(root.Resolve("/.."), "/srv/node1/");
  EXPECT_EQ(RootPath().Resolve("/../../etc"), "/etc");
  // Dots inside a name are a name.
  EXPECT_EQ(root.Resolve("/var/..x/.y"), "/srv/node1/var/..x/.y");
}

TEST(RootPathTest, HasDotDotComponent) {
  EXPECT_TRUE(RootPath::HasDotDotComponent(".."));
  EXPECT_TRUE(RootPath::HasDotDotComponent("/var/../etc"));
  EXPECT_TRUE(RootPath::HasDotDotComponent("/var/run/.."));
  EXPECT_TRUE(RootPath::HasDotDotComponent("../x"));
  EXPECT_FALSE(RootPath::HasDotDotComponent("/var/run/reboot-required"));
  EXPECT_FALSE(RootPath::HasDotDotComponent("/var/..run/x.."));
  EXPECT_FALSE(RootPath::HasDotDotComponent("/var/./run"));
}

}  // namespace
}  // namespace tended
