// tended-coordinator: hands out reboot and upgrade leases when every gate passes.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/logging.h"
#include "coordinator/app/run_coordinator.h"

ABSL_FLAG(std::string, config, "", "Path to the coordinator's YAML configuration.");
ABSL_FLAG(std::string, listen, "", "HOST:PORT to serve gRPC on; overrides the configuration.");
ABSL_FLAG(bool, insecure, false, "Serve plaintext gRPC (no TLS).");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus /metrics on; overrides the configuration.");
ABSL_FLAG(bool, recover_state, false,
          "Start on an empty state although this state folder was used before, and rebuild it "
          "from what the agents report; nothing is granted until every node has reported.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tended-coordinator --config FILE.yaml [--listen HOST:PORT] [--metrics-listen "
      "HOST:PORT] [--insecure] [--recover-state]");
  // The documented spellings --metrics-listen and --recover-state work too (absl flags use
  // underscores).
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    const std::string arg(argv[i]);
    if (arg.rfind("--metrics-listen", 0) == 0) argv[i][9] = '_';
    if (arg.rfind("--recover-state", 0) == 0) argv[i][9] = '_';
  }
  absl::ParseCommandLine(argc, argv);
  tended::InitLogging(tended::DetectLogTarget(), absl::GetFlag(FLAGS_log_level));
  tended::coordinator::CoordinatorOptions options;
  options.config_path = absl::GetFlag(FLAGS_config);
  options.listen_override = absl::GetFlag(FLAGS_listen);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.metrics_listen_override = absl::GetFlag(FLAGS_metrics_listen);
  options.recover_state = absl::GetFlag(FLAGS_recover_state);
  return tended::coordinator::RunCoordinator(options);
}
