#include "common/yaml_util.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

YamlCursor Load(const std::string& text) {
  absl::StatusOr<YAML::Node> node = ParseYamlDocument(text, "test.yaml");
  EXPECT_TRUE(node.ok()) << node.status();
  return YamlCursor(node.ok() ? *node : YAML::Node(), "test.yaml");
}

absl::StatusOr<absl::Duration> Duration(const std::string& text) {
  return Load("d: \"" + text + "\"\n").Child("d").AsDuration();
}

TEST(ParseYamlDocumentTest, SyntaxErrorNamesSourceAndLine) {
  absl::StatusOr<YAML::Node> node = ParseYamlDocument("a: 1\nb: [1, 2\nc: 3\n", "x.yaml");
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(node.status()), StartsWith("x.yaml:3: not valid YAML"));
}

// Found by tests/fuzz/agent_config_fuzz.cc: yaml-cpp 0.7 alone loops forever on these, its
// memory growing; without the check this test never ends.
TEST(ParseYamlDocumentTest, StrayCommaAtTopLevelIsAnErrorNotAHang) {
  for (const char* text : {",\n", ", # comment\n", "\"a\",\n", "[a],\n", "{a: 1},\n", " ,\n"}) {
    absl::StatusOr<YAML::Node> node = ParseYamlDocument(text, "x.yaml");
    ASSERT_FALSE(node.ok()) << text;
    EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(Message(node.status()), StartsWith("x.yaml: not valid YAML")) << text;
  }
  // A comma inside a plain scalar or a flow collection is fine.
  for (const char* text : {"a: x,y\n", "a: [1, 2]\n", "a: {b: 1, c: 2}\n", "a: 1,\n"}) {
    EXPECT_TRUE(ParseYamlDocument(text, "x.yaml").ok()) << text;
  }
}

// Many events per byte (empty flow collections, implicit nulls) stay within the budget.
TEST(ParseYamlDocumentTest, DenseValidDocumentsParse) {
  std::string nested;
  for (int i = 0; i < 200; ++i) nested += "[";
  for (int i = 0; i < 200; ++i) nested += "]";
  std::string empties = "a: [";
  for (int i = 0; i < 500; ++i) empties += "[], {}, ";
  empties += "[]]\n";
  std::string nulls;
  for (int i = 0; i < 500; ++i) nulls += "-\n";
  for (const std::string& text : {nested, empties, nulls, std::string("? \n? \n")}) {
    EXPECT_TRUE(ParseYamlDocument(text, "x.yaml").ok()) << text.substr(0, 40);
  }
}

TEST(ParseYamlDocumentTest, EmptyDocumentIsNull) {
  absl::StatusOr<YAML::Node> node = ParseYamlDocument("", "x.yaml");
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(node->IsNull());
  YamlCursor cursor(*node, "x.yaml");
  EXPECT_TRUE(cursor.ExpectMapWithKeys({"a"}).ok());
}

TEST(ParseYamlDocumentTest, SecondDocumentIsAnError) {
  absl::StatusOr<YAML::Node> node = ParseYamlDocument("a: 1\n---\nb: 2\n", "x.yaml");
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(Message(node.status()), StartsWith("x.yaml:3: only one YAML document"));
}

TEST(YamlCursorTest, UnknownKeyNamesPathAndLine) {
  YamlCursor root = Load("a:\n  b: 1\n  c: 2\n");
  ASSERT_TRUE(root.ExpectMapWithKeys({"a"}).ok());
  absl::Status status = root.Child("a").ExpectMapWithKeys({"b"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("test.yaml:3: a.c: unknown key (allowed here: b)"));
}

TEST(YamlCursorTest, DuplicateKeyIsAnError) {
  absl::Status status = Load("a: 1\nb: 2\na: 3\n").ExpectMapWithKeys({"a", "b"});
  EXPECT_THAT(Message(status), StartsWith("test.yaml:3: a: duplicate key"));
}

TEST(YamlCursorTest, ListWhereMapExpected) {
  YamlCursor root = Load("a:\n  - 1\n");
  absl::Status status = root.Child("a").ExpectMapWithKeys({"b"});
  EXPECT_THAT(Message(status), StartsWith("test.yaml:2: a: expected a mapping"));
}

TEST(YamlCursorTest, NonScalarKeyIsAnError) {
  absl::Status status = Load("? [1, 2]\n: x\n").ExpectMapWithKeys({"a"});
  EXPECT_THAT(Message(status), HasSubstr("keys must be plain strings"));
}

TEST(YamlCursorTest, ChildrenAndElementsCarryPaths) {
  YamlCursor root = Load("a:\n  list:\n    - x\n    - y\n");
  std::vector<YamlCursor> elements = root.Child("a").Child("list").Elements();
  ASSERT_EQ(elements.size(), 2u);
  EXPECT_EQ(elements[1].path(), "a.list[1]");
  EXPECT_EQ(elements[1].line(), 4);
  EXPECT_THAT(Message(elements[1].Error("bad")), StartsWith("test.yaml:4: a.list[1]: bad"));
  EXPECT_FALSE(root.Has("b"));
  EXPECT_TRUE(root.Child("b").IsNull());
  EXPECT_EQ(root.Child("b").line(), 0);
}

TEST(YamlCursorTest, EntriesInDocumentOrder) {
  YamlCursor root = Load("labels:\n  z: 1\n  a: two\n");
  auto entries = root.Child("labels").Entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, "z");
  EXPECT_EQ(entries[1].first, "a");
  EXPECT_EQ(*entries[1].second.AsString(), "two");
  EXPECT_EQ(entries[1].second.path(), "labels.a");
}

TEST(YamlCursorTest, Scalars) {
  YamlCursor root = Load("s: hi\nb: yes\nn: 42\nf: 2.5\nl: [a, b]\nm: {x: 1}\nz:\n");
  EXPECT_EQ(*root.Child("s").AsString(), "hi");
  EXPECT_TRUE(*root.Child("b").AsBool());
  EXPECT_EQ(*root.Child("n").AsInt(0, 100), 42);
  EXPECT_DOUBLE_EQ(*root.Child("f").AsDouble(), 2.5);
  EXPECT_EQ(*root.Child("l").AsStringList(), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(root.Child("m").AsString().ok());
  EXPECT_FALSE(root.Child("z").AsString().ok());
  EXPECT_THAT(Message(root.Child("s").AsBool().status()),
              StartsWith("test.yaml:1: s: expected true or false"));
  EXPECT_THAT(Message(root.Child("n").AsInt(0, 10).status()),
              HasSubstr("must be between 0 and 10, got 42"));
  EXPECT_FALSE(root.Child("f").AsInt(0, 10).ok());
  EXPECT_THAT(Message(root.Child("m").AsStringList().status()),
              HasSubstr("expected a list of strings"));
}

TEST(YamlCursorTest, OptionalLeavesAbsentKeysAlone) {
  YamlCursor root = Load("n: 7\n");
  int64_t n = 1, absent = 5;
  ASSERT_TRUE(root.Optional("n", &n, 0, 10).ok());
  ASSERT_TRUE(root.Optional("m", &absent, 0, 10).ok());
  EXPECT_EQ(n, 7);
  EXPECT_EQ(absent, 5);
  absl::Duration d = absl::Seconds(3);
  ASSERT_TRUE(root.Optional("d", &d).ok());
  EXPECT_EQ(d, absl::Seconds(3));
}

TEST(YamlCursorDurationTest, GoStyleAndDays) {
  EXPECT_EQ(*Duration("30s"), absl::Seconds(30));
  EXPECT_EQ(*Duration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*Duration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*Duration("2d"), absl::Hours(48));
  EXPECT_EQ(*Duration("2d12h"), absl::Hours(60));
  EXPECT_EQ(*Duration("0"), absl::ZeroDuration());
  EXPECT_EQ(*Duration("0d"), absl::ZeroDuration());
  EXPECT_EQ(*Duration(" 10m "), absl::Minutes(10));
}

TEST(YamlCursorDurationTest, Rejects) {
  for (const char* bad : {"", "5", "ten minutes", "-5s", "-1d", "1d-5h", "d", "1.5d", "inf",
                          "1dinf", "99999999999999999d"}) {
    absl::StatusOr<absl::Duration> d = Duration(bad);
    EXPECT_FALSE(d.ok()) << "\"" << bad << "\" gave " << d.value();
    if (!d.ok()) {
      EXPECT_THAT(Message(d.status()), StartsWith("test.yaml:1: d: ")) << bad;
    }
  }
}

TEST(YamlCursorDurationTest, UnquotedNumberIsNotADuration) {
  absl::StatusOr<absl::Duration> d = Load("d: 30\n").Child("d").AsDuration();
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(Message(d.status()), HasSubstr("not a duration: \"30\""));
}

}  // namespace
}  // namespace tended
