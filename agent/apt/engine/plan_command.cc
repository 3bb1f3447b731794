#include "agent/apt/engine/plan_command.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/engine_protocol.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/yaml_util.h"

namespace tended::agent::apt {
namespace {

constexpr char kUsage[] =
    "usage: tended-agent plan [--root DIR] [--update] [--json] [--config agent.yaml]\n";

struct PlanArgs {
  std::string root;
  std::string config;
  bool update = false;
  bool json = false;
};

// The `apt:` section (and `root:`) of the agent's configuration file.
absl::Status LoadConfig(const std::string& path, PlanArgs& args, AptOptions& options) {
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
  ASSIGN_OR_RETURN(YAML::Node doc, ParseYamlDocument(contents, path));
  YamlCursor top(doc, path);
  if (top.Has("apt")) {
    ASSIGN_OR_RETURN(options.policy, ParseAptPolicyYaml(top.Child("apt")));
  }
  if (args.root.empty() && top.Has("root")) {
    ASSIGN_OR_RETURN(args.root, top.Child("root").AsString());
  }
  return absl::OkStatus();
}

}  // namespace

std::string PlanToText(const UpgradePlan& plan) {
  std::string out;
  if (plan.upgrades.empty()) {
    out += "No upgrades.\n";
  } else {
    absl::StrAppend(&out, plan.upgrades.size(), " to upgrade:\n");
    for (const PackageUpgrade& u : plan.upgrades) {
      absl::StrAppend(&out, "  ", u.package, " ", u.from.empty() ? "(new)" : u.from, " -> ", u.to,
                      "  [", u.origin, "]\n");
    }
  }
  if (!plan.kept.empty()) {
    absl::StrAppend(&out, plan.kept.size(), " kept back:\n");
    for (const KeptPackage& k : plan.kept) {
      absl::StrAppend(&out, "  ", k.package, ": ", k.reason, "\n");
    }
  }
  return out;
}

int RunPlanCommandForTest(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err) {
  PlanArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* into) {
      if (i + 1 >= args.size()) return false;
      *into = args[++i];
      return true;
    };
    if (a == "--update") {
      parsed.update = true;
    } else if (a == "--json") {
      parsed.json = true;
    } else if (a == "--root") {
      if (!value(&parsed.root)) return err << kUsage, 2;
    } else if (a.rfind("--root=", 0) == 0) {
      parsed.root = a.substr(7);
    } else if (a == "--config") {
      if (!value(&parsed.config)) return err << kUsage, 2;
    } else if (a.rfind("--config=", 0) == 0) {
      parsed.config = a.substr(9);
    } else if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    } else {
      err << "unknown argument \"" << a << "\"\n" << kUsage;
      return 2;
    }
  }
  AptOptions options;
  if (!parsed.config.empty()) {
    if (absl::Status s = LoadConfig(parsed.config, parsed, options); !s.ok()) {
      err << "tended-agent plan: " << s.message() << "\n";
      return 1;
    }
  }
  options.root = parsed.root.empty() ? "/" : parsed.root;
  absl::StatusOr<std::unique_ptr<PackageManager>> manager = CreateAptPackageManager(options);
  if (!manager.ok()) {
    err << "tended-agent plan: " << manager.status().message() << "\n";
    return 1;
  }
  if (parsed.update) {
    if (absl::Status s = (*manager)->Update(); !s.ok()) {
      err << "tended-agent plan: " << s.message() << "\n";
      return 1;
    }
  }
  absl::StatusOr<UpgradePlan> plan = (*manager)->Plan();
  if (!plan.ok()) {
    err << "tended-agent plan: " << plan.status().message() << "\n";
    return 1;
  }
  out << (parsed.json ? PlanToJson(*plan) + "\n" : PlanToText(*plan));
  return 0;
}

int RunPlanCommand(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  return RunPlanCommandForTest(args, std::cout, std::cerr);
}

}  // namespace tended::agent::apt
