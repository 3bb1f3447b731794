// Test harness for the apt engine: builds tiny .deb files with dpkg-deb, local
// repositories with apt-ftparchive signed by a throwaway gpg key, and a throwaway dpkg root
// whose apt configuration points only at them. Everything lives in a TempDir.
#ifndef TENDED_TESTS_UNIT_AGENT_APT_APT_LAB_H_
#define TENDED_TESTS_UNIT_AGENT_APT_APT_LAB_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/subprocess.h"
#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::apt {

// Readable gMock failures: "libfoo 1.0 -> 1.1 [o=NodeOS,...]", "blk: held (dpkg hold)".
inline void PrintTo(const PackageUpgrade& u, std::ostream* os) {
  *os << u.package << " " << (u.from.empty() ? "(new)" : u.from) << " -> " << u.to << " ["
      << u.origin << "]";
}
inline void PrintTo(const KeptPackage& k, std::ostream* os) {
  *os << k.package << ": " << k.reason;
}

}  // namespace tended::agent::apt

namespace tended::agent::apt::testing {

struct Deb {
  Deb(std::string n, std::string v, std::string d = "", std::string post = "")
      : name(std::move(n)),
        version(std::move(v)),
        depends(std::move(d)),
        postinst(std::move(post)) {}
  std::string name;
  std::string version;
  std::string depends;
  std::map<std::string, std::string> files;  // Path relative to the root -> contents.
  std::vector<std::string> conffiles;        // Absolute paths, e.g. "/etc/cfg.conf".
  std::string postinst;                      // Script body, without the #! line.
  std::string extra_control;                 // More control lines, each ending in "\n".
};

// Runs `sh -c command`; fails the test (and returns "") when it exits non-zero.
inline std::string Sh(const std::string& command, const std::vector<std::string>& env = {}) {
  absl::StatusOr<ProcessResult> run = RunProcess({"/bin/sh", "-c", command}, env);
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return "";
  EXPECT_EQ(run->exit_code, 0) << command << "\n" << run->output;
  return run->output;
}

inline void WriteFile(const std::string& path, const std::string& contents, int mode = 0644) {
  size_t slash = path.rfind('/');
  ASSERT_TRUE(MakeDirectories(path.substr(0, slash)).ok());
  ASSERT_TRUE(WriteFileAtomically(path, contents, mode).ok()) << path;
}

inline std::string ReadFile(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileToString(path);
  return s.ok() ? *s : std::string("<missing>");
}

inline std::string HostArch() {
  std::string arch = Sh("dpkg --print-architecture");
  while (!arch.empty() && (arch.back() == '\n' || arch.back() == ' ')) arch.pop_back();
  return arch;
}

// Builds `deb` into `out_dir`; returns the .deb path.
inline std::string BuildDeb(const std::string& work, const Deb& deb, const std::string& out_dir) {
  std::string dir = absl::StrCat(work, "/src-", deb.name, "-", deb.version);
  std::string control = absl::StrCat("Package: ", deb.name, "\nVersion: ", deb.version,
                                     "\nArchitecture: all\nMaintainer: lab <lab@example.invalid>"
                                     "\nSection: misc\nPriority: optional\n");
  if (!deb.depends.empty()) absl::StrAppend(&control, "Depends: ", deb.depends, "\n");
  absl::StrAppend(&control, deb.extra_control);
  absl::StrAppend(&control, "Description: test package ", deb.name, "\n");
  WriteFile(dir + "/DEBIAN/control", control);
  if (!deb.conffiles.empty()) {
    WriteFile(dir + "/DEBIAN/conffiles", absl::StrJoin(deb.conffiles, "\n") + "\n");
  }
  if (!deb.postinst.empty()) {
    WriteFile(dir + "/DEBIAN/postinst", "#!/bin/sh\nset -e\n" + deb.postinst + "\n", 0755);
  }
  for (const auto& [path, contents] : deb.files) WriteFile(dir + "/" + path, contents);
  std::string out = absl::StrCat(out_dir, "/", deb.name, "_", deb.version, "_all.deb");
  EXPECT_TRUE(MakeDirectories(out_dir).ok());
  Sh(absl::StrCat("dpkg-deb --root-owner-group -Zgzip -z1 --build '", dir, "' '", out,
                  "' >/dev/null"));
  return out;
}

struct RepoSpec {
  std::string name;  // Folder name and suite.
  std::string origin;
  std::string label;
  std::string codename;
  std::vector<Deb> debs;
};

// A gpg key and signed repositories, built once per test suite.
class RepoSet {
 public:
  // With `lz4`, each repository also offers Packages.lz4 (as Debian's mirrors do).
  RepoSet(const std::string& base, const std::vector<RepoSpec>& repos, bool sign = true,
          bool lz4 = false)
      : base_(base), sign_(sign), lz4_(lz4) {
    chmod(base.c_str(), 0755);
    arch_ = HostArch();
    gnupg_ = base + "/gnupg";
    if (sign_) {
      EXPECT_TRUE(MakeDirectories(gnupg_, 0700).ok());
      Sh(absl::StrCat("gpg --homedir '", gnupg_,
                      "' --batch --quiet --passphrase '' --pinentry-mode loopback "
                      "--quick-gen-key 'tended lab <lab@example.invalid>' ed25519 sign never "
                      "2>&1"));
      Sh(absl::StrCat("gpg --homedir '", gnupg_, "' --export > '", base, "/lab.gpg'"));
    }
    for (const RepoSpec& repo : repos) Publish(repo);
  }
  ~RepoSet() {
    if (sign_) {
      RunProcess({"gpgconf", "--homedir", gnupg_, "--kill", "all"}).IgnoreError();
    }
  }

  // deb822 sources for every repository, for a root's sources.list.d.
  std::string Sources(const std::string& keyring) const {
    std::string out;
    for (const std::string& name : names_) {
      absl::StrAppend(&out, "Types: deb\nURIs: file:", base_, "/repos/", name, "\nSuites: ", name,
                      "\nComponents: main\n",
                      sign_ ? "Signed-By: " + keyring + "\n" : "Trusted: yes\n", "\n");
    }
    return out;
  }
  std::string keyring() const { return base_ + "/lab.gpg"; }
  bool signed_repos() const { return sign_; }

 private:
  void Publish(const RepoSpec& repo) {
    std::string dir = absl::StrCat(base_, "/repos/", repo.name);
    for (const Deb& deb : repo.debs) BuildDeb(base_ + "/work", deb, dir + "/pool");
    std::string dists = absl::StrCat(dir, "/dists/", repo.name);
    std::string bin = absl::StrCat(dists, "/main/binary-", arch_);
    EXPECT_TRUE(MakeDirectories(bin).ok());
    Sh(absl::StrCat("cd '", dir, "' && apt-ftparchive packages pool > '", bin, "/Packages'"));
    if (lz4_) Sh(absl::StrCat("lz4 -q -f '", bin, "/Packages' '", bin, "/Packages.lz4'"));
    const std::string r = "-o APT::FTPArchive::Release::";
    Sh(absl::StrCat("cd '", dir, "' && apt-ftparchive ", r, "Origin='", repo.origin, "' ", r,
                    "Label='", repo.label, "' ", r, "Suite='", repo.name, "' ", r, "Codename='",
                    repo.codename, "' ", r, "Components=main ", r, "Architectures='", arch_,
                    "' release dists/", repo.name, " > '", base_, "/Release.tmp' && mv '", base_,
                    "/Release.tmp' '", dists, "/Release'"));
    if (sign_) {
      Sh(absl::StrCat("gpg --homedir '", gnupg_, "' --batch --yes --quiet --clearsign -o '", dists,
                      "/InRelease' '", dists, "/Release'"));
    }
    names_.push_back(repo.name);
  }

  std::string base_;
  bool sign_;
  bool lz4_;
  std::string arch_;
  std::string gnupg_;
  std::vector<std::string> names_;
};

// A throwaway dpkg root: empty database, apt configuration pointing at a RepoSet only.
class LabRoot {
 public:
  LabRoot(const std::string& root, const RepoSet& repos, const std::string& apt_conf)
      : root_(root) {
    for (const char* d :
         {"etc/apt/apt.conf.d", "etc/apt/sources.list.d", "etc/apt/preferences.d",
          "etc/apt/trusted.gpg.d", "etc/apt/keyrings", "var/lib/dpkg/updates", "var/lib/dpkg/info",
          "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives", "var/lib/apt/lists/partial",
          "var/cache/apt/archives/partial", "var/log/apt", "run", "proc/sys/kernel", "usr/bin"}) {
      EXPECT_TRUE(MakeDirectories(root + "/" + d).ok());
    }
    // A second lab on the same root finds the link there already.
    EXPECT_TRUE(symlink("../run", (root + "/var/run").c_str()) == 0 || errno == EEXIST)
        << root << "/var/run";
    WriteFile(root + "/var/lib/dpkg/status", "");
    WriteFile(root + "/var/lib/dpkg/available", "");
    WriteFile(root + "/etc/os-release",
              "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"
              "VERSION_CODENAME=bookworm\n");
    WriteFile(root + "/proc/sys/kernel/osrelease", "6.1.0-10-amd64\n");
    std::string keyring = root + "/etc/apt/keyrings/lab.gpg";
    if (repos.signed_repos()) Sh(absl::StrCat("cp '", repos.keyring(), "' '", keyring, "'"));
    WriteFile(root + "/etc/apt/sources.list.d/lab.sources", repos.Sources(keyring));
    WriteFile(root + "/etc/apt/apt.conf.d/50unattended-upgrades", apt_conf);
  }

  const std::string& path() const { return root_; }
  std::string Path(const std::string& relative) const { return root_ + "/" + relative; }

  // dpkg -i, chrootless, confined to the root.
  void Install(const std::string& work, const std::vector<Deb>& debs) {
    std::vector<std::string> files;
    for (const Deb& deb : debs) files.push_back("'" + BuildDeb(work, deb, work + "/base") + "'");
    Sh(absl::StrCat(Dpkg(), " -i ", absl::StrJoin(files, " "), " >/dev/null"));
  }
  std::string Dpkg() const {
    return absl::StrCat("dpkg --root='", root_, "' --force-script-chrootless --log='", root_,
                        "/var/log/dpkg.log'");
  }
  // "ii 1.0" style: the status abbreviation and version of one package.
  std::string State(const std::string& package) const {
    absl::StatusOr<ProcessResult> run =
        RunProcess({"dpkg-query", "--admindir=" + root_ + "/var/lib/dpkg", "-W",
                    "-f=${db:Status-Abbrev}${Version}", package});
    if (!run.ok() || run->exit_code != 0) return "absent";
    std::string out = run->output;
    // "ii  1.0" -> "ii 1.0"
    size_t space = out.find(' ');
    while (space != std::string::npos && space + 1 < out.size() && out[space + 1] == ' ') {
      out.erase(space + 1, 1);
    }
    return out;
  }

 private:
  std::string root_;
};

// The names a plan upgrades, in its order.
inline std::vector<std::string> UpgradedNames(const UpgradePlan& plan) {
  std::vector<std::string> out;
  for (const PackageUpgrade& u : plan.upgrades) out.push_back(u.package);
  return out;
}

// Why a plan keeps `package` back, or "<not kept>".
inline std::string KeptReason(const UpgradePlan& plan, const std::string& package) {
  for (const KeptPackage& k : plan.kept) {
    if (k.package == package) return k.reason;
  }
  return "<not kept>";
}

// A fixture whose tests share one RepoSet, built once per suite from Derived::Repos()
// (offering Packages.lz4 when Derived::Lz4() says so), and each get a fresh TempDir and
// (after MakeLab) a LabRoot.
template <typename Derived>
class LabTest : public ::testing::Test {
 protected:
  static bool Lz4() { return false; }

  static void SetUpTestSuite() {
    suite_dir_ = new tended::testing::TempDir();
    repos_ = new RepoSet(suite_dir_->path(), Derived::Repos(), /*sign=*/true, Derived::Lz4());
  }
  static void TearDownTestSuite() {
    delete repos_;
    delete suite_dir_;
  }

  void MakeLab(const std::string& apt_conf, const std::vector<Deb>& installed,
               const std::string& root_name = "root") {
    lab_ = std::make_unique<LabRoot>(dir_.Path(root_name), *repos_, apt_conf);
    lab_->Install(dir_.Path("work"), installed);
  }

  // The engine for the lab's root, with its lists fetched.
  std::unique_ptr<PackageManager> Manager(AptOptions options = {}) {
    options.root = lab_->path();
    absl::StatusOr<std::unique_ptr<PackageManager>> m = CreateAptPackageManager(options);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return nullptr;
    absl::Status update = (*m)->Update();
    EXPECT_TRUE(update.ok()) << update;
    return std::move(*m);
  }

  static inline tended::testing::TempDir* suite_dir_ = nullptr;
  static inline RepoSet* repos_ = nullptr;
  tended::testing::TempDir dir_;
  std::unique_ptr<LabRoot> lab_;
};

}  // namespace tended::agent::apt::testing

#endif  // TENDED_TESTS_UNIT_AGENT_APT_APT_LAB_H_
