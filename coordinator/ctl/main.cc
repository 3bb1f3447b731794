// tendedctl: the operators' command line for tended-coordinator.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "coordinator/ctl/ctl.h"
#include "coordinator/ctl/ctl_config.h"

ABSL_FLAG(std::string, address, "",
          "The coordinator's HOST:PORT (default: $TENDED_ADDRESS, then tendedctl.yaml, then "
          "127.0.0.1:7443).");
ABSL_FLAG(bool, insecure, false, "Plaintext gRPC (no TLS, no identity).");
ABSL_FLAG(std::string, cert, "", "The operator's certificate (PEM); else $TENDED_CERT.");
ABSL_FLAG(std::string, key, "", "The operator's private key (PEM); else $TENDED_KEY.");
ABSL_FLAG(std::string, ca, "", "The CA bundle for the coordinator's certificate; else $TENDED_CA.");
ABSL_FLAG(bool, json, false, "Print the answers as JSON.");
ABSL_FLAG(bool, all, false, "leases: include released leases.");
ABSL_FLAG(bool, follow, false, "events: keep printing new events.");
ABSL_FLAG(std::string, reason, "", "halt, release, remove, cancel ...: the reason recorded.");
ABSL_FLAG(uint64_t, after, 0, "events: only events after this sequence number.");
ABSL_FLAG(std::string, kind, "patch", "k8s-rollout start: patch or minor.");
ABSL_FLAG(bool, dry_run, false, "k8s-rollout start: walk every decision, change nothing.");
ABSL_FLAG(std::string, out, "", "certs: the folder to write the CA, certificates and keys to.");
ABSL_FLAG(std::string, nodes, "", "certs: node names, comma-separated.");
ABSL_FLAG(std::string, operators, "", "certs: NAME[:ROLE],... with ROLE read or admin.");
ABSL_FLAG(std::string, server_names, "",
          "certs: the coordinator's host names and addresses (default: tended-coordinator, "
          "tended-coordinator.tended.svc, localhost, 127.0.0.1).");
ABSL_FLAG(std::string, stages, "", "k8s-rollout start: the stages to run, comma-separated.");

namespace {

std::string FlagOrEnv(const std::string& flag, const char* variable) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(variable);
  return value != nullptr ? value : "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tendedctl [--address HOST:PORT] [--cert F --key F --ca F | --insecure] [--json] COMMAND");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  tended::ctl::CtlOptions options;
  absl::StatusOr<tended::ctl::CtlEndpoint> endpoint = tended::ctl::ResolveEndpoint(
      absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_insecure), std::getenv("TENDED_ADDRESS"),
      tended::ctl::DefaultCtlConfigPaths(std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME")));
  if (!endpoint.ok()) {
    std::fprintf(stderr, "tendedctl: %s\n", std::string(endpoint.status().message()).c_str());
    return 2;
  }
  options.address = endpoint->address;
  options.address_source = endpoint->address_source;
  options.insecure = endpoint->insecure;
  options.reason = absl::GetFlag(FLAGS_reason);
  options.cert_file = FlagOrEnv(absl::GetFlag(FLAGS_cert), "TENDED_CERT");
  options.key_file = FlagOrEnv(absl::GetFlag(FLAGS_key), "TENDED_KEY");
  options.ca_file = FlagOrEnv(absl::GetFlag(FLAGS_ca), "TENDED_CA");
  options.json = absl::GetFlag(FLAGS_json);
  options.all = absl::GetFlag(FLAGS_all);
  options.follow = absl::GetFlag(FLAGS_follow);
  options.after = absl::GetFlag(FLAGS_after);
  options.k8s_kind = absl::GetFlag(FLAGS_kind);
  options.k8s_dry_run = absl::GetFlag(FLAGS_dry_run);
  options.k8s_stages = absl::GetFlag(FLAGS_stages);
  options.certs_out = absl::GetFlag(FLAGS_out);
  options.certs_nodes = absl::GetFlag(FLAGS_nodes);
  options.certs_operators = absl::GetFlag(FLAGS_operators);
  options.certs_server_names = absl::GetFlag(FLAGS_server_names);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return tended::ctl::RunCtl(options, args);
}
