#include "agent/apt/upgrade_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::apt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

const DistroInfo kBookworm{"Debian", "bookworm"};

OriginFields DebianSecurity() {
  return {"Debian", "Debian-Security", "stable-security", "bookworm-security",
          "main",   "deb.debian.org"};
}

OriginPattern MustParse(const std::string& text) {
  absl::StatusOr<OriginPattern> p = OriginPattern::Parse(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : *OriginPattern::Parse("");
}

TEST(OriginPatternTest, KeysAreAndedAndLongNamesWork) {
  EXPECT_TRUE(MustParse("o=Debian,n=bookworm-security").Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("origin=Debian,codename=bookworm-security,label=Debian-Security")
                  .Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("a=stable-security,c=main,site=deb.debian.org").Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("suite=stable-security,component=main").Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("archive=stable-security").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("o=Debian,n=bookworm").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("o=Debian,l=Debian").Matches(DebianSecurity()));
}

TEST(OriginPatternTest, GlobsAreCaseSensitiveFnmatch) {
  EXPECT_TRUE(MustParse("o=Deb*,n=*-security").Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("n=bookworm-?ecurity").Matches(DebianSecurity()));
  EXPECT_TRUE(MustParse("o=[CD]ebian").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("o=[!D]ebian").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("o=debian").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("o=Deb").Matches(DebianSecurity()));  // Whole-value match.
}

TEST(OriginPatternTest, EscapedCommaIsPartOfTheValue) {
  OriginFields f = DebianSecurity();
  f.origin = "Acme, Inc.";
  EXPECT_TRUE(MustParse("o=Acme\\, Inc.").Matches(f));
  EXPECT_FALSE(MustParse("o=Acme").Matches(f));
}

TEST(OriginPatternTest, EmptyPatternMatchesNothing) {
  EXPECT_FALSE(MustParse("").Matches(DebianSecurity()));
  EXPECT_FALSE(MustParse("   ").Matches(DebianSecurity()));
}

TEST(OriginPatternTest, UnknownKeyAndMalformedTermsAreErrors) {
  EXPECT_THAT(OriginPattern::Parse("o=Debian,x=1").status().message(), HasSubstr("unknown key"));
  EXPECT_FALSE(OriginPattern::Parse("Debian").ok());
  EXPECT_FALSE(OriginPattern::Parse("o=Debian,").ok());
  EXPECT_FALSE(OriginPattern::Parse("o=a=b").ok());
}

TEST(OriginPatternTest, EmptyFieldMatchesOnlyEmptyOrStar) {
  OriginFields f = DebianSecurity();
  f.site = "";
  EXPECT_TRUE(MustParse("site=*").Matches(f));
  EXPECT_FALSE(MustParse("site=?*").Matches(f));
}

TEST(MacroTest, SubstitutesLikeStringTemplate) {
  EXPECT_EQ(*SubstituteDistroMacros("o=${distro_id},n=${distro_codename}-security", kBookworm),
            "o=Debian,n=bookworm-security");
  EXPECT_EQ(*SubstituteDistroMacros("o=$distro_id", kBookworm), "o=Debian");
  EXPECT_EQ(*SubstituteDistroMacros("o=a$$b", kBookworm), "o=a$b");
  EXPECT_FALSE(SubstituteDistroMacros("o=${distro_release}", kBookworm).ok());
  EXPECT_FALSE(SubstituteDistroMacros("o=$", kBookworm).ok());
  EXPECT_FALSE(SubstituteDistroMacros("o=${distro_id", kBookworm).ok());
  EXPECT_FALSE(SubstituteDistroMacros("n=${distro_codename}", DistroInfo{"Debian", ""}).ok());
}

TEST(LegacyAllowedOriginTest, ColonAndSpaceForms) {
  EXPECT_EQ(*LegacyAllowedOriginToPattern("${distro_id}:${distro_codename}-security", kBookworm),
            "o=Debian,a=bookworm-security");
  EXPECT_EQ(*LegacyAllowedOriginToPattern("Debian stable", kBookworm), "o=Debian,a=stable");
  EXPECT_EQ(*LegacyAllowedOriginToPattern("Acme\\:Corp:stable", kBookworm), "o=Acme:Corp,a=stable");
  EXPECT_EQ(*LegacyAllowedOriginToPattern("Acme, Inc.:stable", kBookworm),
            "o=Acme\\, Inc.,a=stable");
  EXPECT_FALSE(LegacyAllowedOriginToPattern("a:b:c", kBookworm).ok());
  EXPECT_FALSE(LegacyAllowedOriginToPattern("justone", kBookworm).ok());
}

// Found by tests/fuzz/apt_origin_fuzz.cc: these made patterns OriginPattern::Parse refuses
// (or reads as other terms), so the entry failed far from the configuration that held it.
TEST(LegacyAllowedOriginTest, RefusesWhatWouldBreakThePattern) {
  for (const char* entry :
       {"o=Debian:stable", "Debian:a=stable", "Debian:stable\\", "x\\ stable"}) {
    absl::StatusOr<std::string> pattern = LegacyAllowedOriginToPattern(entry, kBookworm);
    EXPECT_FALSE(pattern.ok()) << entry << " -> " << pattern.value_or("");
  }
}

TEST(LegacyAllowedOriginTest, MatchesTheSuiteNotTheCodename) {
  absl::StatusOr<std::string> text =
      LegacyAllowedOriginToPattern("Debian:bookworm-security", kBookworm);
  ASSERT_TRUE(text.ok());
  EXPECT_FALSE(MustParse(*text).Matches(DebianSecurity()));  // Suite is stable-security.
  EXPECT_TRUE(MustParse("o=Debian,a=stable-security").Matches(DebianSecurity()));
}

TEST(OsReleaseTest, CapitalizesIdAndFindsCodename) {
  absl::StatusOr<DistroInfo> d =
      ParseOsRelease("ID=debian\nVERSION_CODENAME=bookworm\nVERSION=\"12 (bookworm)\"\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, "Debian");
  EXPECT_EQ(d->codename, "bookworm");
  d = ParseOsRelease("ID=\"ubuntu\"\nUBUNTU_CODENAME=jammy\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, "Ubuntu");
  EXPECT_EQ(d->codename, "jammy");
  d = ParseOsRelease("ID=debian\nVERSION=\"11 (bullseye)\"\n");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->codename, "bullseye");
  EXPECT_FALSE(ParseOsRelease("NAME=x\n").ok());
}

TEST(OsReleaseTest, ReadsUnderTheRoot) {
  tended::testing::TempDir dir;
  ASSERT_TRUE(MakeDirectories(dir.Path("usr/lib")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("usr/lib/os-release"),
                                  "ID=linuxmint\nVERSION_CODENAME=virginia\n")
                  .ok());
  absl::StatusOr<DistroInfo> d = ReadDistroInfo(RootPath(dir.path()));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->id, "Linuxmint");
  EXPECT_EQ(d->codename, "virginia");
}

TEST(OsReleaseTest, ReadsTheRootsOwnFileSafely) {
  tended::testing::TempDir dir;
  const std::string root = dir.Path("root");
  ASSERT_TRUE(MakeDirectories(root + "/etc").ok());
  ASSERT_TRUE(MakeDirectories(root + "/usr/lib").ok());
  // Debian's absolute-looking link means the root's file, not the host's.
  ASSERT_TRUE(
      WriteFileAtomically(root + "/usr/lib/os-release", "ID=nodeos\nVERSION_CODENAME=x\n").ok());
  ASSERT_EQ(::symlink("/usr/lib/os-release", (root + "/etc/os-release").c_str()), 0);
  absl::StatusOr<DistroInfo> d = ReadDistroInfo(RootPath(root));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->id, "Nodeos");
  // A FIFO is an error at once, not a hang.
  ASSERT_EQ(::unlink((root + "/etc/os-release").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/etc/os-release").c_str(), 0644), 0);
  EXPECT_THAT(ReadDistroInfo(RootPath(root)).status().message(), HasSubstr("not a regular file"));
}

TEST(NameRegexTest, AnchoredAtStartOnlyLikeReMatch) {
  NameRegex vim = *NameRegex::Parse("vim");
  EXPECT_TRUE(vim.Matches("vim"));
  EXPECT_TRUE(vim.Matches("vim-tiny"));
  EXPECT_FALSE(vim.Matches("gvim"));
  NameRegex exact = *NameRegex::Parse("libc6$");
  EXPECT_TRUE(exact.Matches("libc6"));
  EXPECT_FALSE(exact.Matches("libc6-dev"));
  EXPECT_TRUE(NameRegex::Parse("linux-image-.*").value().Matches("linux-image-6.1.0-18-amd64"));
  EXPECT_FALSE(NameRegex::Parse("(").ok());
}

TEST(NameRegexTest, SyntaxRe2DoesNotSupportIsAnErrorSayingSo) {
  absl::StatusOr<NameRegex> backreference = NameRegex::Parse("(lib)\\1");
  EXPECT_EQ(backreference.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(backreference.status().message(),
              HasSubstr("not a regular expression RE2 accepts: \"(lib)\\1\": invalid escape"));
  EXPECT_THAT(NameRegex::Parse("linux-(?!image)").status().message(),
              HasSubstr("invalid perl operator: (?!"));
  // Copies share the compiled expression and match alike.
  NameRegex original = *NameRegex::Parse("kube");
  NameRegex copy = original;
  EXPECT_TRUE(copy.Matches("kubelet"));
  EXPECT_FALSE(copy.Matches("libkube"));
}

AptConfigPolicy ReferenceConfig() {
  AptConfigPolicy apt;
  apt.origins_pattern = {
      "origin=Debian,codename=${distro_codename},label=Debian",
      "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"};
  apt.blacklist = {"linux-image-", "kube"};
  return apt;
}

TEST(UpgradePolicyTest, ReferenceConfiguration) {
  absl::StatusOr<UpgradePolicy> policy = UpgradePolicy::Create(ReferenceConfig(), {}, kBookworm);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->OriginAllowed(DebianSecurity()));
  OriginFields backports{
      "Debian Backports", "Debian Backports", "bookworm-backports", "bookworm-backports", "main",
      "deb.debian.org"};
  EXPECT_FALSE(policy->OriginAllowed(backports));
  EXPECT_THAT(policy->BlacklistMatch("kubelet"), Optional(std::string("kube")));
  EXPECT_FALSE(policy->Blacklisted("libkube"));
  EXPECT_TRUE(policy->Whitelisted("anything"));
}

// A package name comes from a repository's index. A 50 KB one against blacklist patterns
// with `.*`: std::regex backtracked by recursion, once per character, and overflowed the
// stack.
TEST(UpgradePolicyTest, HugePackageNameIsMatchedWithoutCrashing) {
  AptConfigPolicy apt = ReferenceConfig();
  apt.blacklist.push_back(".*-dbg$");
  apt.blacklist.push_back("lib(.*)+-dev");
  absl::StatusOr<UpgradePolicy> policy = UpgradePolicy::Create(apt, {}, kBookworm);
  ASSERT_TRUE(policy.ok()) << policy.status();
  const std::string huge(50 * 1024, 'x');
  EXPECT_THAT(policy->BlacklistMatch("pkg" + huge + "-dbg"), Optional(std::string(".*-dbg$")));
  EXPECT_TRUE(policy->Blacklisted("lib" + huge + "-dev"));
  EXPECT_FALSE(policy->Blacklisted("pkg" + huge));
  EXPECT_FALSE(policy->Blacklisted("pkg" + huge + "-dbg-extra"));
}

TEST(UpgradePolicyTest, StatusFileIsAlwaysAllowed) {
  absl::StatusOr<UpgradePolicy> policy = UpgradePolicy::Create({}, {}, kBookworm);
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->OriginAllowed(OriginFields{"", "", "now", "", "now", ""}));
  EXPECT_FALSE(policy->OriginAllowed(DebianSecurity()));  // No pattern: nothing allowed.
}

TEST(UpgradePolicyTest, YamlAddsOrReplaces) {
  AptPolicyOverrides add;
  add.origins_pattern = {"o=Kubernetes"};
  add.blacklist = {"etcd"};
  add.holds = {"kubelet"};
  absl::StatusOr<UpgradePolicy> added = UpgradePolicy::Create(ReferenceConfig(), add, kBookworm);
  ASSERT_TRUE(added.ok());
  EXPECT_TRUE(added->OriginAllowed(DebianSecurity()));
  EXPECT_TRUE(added->OriginAllowed(OriginFields{"Kubernetes", "", "", "", "", ""}));
  EXPECT_TRUE(added->Blacklisted("kubeadm"));
  EXPECT_TRUE(added->Blacklisted("etcd-client"));
  EXPECT_TRUE(added->ConfiguredHold("kubelet"));
  EXPECT_FALSE(added->ConfiguredHold("kubeadm"));

  AptPolicyOverrides replace = add;
  replace.replace_apt_config = true;
  absl::StatusOr<UpgradePolicy> replaced =
      UpgradePolicy::Create(ReferenceConfig(), replace, kBookworm);
  ASSERT_TRUE(replaced.ok());
  EXPECT_FALSE(replaced->OriginAllowed(DebianSecurity()));
  EXPECT_FALSE(replaced->Blacklisted("kubeadm"));
  EXPECT_TRUE(replaced->Blacklisted("etcd"));
}

TEST(UpgradePolicyTest, WhitelistRestrictsEvenWhenNotStrict) {
  AptConfigPolicy apt;
  apt.whitelist = {"libfoo"};
  absl::StatusOr<UpgradePolicy> policy = UpgradePolicy::Create(apt, {}, kBookworm);
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->has_whitelist());
  EXPECT_FALSE(policy->whitelist_strict());
  EXPECT_TRUE(policy->Whitelisted("libfoo"));
  EXPECT_FALSE(policy->Whitelisted("kernelish"));
}

TEST(UpgradePolicyTest, BadEntriesAreErrors) {
  AptConfigPolicy apt;
  apt.origins_pattern = {"o=Debian,foo=bar"};
  EXPECT_FALSE(UpgradePolicy::Create(apt, {}, kBookworm).ok());
  apt = {};
  apt.blacklist = {"[unclosed"};
  EXPECT_FALSE(UpgradePolicy::Create(apt, {}, kBookworm).ok());
  apt = {};
  apt.allowed_origins = {"too:many:colons"};
  EXPECT_FALSE(UpgradePolicy::Create(apt, {}, kBookworm).ok());
}

absl::StatusOr<AptPolicyOverrides> ParseYaml(const std::string& text) {
  absl::StatusOr<YAML::Node> doc = ParseYamlDocument(text, "agent.yaml");
  if (!doc.ok()) return doc.status();
  return ParseAptPolicyYaml(YamlCursor(*doc, "agent.yaml").Child("apt"));
}

TEST(AptPolicyYamlTest, ParsesAllKeys) {
  absl::StatusOr<AptPolicyOverrides> o = ParseYaml(R"(
apt:
  allowed_origins: ["${distro_id}:${distro_codename}-security"]
  origins_pattern: ["o=Kubernetes,l=*"]
  blacklist: ["^linux-"]
  whitelist: ["libfoo"]
  whitelist_strict: true
  holds: [kubelet, kubeadm, kubectl]
  replace_apt_config: true
)");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->allowed_origins, ElementsAre("${distro_id}:${distro_codename}-security"));
  EXPECT_THAT(o->origins_pattern, ElementsAre("o=Kubernetes,l=*"));
  EXPECT_THAT(o->blacklist, ElementsAre("^linux-"));
  EXPECT_THAT(o->whitelist, ElementsAre("libfoo"));
  EXPECT_THAT(o->whitelist_strict, Optional(true));
  EXPECT_THAT(o->holds, ElementsAre("kubelet", "kubeadm", "kubectl"));
  EXPECT_TRUE(o->replace_apt_config);
}

TEST(AptPolicyYamlTest, UnsupportedRegexNamesItsLine) {
  absl::Status status = ParseYaml("apt:\n  blacklist:\n    - kube\n    - '(a)\\1'\n").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("agent.yaml:4"));
  EXPECT_THAT(status.message(), HasSubstr("RE2"));
}

TEST(AptPolicyYamlTest, RejectsMistakesWithTheirLine) {
  EXPECT_THAT(ParseYaml("apt:\n  blacklists: [x]\n").status().message(), HasSubstr("blacklists"));
  absl::Status bad_pattern = ParseYaml("apt:\n  origins_pattern:\n    - o=A\n    - q=B\n").status();
  EXPECT_THAT(bad_pattern.message(), HasSubstr("agent.yaml:4"));
  EXPECT_THAT(bad_pattern.message(), HasSubstr("unknown key"));
  EXPECT_FALSE(ParseYaml("apt:\n  blacklist: [\"(\"]\n").ok());
  EXPECT_FALSE(ParseYaml("apt:\n  holds: [\"Bad Name\"]\n").ok());
  EXPECT_FALSE(ParseYaml("apt:\n  whitelist_strict: maybe\n").ok());
  EXPECT_TRUE(ParseYaml("apt: {}\n").ok());
}

}  // namespace
}  // namespace tended::agent::apt
