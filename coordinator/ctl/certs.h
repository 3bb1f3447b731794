// `tendedctl certs`: mints a small PKI for tended with OpenSSL: a CA, the coordinator's
// server certificate, a client certificate per node (CN=system:node:<name>,
// O=system:nodes) and per operator (CN=<name>, O=tended:operators, OU=tended:role:<role>).
// Keys are written 0600 in a 0700 folder; existing files are never overwritten.
#ifndef TENDED_COORDINATOR_CTL_CERTS_H_
#define TENDED_COORDINATOR_CTL_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tended::ctl {

struct CertsRequest {
  std::string out_dir;
  std::vector<std::string> nodes;
  // NAME or NAME:ROLE (read or admin; admin when not given).
  std::vector<std::string> operators;
  // subjectAltNames of the coordinator's certificate: host names and IP addresses.
  std::vector<std::string> server_names = {"tended-coordinator", "tended-coordinator.tended.svc",
                                           "localhost", "127.0.0.1"};
  absl::Duration lifetime = absl::Hours(24 * 365);
};

// The files written, or why not (nothing is written when a name is invalid or a file exists).
absl::StatusOr<std::vector<std::string>> MintCerts(const CertsRequest& request);

}  // namespace tended::ctl

#endif  // TENDED_COORDINATOR_CTL_CERTS_H_
