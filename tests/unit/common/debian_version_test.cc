// Debian version ordering against cases dpkg --compare-versions decides.
#include "common/debian_version.h"

#include "gtest/gtest.h"

namespace tended {
namespace {

TEST(DebianVersionTest, OrdersAsDpkgDoes) {
  struct Case {
    const char* a;
    const char* b;
    int sign;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"1.6.20-1", "1.7.24-1", -1},
           {"1.7.24-1", "1.7.24-1", 0},
           {"1.7.24-1", "1.7.3-1", 1},
           {"1.0~rc1-1", "1.0-1", -1},
           {"1.0-1", "1.0-1~bpo12+1", 1},
           {"1:0.9", "2.0", 1},
           {"1.31.4-1.1", "1.31.4-1.2", -1},
           {"1.0a", "1.0", 1},
           {"1.0", "1.0+b1", -1},
           {"1.007", "1.7", 0},
       }) {
    const int got = CompareDebianVersions(c.a, c.b);
    EXPECT_EQ((got > 0) - (got < 0), c.sign) << c.a << " vs " << c.b;
    const int reverse = CompareDebianVersions(c.b, c.a);
    EXPECT_EQ((reverse > 0) - (reverse < 0), -c.sign) << c.b << " vs " << c.a;
  }
}

}  // namespace
}  // namespace tended
