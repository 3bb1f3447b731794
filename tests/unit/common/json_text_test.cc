#include "common/json_text.h"

#include <gtest/gtest.h>

namespace tended {
namespace {

TEST(JsonTextTest, InvalidUtf8BecomesTheReplacementCharacter) {
  nlohmann::json value = {{"message", std::string("dpkg: \xff\xfe f\xe9"
                                                  "e.conf")}};
  std::string text;
  ASSERT_NO_THROW(text = ToJsonText(value));
  EXPECT_EQ(text,
            "{\"message\":\"dpkg: \xEF\xBF\xBD\xEF\xBF\xBD f\xEF\xBF\xBD"
            "e.conf\"}");
  EXPECT_TRUE(nlohmann::json::accept(text));
}

TEST(JsonTextTest, ValidTextIsCompactAndUnchanged) {
  nlohmann::json value = {{"node", "k8s-node1"}, {"note", "caf\xC3\xA9"}, {"n", 3}};
  EXPECT_EQ(ToJsonText(value), "{\"n\":3,\"node\":\"k8s-node1\",\"note\":\"caf\xC3\xA9\"}");
}

}  // namespace
}  // namespace tended
