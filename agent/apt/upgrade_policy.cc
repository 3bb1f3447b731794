#include "agent/apt/upgrade_policy.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/node_file.h"
#include "common/status_macros.h"
#include "re2/re2.h"

namespace tended::agent::apt {
namespace {

bool IsIdentifierChar(char c, bool first) {
  return c == '_' || std::isalpha(static_cast<unsigned char>(c)) ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Splits on commas not preceded by a backslash; "\," becomes ",".
std::vector<std::string> SplitUnescapedCommas(absl::string_view text) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == ',') {
      parts.back().push_back(',');
      ++i;
    } else if (text[i] == ',') {
      parts.emplace_back();
    } else {
      parts.back().push_back(text[i]);
    }
  }
  return parts;
}

std::string Unquote(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  return std::string(value);
}

}  // namespace

std::string FormatOrigin(const OriginFields& f) {
  std::vector<std::string> parts;
  auto add = [&](absl::string_view key, const std::string& value) {
    if (value.empty()) return;
    std::string escaped = absl::StrJoin(absl::StrSplit(value, ','), "\\,");
    parts.push_back(absl::StrCat(key, "=", escaped));
  };
  add("o", f.origin);
  add("a", f.archive);
  add("n", f.codename);
  add("l", f.label);
  add("c", f.component);
  add("site", f.site);
  return absl::StrJoin(parts, ",");
}

absl::StatusOr<DistroInfo> ParseOsRelease(absl::string_view contents) {
  std::string id, codename, ubuntu_codename, version;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string value = Unquote(kv.second);
    if (kv.first == "ID") id = value;
    if (kv.first == "VERSION_CODENAME") codename = value;
    if (kv.first == "UBUNTU_CODENAME") ubuntu_codename = value;
    if (kv.first == "VERSION") version = value;
  }
  if (id.empty()) return absl::InvalidArgumentError("os-release has no ID");
  if (codename.empty()) codename = ubuntu_codename;
  if (codename.empty()) {
    // VERSION="12 (bookworm)"
    size_t open = version.find('('), close = version.find(')');
    if (open != std::string::npos && close != std::string::npos && close > open) {
      codename = version.substr(open + 1, close - open - 1);
    }
  }
  DistroInfo info;
  info.id = id;
  info.id[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(info.id[0])));
  info.codename = codename;
  return info;
}

absl::StatusOr<DistroInfo> ReadDistroInfo(const RootPath& root) {
  // os-release is a few hundred bytes; a larger one is an error.
  constexpr size_t kOsReleaseMaxBytes = 64 * 1024;
  for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
    absl::StatusOr<std::string> contents = ReadNodeFile(root, path, kOsReleaseMaxBytes);
    if (absl::IsNotFound(contents.status())) continue;
    if (!contents.ok()) return contents.status();
    absl::StatusOr<DistroInfo> info = ParseOsRelease(*contents);
    if (!info.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(root.Resolve(path), ": ", info.status().message()));
    }
    return info;
  }
  return absl::NotFoundError(absl::StrCat("no os-release under ", root.Resolve("/")));
}

absl::StatusOr<std::string> SubstituteDistroMacros(absl::string_view text,
                                                   const DistroInfo& distro) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    std::string name;
    size_t end = i + 1;
    if (end < text.size() && text[end] == '{') {
      size_t close = text.find('}', end);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unterminated ${ in \"", text, "\""));
      }
      name = std::string(text.substr(end + 1, close - end - 1));
      end = close + 1;
    } else {
      while (end < text.size() && IsIdentifierChar(text[end], end == i + 1)) ++end;
      name = std::string(text.substr(i + 1, end - i - 1));
    }
    if (name == "distro_id") {
      out += distro.id;
    } else if (name == "distro_codename") {
      if (distro.codename.empty()) {
        return absl::FailedPreconditionError(
            "${distro_codename} used but os-release names no codename");
      }
      out += distro.codename;
    } else if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid placeholder \"$\" in \"", text, "\" (write $$ for a $)"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown macro ${", name, "} in \"", text, "\""));
    }
    i = end - 1;
  }
  return out;
}

absl::StatusOr<std::string> LegacyAllowedOriginToPattern(absl::string_view entry,
                                                         const DistroInfo& distro) {
  std::vector<std::string> parts(1);
  bool has_colon = false;
  for (size_t i = 0; i < entry.size(); ++i) {
    if (entry[i] == ':' && (i == 0 || entry[i - 1] != '\\')) {
      parts.emplace_back();
      has_colon = true;
    } else {
      parts.back().push_back(entry[i]);
    }
  }
  if (!has_colon) {
    parts = absl::StrSplit(entry, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  }
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Allowed-Origins entry \"", entry, "\" is not \"origin:archive\" or \"origin archive\""));
  }
  std::string origin = absl::StrReplaceAll(parts[0], {{"\\:", ":"}});
  std::string archive = parts[1];
  auto escape_commas = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == ',' && (i == 0 || s[i - 1] != '\\')) out.push_back('\\');
      out.push_back(s[i]);
    }
    return out;
  };
  ASSIGN_OR_RETURN(std::string o, SubstituteDistroMacros(escape_commas(origin), distro));
  ASSIGN_OR_RETURN(std::string a, SubstituteDistroMacros(escape_commas(archive), distro));
  // Either would change the pattern's terms ("=" splits a term, a final "\" escapes the
  // comma after it): the entry could never match as written.
  for (const std::string* part : {&o, &a}) {
    if (absl::StrContains(*part, '=') || absl::EndsWith(*part, "\\")) {
      return absl::InvalidArgumentError(
          absl::StrCat("Allowed-Origins entry \"", entry,
                       "\": an origin or archive cannot hold '=' or end in '\\'"));
    }
  }
  return absl::StrCat("o=", o, ",a=", a);
}

absl::StatusOr<OriginPattern> OriginPattern::Parse(absl::string_view text) {
  OriginPattern pattern;
  pattern.text_ = std::string(text);
  absl::string_view stripped = absl::StripAsciiWhitespace(text);
  if (stripped.empty()) return pattern;  // Matches nothing.
  for (const std::string& token : SplitUnescapedCommas(stripped)) {
    std::vector<std::string> kv = absl::StrSplit(token, '=');
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("origin pattern \"", text, "\": term \"", token, "\" is not key=value"));
    }
    std::string key(absl::StripAsciiWhitespace(kv[0]));
    Term term;
    term.glob = std::string(absl::StripAsciiWhitespace(kv[1]));
    if (key == "o" || key == "origin") {
      term.key = Key::kOrigin;
    } else if (key == "l" || key == "label") {
      term.key = Key::kLabel;
    } else if (key == "a" || key == "suite" || key == "archive") {
      term.key = Key::kArchive;
    } else if (key == "c" || key == "component") {
      term.key = Key::kComponent;
    } else if (key == "n" || key == "codename") {
      term.key = Key::kCodename;
    } else if (key == "site") {
      term.key = Key::kSite;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("origin pattern \"", text, "\": unknown key \"", key, "\""));
    }
    pattern.terms_.push_back(std::move(term));
  }
  return pattern;
}

bool OriginPattern::Matches(const OriginFields& f) const {
  if (terms_.empty()) return false;
  for (const Term& term : terms_) {
    const std::string* value = nullptr;
    switch (term.key) {
      case Key::kOrigin:
        value = &f.origin;
        break;
      case Key::kLabel:
        value = &f.label;
        break;
      case Key::kArchive:
        value = &f.archive;
        break;
      case Key::kCodename:
        value = &f.codename;
        break;
      case Key::kComponent:
        value = &f.component;
        break;
      case Key::kSite:
        value = &f.site;
        break;
    }
    // Python's fnmatch: *, ?, [...], [!...]; a backslash is an ordinary character.
    if (fnmatch(term.glob.c_str(), value->c_str(), FNM_NOESCAPE) != 0) return false;
  }
  return true;
}

absl::StatusOr<NameRegex> NameRegex::Parse(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_shared<const RE2>(pattern, options);
  if (!regex->ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not a regular expression RE2 accepts: \"",
                                                   pattern, "\": ", regex->error(),
                                                   " (RE2 has no backreferences or lookaround)"));
  }
  NameRegex re;
  re.pattern_ = pattern;
  re.regex_ = std::move(regex);
  return re;
}

bool NameRegex::Matches(const std::string& name) const {
  return regex_ != nullptr &&
         regex_->Match(name, 0, name.size(), RE2::ANCHOR_START, /*submatch=*/nullptr, 0);
}

absl::StatusOr<AptPolicyOverrides> ParseAptPolicyYaml(const YamlCursor& cursor) {
  AptPolicyOverrides out;
  RETURN_IF_ERROR(
      cursor.ExpectMapWithKeys({"allowed_origins", "origins_pattern", "blacklist", "whitelist",
                                "whitelist_strict", "holds", "replace_apt_config"}));
  RETURN_IF_ERROR(cursor.Optional("allowed_origins", &out.allowed_origins));
  RETURN_IF_ERROR(cursor.Optional("origins_pattern", &out.origins_pattern));
  RETURN_IF_ERROR(cursor.Optional("blacklist", &out.blacklist));
  RETURN_IF_ERROR(cursor.Optional("whitelist", &out.whitelist));
  RETURN_IF_ERROR(cursor.Optional("holds", &out.holds));
  RETURN_IF_ERROR(cursor.Optional("replace_apt_config", &out.replace_apt_config));
  if (cursor.Has("whitelist_strict")) {
    ASSIGN_OR_RETURN(bool strict, cursor.Child("whitelist_strict").AsBool());
    out.whitelist_strict = strict;
  }
  // Validate what can be validated without the distro: regexes and pattern keys.
  for (const auto& [key, list] :
       {std::pair{"blacklist", &out.blacklist}, std::pair{"whitelist", &out.whitelist}}) {
    std::vector<YamlCursor> elements = cursor.Child(key).Elements();
    for (size_t i = 0; i < list->size(); ++i) {
      if (absl::StatusOr<NameRegex> re = NameRegex::Parse((*list)[i]); !re.ok()) {
        return (i < elements.size() ? elements[i] : cursor.Child(key)).Error(re.status().message());
      }
    }
  }
  DistroInfo placeholder{"Distro", "codename"};
  std::vector<YamlCursor> patterns = cursor.Child("origins_pattern").Elements();
  for (size_t i = 0; i < out.origins_pattern.size(); ++i) {
    absl::StatusOr<std::string> expanded =
        SubstituteDistroMacros(out.origins_pattern[i], placeholder);
    absl::Status status = expanded.status();
    if (status.ok()) status = OriginPattern::Parse(*expanded).status();
    if (!status.ok()) return patterns[i].Error(status.message());
  }
  std::vector<YamlCursor> legacy = cursor.Child("allowed_origins").Elements();
  for (size_t i = 0; i < out.allowed_origins.size(); ++i) {
    absl::Status status =
        LegacyAllowedOriginToPattern(out.allowed_origins[i], placeholder).status();
    if (!status.ok()) return legacy[i].Error(status.message());
  }
  std::vector<YamlCursor> holds = cursor.Child("holds").Elements();
  for (size_t i = 0; i < out.holds.size(); ++i) {
    const std::string& name = out.holds[i];
    bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::islower(static_cast<unsigned char>(c)) ||
             std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-' ||
             c == ':';
    });
    if (!valid) return holds[i].Error(absl::StrCat("\"", name, "\" is not a package name"));
  }
  return out;
}

absl::StatusOr<UpgradePolicy> UpgradePolicy::Create(const AptConfigPolicy& apt,
                                                    const AptPolicyOverrides& overrides,
                                                    const DistroInfo& distro) {
  UpgradePolicy policy;
  const bool replace = overrides.replace_apt_config;
  auto merged = [&](const std::vector<std::string>& from_apt,
                    const std::vector<std::string>& from_yaml) {
    std::vector<std::string> out;
    if (!replace) out = from_apt;
    out.insert(out.end(), from_yaml.begin(), from_yaml.end());
    return out;
  };
  for (const std::string& entry : merged(apt.allowed_origins, overrides.allowed_origins)) {
    ASSIGN_OR_RETURN(std::string text, LegacyAllowedOriginToPattern(entry, distro));
    ASSIGN_OR_RETURN(OriginPattern pattern, OriginPattern::Parse(text));
    policy.patterns_.push_back(std::move(pattern));
  }
  for (const std::string& entry : merged(apt.origins_pattern, overrides.origins_pattern)) {
    ASSIGN_OR_RETURN(std::string text, SubstituteDistroMacros(entry, distro));
    ASSIGN_OR_RETURN(OriginPattern pattern, OriginPattern::Parse(text));
    policy.patterns_.push_back(std::move(pattern));
  }
  for (const std::string& re : merged(apt.blacklist, overrides.blacklist)) {
    ASSIGN_OR_RETURN(NameRegex regex, NameRegex::Parse(re));
    policy.blacklist_.push_back(std::move(regex));
  }
  for (const std::string& re : merged(apt.whitelist, overrides.whitelist)) {
    ASSIGN_OR_RETURN(NameRegex regex, NameRegex::Parse(re));
    policy.whitelist_.push_back(std::move(regex));
  }
  policy.whitelist_strict_ =
      overrides.whitelist_strict.value_or(replace ? false : apt.whitelist_strict);
  policy.ignore_apps_require_restart_ = apt.ignore_apps_require_restart;
  policy.holds_ = overrides.holds;
  return policy;
}

bool UpgradePolicy::OriginAllowed(const OriginFields& f) const {
  if (f.component == "now" && f.archive == "now" && f.label.empty() && f.site.empty()) {
    return true;
  }
  for (const OriginPattern& pattern : patterns_) {
    if (pattern.Matches(f)) return true;
  }
  return false;
}

std::optional<std::string> UpgradePolicy::BlacklistMatch(const std::string& name) const {
  for (const NameRegex& re : blacklist_) {
    if (re.Matches(name)) return re.pattern();
  }
  return std::nullopt;
}

bool UpgradePolicy::Whitelisted(const std::string& name) const {
  if (whitelist_.empty()) return true;
  for (const NameRegex& re : whitelist_) {
    if (re.Matches(name)) return true;
  }
  return false;
}

bool UpgradePolicy::ConfiguredHold(const std::string& name) const {
  return std::find(holds_.begin(), holds_.end(), name) != holds_.end();
}

}  // namespace tended::agent::apt
