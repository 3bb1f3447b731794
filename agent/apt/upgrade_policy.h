// Which package upgrades the agent may install on its own: unattended-upgrades' origin
// patterns (Allowed-Origins, Origins-Pattern), package blacklist and whitelist, plus the
// agent's YAML additions. Pure logic, no libapt-pkg, so every rule is unit-testable.
#ifndef TENDED_AGENT_APT_UPGRADE_POLICY_H_
#define TENDED_AGENT_APT_UPGRADE_POLICY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/root_path.h"
#include "common/yaml_util.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace tended::agent::apt {

// The fields of one apt package file (a Release file's index, or dpkg's status file).
struct OriginFields {
  std::string origin;
  std::string label;
  std::string archive;  // Also called suite.
  std::string codename;
  std::string component;
  std::string site;  // Host of the URI; empty for file: sources and the status file.
};

// "o=NodeOS,a=stable,..." with empty fields left out; usable as an Origins-Pattern.
std::string FormatOrigin(const OriginFields& fields);

// Values for ${distro_id} and ${distro_codename}, read like lsb_release does.
struct DistroInfo {
  std::string id;        // "Debian" (ID capitalized, as `lsb_release -i -s` prints it).
  std::string codename;  // "bookworm".
};

// Reads <root>/etc/os-release (falling back to <root>/usr/lib/os-release), as a node file
// (common/node_file.h: inside the root, a regular file, at most 64 KiB).
absl::StatusOr<DistroInfo> ReadDistroInfo(const RootPath& root);
absl::StatusOr<DistroInfo> ParseOsRelease(absl::string_view contents);

// Python string.Template substitution of ${distro_id}/$distro_id and ${distro_codename};
// "$$" is a literal "$". Unknown names and a lone "$" are errors, as in unattended-upgrades.
absl::StatusOr<std::string> SubstituteDistroMacros(absl::string_view text,
                                                   const DistroInfo& distro);

// Converts a legacy Allowed-Origins entry ("Debian:bookworm-security", or the two words
// separated by white space) to the pattern "o=Debian,a=bookworm-security" (macros expanded).
absl::StatusOr<std::string> LegacyAllowedOriginToPattern(absl::string_view entry,
                                                         const DistroInfo& distro);

// One Origins-Pattern entry: comma-separated key=value terms ("\," is a literal comma), all
// of which must match (fnmatch globs, case-sensitive). An empty pattern matches nothing.
class OriginPattern {
 public:
  // `text` has its macros expanded already. An unknown key or a term that is not
  // key=value is INVALID_ARGUMENT.
  static absl::StatusOr<OriginPattern> Parse(absl::string_view text);

  bool Matches(const OriginFields& fields) const;
  const std::string& text() const { return text_; }

 private:
  enum class Key { kOrigin, kLabel, kArchive, kCodename, kComponent, kSite };
  struct Term {
    Key key;
    std::string glob;
  };
  std::string text_;
  std::vector<Term> terms_;
};

// A Python re.match()-style regular expression: anchored at the start only. RE2 syntax,
// so matching takes time linear in the name, whatever the pattern; copies share the
// compiled form.
class NameRegex {
 public:
  // INVALID_ARGUMENT with RE2's words for a pattern it does not accept (RE2 has no
  // backreferences and no lookaround).
  static absl::StatusOr<NameRegex> Parse(const std::string& pattern);
  bool Matches(const std::string& name) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<const re2::RE2> regex_;
};

// The agent's YAML `apt:` section.
struct AptPolicyOverrides {
  std::vector<std::string> allowed_origins;  // Legacy "origin:archive" entries.
  std::vector<std::string> origins_pattern;
  std::vector<std::string> blacklist;
  std::vector<std::string> whitelist;
  std::optional<bool> whitelist_strict;
  // Packages the agent keeps on dpkg hold (kubelet, kubeadm, kubectl).
  std::vector<std::string> holds;
  // true: the lists above replace the apt configuration's instead of adding to it.
  bool replace_apt_config = false;
};

// Keys: allowed_origins, origins_pattern, blacklist, whitelist, whitelist_strict, holds,
// replace_apt_config. Unknown keys, bad regexes and unknown pattern keys are errors.
absl::StatusOr<AptPolicyOverrides> ParseAptPolicyYaml(const YamlCursor& cursor);

// The Unattended-Upgrade::* values as found in the machine's apt configuration.
struct AptConfigPolicy {
  std::vector<std::string> allowed_origins;
  std::vector<std::string> origins_pattern;
  std::vector<std::string> blacklist;
  std::vector<std::string> whitelist;
  bool whitelist_strict = false;
  bool ignore_apps_require_restart = false;
};

class UpgradePolicy {
 public:
  static absl::StatusOr<UpgradePolicy> Create(const AptConfigPolicy& apt,
                                              const AptPolicyOverrides& overrides,
                                              const DistroInfo& distro);

  // dpkg's status file is always allowed; otherwise any pattern must match.
  bool OriginAllowed(const OriginFields& fields) const;
  // The first blacklist regex matching `name`, if any.
  std::optional<std::string> BlacklistMatch(const std::string& name) const;
  bool Blacklisted(const std::string& name) const { return BlacklistMatch(name).has_value(); }
  // True when there is no whitelist. Unlike unattended-upgrades, a non-strict whitelist
  // restricts which packages are upgraded (their dependencies may still come along).
  bool Whitelisted(const std::string& name) const;
  bool has_whitelist() const { return !whitelist_.empty(); }
  bool whitelist_strict() const { return whitelist_strict_; }
  bool ignore_apps_require_restart() const { return ignore_apps_require_restart_; }
  bool ConfiguredHold(const std::string& name) const;
  const std::vector<std::string>& configured_holds() const { return holds_; }
  const std::vector<OriginPattern>& patterns() const { return patterns_; }

 private:
  std::vector<OriginPattern> patterns_;
  std::vector<NameRegex> blacklist_;
  std::vector<NameRegex> whitelist_;
  bool whitelist_strict_ = false;
  bool ignore_apps_require_restart_ = false;
  std::vector<std::string> holds_;
};

}  // namespace tended::agent::apt

#endif  // TENDED_AGENT_APT_UPGRADE_POLICY_H_
