// tendedctl: inspect and steer a tended-coordinator over OperatorService.
#ifndef TENDED_COORDINATOR_CTL_CTL_H_
#define TENDED_COORDINATOR_CTL_CTL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tended::ctl {

struct CtlOptions {
  std::string address = "127.0.0.1:7443";
  std::string address_source = "default";  // For error messages: where the address came from.
  bool insecure = false;
  // mTLS (unless insecure): the operator's certificate and key, and the CA bundle the
  // coordinator's certificate must chain to. Flags --cert/--key/--ca, else TENDED_CERT,
  // TENDED_KEY, TENDED_CA.
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool json = false;
  bool all = false;     // leases: with released ones
  bool follow = false;  // events: keep printing new ones
  uint64_t after = 0;   // events: only after this sequence number
  std::string reason;   // --reason: appended as the command's trailing REASON
  // k8s-rollout start.
  std::string k8s_kind = "patch";
  bool k8s_dry_run = false;
  std::string k8s_stages;  // Comma-separated; empty: all.
  // certs (comma-separated lists).
  std::string certs_out;
  std::string certs_nodes;
  std::string certs_operators;
  std::string certs_server_names;
};

// `args` are the positional words: the command and its arguments. Returns the exit code.
int RunCtl(const CtlOptions& options, const std::vector<std::string>& args);

}  // namespace tended::ctl

#endif  // TENDED_COORDINATOR_CTL_CTL_H_
