// Who may call what, from the peer's TLS client certificate. A node identity
// (CN=system:node:<name>, O=system:nodes: a kubelet client certificate signed by the
// cluster CA, or one tendedctl minted) may make NodeService calls for its own node only.
// An operator identity (O=tended:operators, CN=<name>) gets its role from the
// configuration's `operators` map, else from its certificate's OU (tended:role:read or
// tended:role:admin); read may list, explain and follow events, admin may also change
// things. With a CrlSet (tls.crl_directory), a certificate one of its CRLs revokes is
// refused on every call (UNAUTHENTICATED, naming the serial), so that a CRL rewritten in
// place applies to the next call, which the handshake's own CRL check does not promise.
// Health and reflection are not checked. Without enforcement (--insecure) every call is
// allowed, as before mTLS.
#ifndef TENDED_COORDINATOR_API_ACCESS_CONTROL_H_
#define TENDED_COORDINATOR_API_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/crl_set.h"
#include "coordinator/config/config.h"

namespace tended::coordinator {

struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<std::string> organizational_units;
  // What a CRL names it by.
  RevocationKey revocation_key;
};

// The subject, issuer and serial of the first certificate in `pem`.
absl::StatusOr<PeerCertificate> ParsePeerCertificate(absl::string_view pem);

struct PeerIdentity {
  enum class Kind { kNone, kNode, kOperator };
  Kind kind = Kind::kNone;
  // The node's name, or the operator's.
  std::string name;
  OperatorRole role = OperatorRole::kNone;
  // For messages: "node n1", "operator alice", "a client without a certificate".
  std::string Describe() const;
};

class AccessControl {
 public:
  struct Options {
    // False: --insecure, every call allowed.
    bool enforce = false;
    // Role by operator name; wins over the certificate's OU.
    std::map<std::string, OperatorRole> operators;
    // Called for every refused call: the service ("node" or "operator") and the method.
    std::function<void(absl::string_view service, absl::string_view method)> on_denied;
    // Revocations checked on every call; null: none (the handshake may still check).
    std::shared_ptr<CrlSet> crls;
    // Called, besides on_denied, for a call refused because the certificate is revoked.
    std::function<void(absl::string_view service, absl::string_view method)> on_revoked;
  };

  AccessControl() = default;
  explicit AccessControl(Options options) : options_(std::move(options)) {}
  AccessControl(const AccessControl&) = delete;
  AccessControl& operator=(const AccessControl&) = delete;

  bool enforcing() const { return options_.enforce; }
  PeerIdentity Identify(const grpc::CallbackServerContext& context) const;
  PeerIdentity IdentifyCertificate(const PeerCertificate& certificate) const;

  // OK, UNAUTHENTICATED (no certificate, or a revoked one) or PERMISSION_DENIED (another
  // identity).
  // `node` empty: the call names no node the coordinator knows (an unknown lease): only
  // a node identity is required, and the call itself refuses what it does not know.
  grpc::Status CheckNode(const grpc::CallbackServerContext& context, absl::string_view method,
                         absl::string_view node) const;
  grpc::Status CheckOperator(const grpc::CallbackServerContext& context, absl::string_view method,
                             OperatorRole needed) const;

 private:
  grpc::Status Deny(absl::string_view service, absl::string_view method, grpc::StatusCode code,
                    std::string message) const;
  // The peer's certificate, nullopt without one (or one that does not parse).
  std::optional<PeerCertificate> PeerCertificateOf(
      const grpc::CallbackServerContext& context) const;
  // OK, or the refusal of a certificate a CRL revokes.
  grpc::Status CheckNotRevoked(const PeerCertificate& certificate, absl::string_view service,
                               absl::string_view method) const;

  // The subject of a PEM seen before (parsing costs far more than a heartbeat's work);
  // nullopt when the PEM does not parse.
  std::optional<PeerCertificate> Parsed(absl::string_view pem) const;

  Options options_;
  static constexpr size_t kMaxCached = 8192;
  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::optional<PeerCertificate>> cache_
      ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_API_ACCESS_CONTROL_H_
