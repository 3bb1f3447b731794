// gRPC mutual TLS from PEM files: server and channel credentials whose certificates, keys
// and CA bundles are re-read when the files change (grpc::experimental's file watcher), so
// a rotated certificate is used for new connections without a restart. The files are
// checked once up front so that a missing, unreadable or mismatched file is an error that
// names its path, not a handshake failure later.
#ifndef TENDED_COMMON_GRPC_TLS_H_
#define TENDED_COMMON_GRPC_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tended {

struct TlsFiles {
  // PEM: this side's certificate (chain), its private key (may be the same file, as
  // kubelet-client-current.pem is), and the CA bundle the peer's certificate must chain to.
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  // How often the files are checked for changes (at least a second).
  absl::Duration refresh_interval = absl::Seconds(10);
  // Server side only: a folder of CRLs named by issuer hash (`<hash>.r0`, as `openssl
  // rehash` names them); a client certificate a CRL there revokes fails the handshake.
  // OpenSSL reads each file once and keeps it until these credentials rebuild their TLS
  // context (a changed certificate, key or CA file), so a CRL rewritten in place is not
  // seen here: CrlSet (common/crl_set.h) checks the folder per call. Empty: no check.
  std::string crl_directory = "";
};

// The checks made before serving or dialing: every file readable and parsed, the key
// matching the certificate, and the key file not writable by group or others
// (PERMISSION_DENIED naming the path).
absl::Status CheckTlsFiles(const TlsFiles& files);

// PERMISSION_DENIED naming the path when the key file is writable by group or others.
absl::Status CheckKeyFilePermissions(const std::string& key_file);

// The subject of the first certificate in a PEM file.
struct CertificateSubject {
  std::string common_name;  // Empty when there is none.
  std::vector<std::string> organizations;
};
absl::StatusOr<CertificateSubject> ReadCertificateSubject(const std::string& cert_file);

// Requests a client certificate and verifies it against ca_file when one is presented; a
// client without one completes the handshake (health and reflection stay reachable) and
// the services decide what it may call.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerTlsCredentials(
    const TlsFiles& files);

// Presents cert_file/key_file and verifies the server against ca_file and the host name
// dialed (its certificate must name it in subjectAltName).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelTlsCredentials(
    const TlsFiles& files);

}  // namespace tended

#endif  // TENDED_COMMON_GRPC_TLS_H_
