// tended-agent: keeps one node patched and reboots it only under a coordinator's lease.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "agent/apt/engine_client.h"
#include "agent/etcd/snapshot_command.h"
#include "agent/run.h"
#include "common/logging.h"

ABSL_FLAG(std::string, config, "/etc/tended/agent.yaml", "Path to the agent's YAML configuration.");
ABSL_FLAG(std::string, node_name, "", "Overrides the configured node name.");
ABSL_FLAG(std::string, root, "", "Overrides the configured root every path resolves under.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error.");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus /metrics on; overrides the configuration.");

namespace {

// `tended-agent plan ...` is tended-apt-engine's plan: the daemon has no libapt-pkg.
int ExecPlan(int argc, char** argv) {
  absl::StatusOr<std::string> engine = tended::agent::apt::EngineBesideThisProgram();
  if (!engine.ok()) {
    std::cerr << "tended-agent plan: " << engine.status().message() << "\n";
    return 1;
  }
  std::vector<char*> args = {const_cast<char*>(tended::agent::apt::kEngineProgramName)};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(engine->c_str(), args.data());
  std::cerr << "tended-agent plan: cannot run " << *engine << ": " << std::strerror(errno) << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "plan") return ExecPlan(argc, argv);
  if (argc > 1 && std::string(argv[1]) == tended::agent::etcd::kSnapshotCommandName) {
    return tended::agent::etcd::RunSnapshotCommand({argv + 2, argv + argc}, tended::Clock::Real(),
                                                   std::cout, std::cerr);
  }
  absl::SetProgramUsageMessage(
      "tended-agent --config FILE.yaml [--metrics-listen HOST:PORT]\n"
      "       tended-agent plan [--root DIR] [--update] [--json] [--config FILE.yaml]\n"
      "       tended-agent etcd-snapshot --endpoint URL [--cacert F --cert F --key F] --out FILE");
  // The documented spelling --metrics-listen works too (absl flags use underscores).
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    if (std::string(argv[i]).rfind("--metrics-listen", 0) == 0) argv[i][9] = '_';
  }
  absl::ParseCommandLine(argc, argv);
  tended::InitLogging(tended::DetectLogTarget(), absl::GetFlag(FLAGS_log_level));
  tended::agent::AgentOptions options;
  options.config_path = absl::GetFlag(FLAGS_config);
  options.node_name_override = absl::GetFlag(FLAGS_node_name);
  options.root_override = absl::GetFlag(FLAGS_root);
  options.metrics_listen_override = absl::GetFlag(FLAGS_metrics_listen);
  return tended::agent::RunAgent(options);
}
