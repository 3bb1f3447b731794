#include "common/utf8.h"

#include <gtest/gtest.h>

namespace tended {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsUnchanged) {
  for (const char* text : {"", "linux-image-6.1.0-28-amd64", "caf\xC3\xA9", "\xE2\x82\xAC 5",
                           "\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_EQ(ToValidUtf8(text), text);
  }
}

TEST(Utf8Test, IllFormedSequencesBecomeOneReplacementEach) {
  EXPECT_EQ(ToValidUtf8("f\xE9"
                        "e"),
            std::string("f") + kFffd + "e");                       // Latin-1.
  EXPECT_EQ(ToValidUtf8("\x80\x80"), std::string(kFffd) + kFffd);  // Stray continuations.
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), std::string(kFffd) + kFffd);  // Overlong '/'.
  EXPECT_EQ(ToValidUtf8("\xE0\x80\x80"), std::string(kFffd) + kFffd + kFffd);
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);  // Surrogate.
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), std::string(kFffd) + kFffd + kFffd + kFffd);
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), kFffd);  // Truncated at the end: one.
  EXPECT_EQ(ToValidUtf8("\xE2\x82x"), std::string(kFffd) + "x");
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"), kFffd);
  EXPECT_EQ(ToValidUtf8("\xFF"), kFffd);
}

TEST(Utf8Test, ClipKeepsShortTextAndCutsLongTextAtACharacterBoundary) {
  EXPECT_EQ(ClipUtf8("NodeDown", 8), "NodeDown");
  EXPECT_EQ(ClipUtf8("NodeDownX", 8), "NodeDown ...(9 bytes)");
  // "é" is two bytes: a cut inside it goes back to before it.
  EXPECT_EQ(ClipUtf8("ab\xC3\xA9" "cd", 3), "ab ...(6 bytes)");
  EXPECT_EQ(ClipUtf8("\xF0\x9F\x98\x80", 2), " ...(4 bytes)");
  const std::string huge(50 * 1024, 'A');
  EXPECT_EQ(ClipUtf8(huge, 100), std::string(100, 'A') + " ...(51200 bytes)");
  EXPECT_EQ(ToValidUtf8(ClipUtf8("\xE2\x82\xAC\xE2\x82\xAC", 4)),
            ClipUtf8("\xE2\x82\xAC\xE2\x82\xAC", 4));
}

}  // namespace
}  // namespace tended
