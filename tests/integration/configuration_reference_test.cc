// docs/configuration.md against the parsers: every key its tables document is accepted by
// ParseCoordinatorConfig or ParseAgentConfig (a document setting only that key draws no
// "unknown key" error), and every key the parsers accept (the literal lists given to
// YamlCursor::ExpectMapWithKeys in their sources) is documented under the right parent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/config.h"
#include "common/file_util.h"
#include "coordinator/config/config.h"

namespace tended {
namespace {

constexpr char kDoc[] = TENDED_SOURCE_DIR "/docs/configuration.md";

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

// Dotted key paths per program ("coordinator", "agent"). Lease policy keys are under
// leases.reboot (the same policy for every kind), window keys under leases.reboot.windows.
using DocumentedKeys = std::map<std::string, std::set<std::string>>;

DocumentedKeys ParseReference(absl::string_view markdown) {
  DocumentedKeys keys;
  std::string program;
  std::string section;
  bool in_table = false;
  static const std::regex kCode("`([a-z_][a-z0-9_.]*)`");
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    if (absl::StartsWith(line, "## ")) {
      program = line == "## Coordinator" ? "coordinator" : line == "## Agent" ? "agent" : "";
      section.clear();
      continue;
    }
    if (absl::StartsWith(line, "### ")) {
      std::string heading(absl::StripPrefix(line, "### "));
      section = std::string(absl::StripSuffix(absl::StripPrefix(heading, "`"), "`"));
      if (section == "leases") section = "leases.reboot";
      if (!program.empty()) keys[program].insert(section.substr(0, section.find('.')));
      continue;
    }
    if (absl::StartsWith(line, "Each window:") && section == "leases.reboot") {
      section = "leases.reboot.windows";
      continue;
    }
    if (absl::StartsWith(line, "| Key |")) {
      in_table = true;
      continue;
    }
    if (!absl::StartsWith(line, "|")) {
      in_table = false;
      continue;
    }
    if (!in_table || program.empty() || absl::StartsWith(line, "|---")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    if (cells.size() < 2) continue;
    const std::string& first = cells[1];
    for (auto it = std::sregex_iterator(first.begin(), first.end(), kCode);
         it != std::sregex_iterator(); ++it) {
      std::string key = (*it)[1];
      keys[program].insert(section.empty() ? key : absl::StrCat(section, ".", key));
    }
  }
  return keys;
}

// The path and all its prefixes.
std::set<std::string> WithPrefixes(const std::set<std::string>& paths) {
  std::set<std::string> out;
  for (const std::string& path : paths) {
    for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
      out.insert(path.substr(0, dot));
    }
    out.insert(path);
  }
  return out;
}

// The string lists given literally to ExpectMapWithKeys({...}) in a source file.
std::vector<std::vector<std::string>> AcceptedKeyLists(const std::string& source) {
  std::vector<std::vector<std::string>> lists;
  static const std::regex kString("\"([^\"]*)\"");
  for (size_t at = source.find("ExpectMapWithKeys("); at != std::string::npos;
       at = source.find("ExpectMapWithKeys(", at + 1)) {
    size_t open = source.find('{', at);
    size_t close = source.find('}', open);
    if (open == std::string::npos || close == std::string::npos) break;
    std::string body = source.substr(open, close - open);
    std::vector<std::string> list;
    for (auto it = std::sregex_iterator(body.begin(), body.end(), kString);
         it != std::sregex_iterator(); ++it) {
      list.push_back((*it)[1]);
    }
    lists.push_back(list);
  }
  return lists;
}

// A YAML document that sets only `path` (to "1"); a `windows` level is a list.
std::string DocumentSetting(const std::string& path) {
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  std::string yaml = "1";
  for (size_t i = parts.size(); i-- > 0;) {
    yaml = absl::StrCat("{", parts[i], ": ", yaml, "}");
    if (i > 0 && parts[i - 1] == "windows") yaml = absl::StrCat("[", yaml, "]");
  }
  return yaml;
}

absl::Status ParseFor(const std::string& program, const std::string& yaml) {
  if (program == "coordinator") {
    return coordinator::ParseCoordinatorConfig(yaml, "probe.yaml").status();
  }
  return agent::ParseAgentConfig(yaml, "probe.yaml").status();
}

bool UnknownKey(const absl::Status& status) {
  return absl::StrContains(status.message(), "unknown key");
}

class ConfigurationReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    markdown_ = Read(kDoc);
    documented_ = ParseReference(markdown_);
    ASSERT_GE(documented_["coordinator"].size(), 60u);
    ASSERT_GE(documented_["agent"].size(), 30u);
  }
  std::string markdown_;
  DocumentedKeys documented_;
};

TEST_F(ConfigurationReferenceTest, EveryDocumentedKeyIsAccepted) {
  for (const auto& [program, keys] : documented_) {
    for (const std::string& key : WithPrefixes(keys)) {
      absl::Status status = ParseFor(program, DocumentSetting(key));
      EXPECT_FALSE(UnknownKey(status)) << program << ": " << key << ": " << status;
    }
  }
}

TEST_F(ConfigurationReferenceTest, TheProbeSeesAnUnknownKey) {
  EXPECT_TRUE(UnknownKey(ParseFor("coordinator", DocumentSetting("fleet.report_dedline"))));
  EXPECT_TRUE(UnknownKey(ParseFor("coordinator", DocumentSetting("leases.reboot.windows.day"))));
  EXPECT_TRUE(UnknownKey(ParseFor("agent", DocumentSetting("k8s.etcd.endpoints"))));
  EXPECT_EQ(DocumentSetting("leases.reboot.windows.days"),
            "{leases: {reboot: {windows: [{days: 1}]}}}");
}

TEST_F(ConfigurationReferenceTest, EveryAcceptedKeyIsDocumented) {
  const std::map<std::string, std::vector<std::string>> sources = {
      {"coordinator",
       {"/coordinator/config/config.cc", "/coordinator/config/kubernetes_config.cc",
        "/coordinator/config/notifications_config.cc"}},
      {"agent", {"/agent/config.cc", "/agent/apt/upgrade_policy.cc"}},
  };
  // The lease kinds are documented in the leases paragraph rather than a table.
  ASSERT_THAT(markdown_, ::testing::HasSubstr("Kinds: `reboot`, `os_upgrade`, `k8s_upgrade`"));
  for (const char* kind : {"leases.os_upgrade", "leases.k8s_upgrade"}) {
    documented_["coordinator"].insert(kind);
  }
  int lists = 0;
  for (const auto& [program, files] : sources) {
    std::set<std::string> documented = WithPrefixes(documented_[program]);
    for (const std::string& file : files) {
      for (const std::vector<std::string>& list :
           AcceptedKeyLists(Read(TENDED_SOURCE_DIR + file))) {
        ++lists;
        // The parent the list belongs to: where most of its keys are documented.
        std::map<std::string, int> parents;
        for (const std::string& key : list) {
          for (const std::string& path : documented) {
            if (path == key) ++parents[""];
            if (absl::EndsWith(path, "." + key)) {
              ++parents[path.substr(0, path.size() - key.size() - 1)];
            }
          }
        }
        std::string parent;
        int best = 0;
        for (const auto& [candidate, count] : parents) {
          if (count > best) parent = candidate, best = count;
        }
        for (const std::string& key : list) {
          std::string path = parent.empty() ? key : absl::StrCat(parent, ".", key);
          EXPECT_EQ(documented.count(path), 1u)
              << file << " accepts " << path << " (list: " << absl::StrJoin(list, ", ")
              << "), docs/configuration.md does not document it";
        }
      }
    }
  }
  EXPECT_GE(lists, 12);
}

TEST(ConfigurationReferenceParseTest, SectionsTablesAndWindows) {
  DocumentedKeys keys = ParseReference(
      "## Coordinator\n| Key | Default |\n|---|---|\n| `listen` | x |\n\n### `fleet`\n"
      "| Key | D |\n|---|---|\n| `a`, `b.c` | x |\n### `leases`\n| Key |\n| `soak` |\n"
      "Each window:\n| Key |\n| `days` |\n## Agent\n| Key |\n| `root` | `/` |\n");
  EXPECT_EQ(keys["coordinator"],
            (std::set<std::string>{"listen", "fleet", "fleet.a", "fleet.b.c", "leases",
                                   "leases.reboot.soak", "leases.reboot.windows.days"}));
  EXPECT_EQ(keys["agent"], std::set<std::string>{"root"});
}

}  // namespace
}  // namespace tended
