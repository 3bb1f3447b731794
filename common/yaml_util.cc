#include "common/yaml_util.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tended {
namespace {

std::string JoinPath(const std::string& parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

// yaml-cpp 0.7 (Debian 12's) never finishes a document with a ',' outside brackets at its
// top level (",", "[a],", "\"a\","): it emits the same events forever while its node
// builder eats memory. A valid document has at most a few events per byte, so a first pass
// that only counts them, and stops the parser past that bound, tells the two apart.
class EventBudget final : public YAML::EventHandler {
 public:
  explicit EventBudget(size_t bytes) : left_(4 * bytes + 64) {}
  struct Exhausted {};

  void OnDocumentStart(const YAML::Mark&) override { Spend(); }
  void OnDocumentEnd() override { Spend(); }
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { Spend(); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { Spend(); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Spend();
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Spend();
  }
  void OnSequenceEnd() override { Spend(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Spend();
  }
  void OnMapEnd() override { Spend(); }

 private:
  void Spend() {
    if (left_ == 0) throw Exhausted{};
    --left_;
  }
  size_t left_;
};

// False when the parser runs past the budget; its syntax errors are left to LoadAll.
bool ParserFinishes(const std::string& contents) {
  std::istringstream stream(contents);
  EventBudget budget(contents.size());
  try {
    YAML::Parser parser(stream);
    while (parser.HandleNextDocument(budget)) {
    }
  } catch (const EventBudget::Exhausted&) {
    return false;
  } catch (const YAML::Exception&) {
  }
  return true;
}

}  // namespace

absl::StatusOr<YAML::Node> ParseYamlDocument(absl::string_view contents, absl::string_view source) {
  std::string text(contents);
  if (!ParserFinishes(text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": not valid YAML: the parser does not finish (a ',' outside [ ] or { }?)"));
  }
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.empty()) return YAML::Node(YAML::NodeType::Null);
    if (documents.size() > 1) {
      int line = documents[1].Mark().line;
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line < 0 ? 0 : line + 1,
                                                     ": only one YAML document is allowed"));
    }
    return documents[0];
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
}

YamlCursor::YamlCursor(YAML::Node node, std::string source, std::string path)
    : node_(std::move(node)), source_(std::move(source)), path_(std::move(path)) {}

int YamlCursor::line() const {
  if (!node_.IsDefined()) return 0;
  int line = node_.Mark().line;
  return line < 0 ? 0 : line + 1;
}

absl::Status YamlCursor::Error(absl::string_view message) const {
  std::string where = line() > 0 ? absl::StrCat(source_, ":", line()) : source_;
  if (path_.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", message));
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", path_, ": ", message));
}

absl::Status YamlCursor::ExpectMapWithKeys(std::initializer_list<absl::string_view> allowed) const {
  if (IsNull()) return absl::OkStatus();
  if (!node_.IsMap()) return Error("expected a mapping of keys to values");
  std::vector<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) {
      return YamlCursor(it->first, source_, path_).Error("keys must be plain strings");
    }
    std::string key = it->first.Scalar();
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return YamlCursor(it->first, source_, JoinPath(path_, key)).Error("duplicate key");
    }
    seen.push_back(key);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return YamlCursor(it->first, source_, JoinPath(path_, key))
          .Error(absl::StrCat("unknown key (allowed here: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

bool YamlCursor::Has(absl::string_view key) const {
  return node_.IsMap() && node_[std::string(key)].IsDefined();
}

YamlCursor YamlCursor::Child(absl::string_view key) const {
  std::string child_path = JoinPath(path_, key);
  if (node_.IsMap()) {
    // Copy-construct: yaml-cpp's const operator[] returns an invalid ("zombie") node for a
    // missing key, and assigning one to another node throws YAML::InvalidNode.
    YAML::Node child = node_[std::string(key)];
    if (child.IsDefined()) return YamlCursor(child, source_, std::move(child_path));
  }
  return YamlCursor(YAML::Node(YAML::NodeType::Undefined), source_, std::move(child_path));
}

std::vector<YamlCursor> YamlCursor::Elements() const {
  std::vector<YamlCursor> result;
  if (!node_.IsSequence()) return result;
  for (size_t i = 0; i < node_.size(); ++i) {
    result.emplace_back(node_[i], source_, absl::StrCat(path_, "[", i, "]"));
  }
  return result;
}

std::vector<std::pair<std::string, YamlCursor>> YamlCursor::Entries() const {
  std::vector<std::pair<std::string, YamlCursor>> result;
  if (!node_.IsMap()) return result;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    result.emplace_back(key, YamlCursor(it->second, source_, JoinPath(path_, key)));
  }
  return result;
}

absl::StatusOr<std::string> YamlCursor::AsString() const {
  if (!node_.IsDefined() || !node_.IsScalar()) return Error("expected a string");
  return node_.Scalar();
}

absl::StatusOr<bool> YamlCursor::AsBool() const {
  ASSIGN_OR_RETURN(std::string text, AsString());
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return Error(absl::StrCat("expected true or false, got \"", text, "\""));
}

absl::StatusOr<int64_t> YamlCursor::AsInt(int64_t min, int64_t max) const {
  ASSIGN_OR_RETURN(std::string text, AsString());
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return Error(absl::StrCat("expected a whole number, got \"", text, "\""));
  }
  if (value < min || value > max) {
    return Error(absl::StrCat("must be between ", min, " and ", max, ", got ", value));
  }
  return value;
}

absl::StatusOr<double> YamlCursor::AsDouble() const {
  ASSIGN_OR_RETURN(std::string text, AsString());
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
    return Error(absl::StrCat("expected a number, got \"", text, "\""));
  }
  return value;
}

absl::StatusOr<absl::Duration> YamlCursor::AsDuration() const {
  ASSIGN_OR_RETURN(std::string text, AsString());
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  absl::Duration days = absl::ZeroDuration();
  // absl::ParseDuration knows h/m/s/ms/us/ns; accept a leading whole-day part too ("2d12h").
  size_t d = rest.find('d');
  if (d != absl::string_view::npos) {
    int64_t count = 0;
    if (!absl::SimpleAtoi(rest.substr(0, d), &count) || count < 0) {
      return Error(absl::StrCat("not a duration: \"", text, "\" (use e.g. 30s, 10m, 24h, 2d)"));
    }
    // absl::Hours saturates instead of overflowing; the finite check below rejects that.
    days = absl::Hours(count) * 24;
    rest = rest.substr(d + 1);
  }
  absl::Duration value = absl::ZeroDuration();
  bool days_only = rest.empty() && d != absl::string_view::npos;
  if (!days_only && rest != "0" && (rest.empty() || !absl::ParseDuration(rest, &value))) {
    return Error(absl::StrCat("not a duration: \"", text, "\" (use e.g. 30s, 10m, 24h, 2d)"));
  }
  if (value < absl::ZeroDuration()) return Error("a duration cannot be negative");
  absl::Duration total = days + value;
  // absl::ParseDuration accepts "inf"; no setting of ours means "forever" that way.
  if (total == absl::InfiniteDuration()) {
    return Error(absl::StrCat("duration \"", text, "\" is not finite or too large"));
  }
  return total;
}

absl::StatusOr<std::vector<std::string>> YamlCursor::AsStringList() const {
  if (IsNull()) return std::vector<std::string>{};
  if (!node_.IsSequence()) return Error("expected a list of strings");
  std::vector<std::string> result;
  for (const YamlCursor& element : Elements()) {
    ASSIGN_OR_RETURN(std::string value, element.AsString());
    result.push_back(std::move(value));
  }
  return result;
}

absl::Status YamlCursor::Optional(absl::string_view key, std::string* out) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsString());
  return absl::OkStatus();
}

absl::Status YamlCursor::Optional(absl::string_view key, bool* out) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsBool());
  return absl::OkStatus();
}

absl::Status YamlCursor::Optional(absl::string_view key, absl::Duration* out) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsDuration());
  return absl::OkStatus();
}

absl::Status YamlCursor::Optional(absl::string_view key, int64_t* out, int64_t min,
                                  int64_t max) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsInt(min, max));
  return absl::OkStatus();
}

absl::Status YamlCursor::Optional(absl::string_view key, double* out) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsDouble());
  return absl::OkStatus();
}

absl::Status YamlCursor::Optional(absl::string_view key, std::vector<std::string>* out) const {
  if (!Has(key)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, Child(key).AsStringList());
  return absl::OkStatus();
}

}  // namespace tended
