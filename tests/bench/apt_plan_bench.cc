// Prints how long the apt engine takes to plan on a generated repository with many
// upgradable packages, as a whole `plan` process and in-process, next to unattended-upgrades
// on the same root (its planning code only, and its --dry-run). Prints figures; asserts
// nothing. Run as root (dpkg needs it): apt_plan_bench [packages=150] [runs=5]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/engine/plan_command.h"
#include "agent/apt/package_manager.h"
#include "agent/apt/subprocess.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended::agent::apt {
namespace {

using testing::Deb;
using testing::LabRoot;
using testing::RepoSet;
using testing::RepoSpec;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Runs argv; returns wall seconds, or -1 on failure. *max_rss_kb gets the child's peak RSS.
double TimeProcess(const std::vector<std::string>& argv, long* max_rss_kb = nullptr) {
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (freopen("/dev/null", "w", stdout) == nullptr ||
        freopen("/dev/null", "w", stderr) == nullptr) {
      _exit(126);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  double elapsed = Seconds(std::chrono::steady_clock::now() - start);
  if (max_rss_kb != nullptr) *max_rss_kb = usage.ru_maxrss;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : -1;
}

int Run(int packages, int runs) {
  tended::testing::TempDir dir;
  std::printf("apt_plan_bench: %d upgradable packages, %d runs each\n", packages, runs);
  auto t0 = std::chrono::steady_clock::now();
  RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
  RepoSpec extras{"extras", "ThirdParty", "Extras", "extras", {}};
  std::vector<Deb> base;
  for (int i = 0; i < packages; ++i) {
    std::string name = absl::StrCat("pkg", i);
    base.push_back(Deb(name, "1.0"));
    // Every fifth package needs the previous one's new version: some dependency work.
    std::string depends = i % 5 == 4 ? absl::StrCat("pkg", i - 1, " (>= 1.1)") : "";
    security.debs.push_back(Deb(name, "1.1", depends));
    if (i % 10 == 0) extras.debs.push_back(Deb(name, "2.0"));
  }
  RepoSet repos(dir.path(), {security, extras});
  LabRoot lab(
      dir.Path("root"), repos,
      "Unattended-Upgrade::Origins-Pattern { \"o=NodeOS,n=${distro_codename}-security\"; };\n"
      "Unattended-Upgrade::Package-Blacklist { \"pkg7$\"; };\n");
  lab.Install(dir.Path("work"), base);
  AptOptions options;
  options.root = lab.path();
  {
    absl::StatusOr<std::unique_ptr<PackageManager>> m = CreateAptPackageManager(options);
    if (!m.ok() || !(*m)->Update().ok()) {
      std::fprintf(stderr, "setup failed\n");
      return 1;
    }
  }
  std::printf("setup (debs, signed repositories, root, update): %.2f s\n",
              Seconds(std::chrono::steady_clock::now() - t0));

  std::vector<double> in_process;
  size_t upgrades = 0, kept = 0;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<PackageManager>> m = CreateAptPackageManager(options);
    absl::StatusOr<UpgradePlan> plan = (*m)->Plan();
    in_process.push_back(Seconds(std::chrono::steady_clock::now() - start));
    if (!plan.ok()) return 1;
    upgrades = plan->upgrades.size();
    kept = plan->kept.size();
  }
  std::printf("plan: %zu upgrades, %zu kept back\n", upgrades, kept);
  std::printf("in-process CreateAptPackageManager + Plan: median %.3f s\n", Median(in_process));

  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  self[n > 0 ? n : 0] = '\0';
  std::vector<double> whole;
  long rss_kb = 0;
  for (int r = 0; r < runs; ++r) {
    whole.push_back(TimeProcess({self, "--plan-process", "--root", lab.path(), "--json"}, &rss_kb));
  }
  std::printf(
      "whole plan process (exec + config + cache + plan + JSON): median %.3f s, "
      "peak RSS %ld kB\n",
      Median(whole), rss_kb);

  if (access("/usr/bin/unattended-upgrade", X_OK) == 0) {
    std::string here = __FILE__;  // .../tests/bench/apt_plan_bench.cc
    std::string tests_dir = here.substr(0, here.rfind("/bench/"));
    std::string oracle = tests_dir + "/unit/agent/apt/engine/testdata/uu_oracle.py";
    std::vector<double> uu_calc;
    for (int r = 0; r < runs; ++r) {
      uu_calc.push_back(
          TimeProcess({"/usr/bin/python3", oracle, lab.path(), "Debian", "bookworm"}));
    }
    std::printf(
        "unattended-upgrades planning code only (calculate_upgradable_pkgs): median %.3f s\n",
        Median(uu_calc));
    double dry = TimeProcess(
        {"/usr/bin/python3", tests_dir + "/bench/uu_dry_run.py", lab.path(), "Debian", "bookworm"});
    if (dry < 0) {
      std::printf("unattended-upgrade --dry-run (main(), MinimalSteps): failed to run\n");
    } else {
      std::printf(
          "unattended-upgrade --dry-run (main(), MinimalSteps, 1 run): %.2f s "
          "(%.0fx the whole plan process)\n",
          dry, dry / Median(whole));
    }
  } else {
    std::printf("unattended-upgrades not installed: no comparison\n");
  }
  return 0;
}

}  // namespace
}  // namespace tended::agent::apt

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--plan-process") {
    // Behaves like `tended-agent plan ...`: argv[1] plays the "plan" subcommand.
    return tended::agent::apt::RunPlanCommand(argc, argv);
  }
  int packages = argc >= 2 ? std::atoi(argv[1]) : 150;
  int runs = argc >= 3 ? std::atoi(argv[2]) : 5;
  return tended::agent::apt::Run(packages, runs);
}
