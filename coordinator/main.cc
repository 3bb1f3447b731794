// tended-coordinator: hands out reboot and upgrade leases when every gate passes.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/logging.h"
#include "coordinator/server.h"

ABSL_FLAG(std::string, config, "", "Path to the coordinator's YAML configuration.");
ABSL_FLAG(std::string, listen, "", "HOST:PORT to serve gRPC on; overrides the configuration.");
ABSL_FLAG(bool, insecure, false, "Serve plaintext gRPC (no TLS).");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tended-coordinator --config FILE.yaml [--listen HOST:PORT] [--insecure]");
  absl::ParseCommandLine(argc, argv);
  tended::InitLogging(tended::DetectLogTarget(), absl::GetFlag(FLAGS_log_level));
  tended::coordinator::CoordinatorOptions options;
  options.config_path = absl::GetFlag(FLAGS_config);
  options.listen_override = absl::GetFlag(FLAGS_listen);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  return tended::coordinator::RunCoordinator(options);
}
