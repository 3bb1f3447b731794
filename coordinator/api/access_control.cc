#include "coordinator/api/access_control.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/openssl_ptr.h"

namespace tended::coordinator {
namespace {

constexpr absl::string_view kNodePrefix = "system:node:";
constexpr absl::string_view kNodesGroup = "system:nodes";
constexpr absl::string_view kOperatorsGroup = "tended:operators";
constexpr absl::string_view kReadUnit = "tended:role:read";
constexpr absl::string_view kAdminUnit = "tended:role:admin";

std::vector<std::string> EntriesOf(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  int index = -1;
  while ((index = X509_NAME_get_index_by_NID(name, nid, index)) >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) continue;
    out.emplace_back(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
    OPENSSL_free(utf8);
  }
  return out;
}

bool Contains(const std::vector<std::string>& values, absl::string_view wanted) {
  for (const std::string& value : values) {
    if (value == wanted) return true;
  }
  return false;
}

absl::string_view RoleName(OperatorRole role) {
  switch (role) {
    case OperatorRole::kAdmin:
      return "admin";
    case OperatorRole::kRead:
      return "read";
    case OperatorRole::kNone:
      break;
  }
  return "none";
}

}  // namespace

absl::StatusOr<PeerCertificate> ParsePeerCertificate(absl::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InvalidArgumentError("not a PEM certificate");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  PeerCertificate out;
  std::vector<std::string> names = EntriesOf(subject, NID_commonName);
  if (names.size() != 1) {
    return absl::InvalidArgumentError("the certificate's subject must have exactly one CN");
  }
  out.common_name = names.front();
  out.organizations = EntriesOf(subject, NID_organizationName);
  out.organizational_units = EntriesOf(subject, NID_organizationalUnitName);
  out.revocation_key = RevocationKeyOf(cert.get());
  return out;
}

std::string PeerIdentity::Describe() const {
  switch (kind) {
    case Kind::kNode:
      return absl::StrCat("node ", name);
    case Kind::kOperator:
      return absl::StrCat("operator ", name, " (role ", RoleName(role), ")");
    case Kind::kNone:
      break;
  }
  return name.empty() ? "a client without a certificate"
                      : absl::StrCat("a certificate for \"", name,
                                     "\" that is neither a node's "
                                     "nor an operator's");
}

PeerIdentity AccessControl::IdentifyCertificate(const PeerCertificate& certificate) const {
  PeerIdentity identity;
  identity.name = certificate.common_name;
  if (Contains(certificate.organizations, kNodesGroup) &&
      absl::StartsWith(certificate.common_name, kNodePrefix) &&
      certificate.common_name.size() > kNodePrefix.size()) {
    identity.kind = PeerIdentity::Kind::kNode;
    identity.name = certificate.common_name.substr(kNodePrefix.size());
    return identity;
  }
  if (Contains(certificate.organizations, kOperatorsGroup)) {
    identity.kind = PeerIdentity::Kind::kOperator;
    if (auto it = options_.operators.find(certificate.common_name);
        it != options_.operators.end()) {
      identity.role = it->second;
    } else if (Contains(certificate.organizational_units, kAdminUnit)) {
      identity.role = OperatorRole::kAdmin;
    } else if (Contains(certificate.organizational_units, kReadUnit)) {
      identity.role = OperatorRole::kRead;
    }
  }
  return identity;
}

std::optional<PeerCertificate> AccessControl::Parsed(absl::string_view pem) const {
  {
    absl::MutexLock lock(&cache_mutex_);
    if (auto it = cache_.find(pem); it != cache_.end()) return it->second;
  }
  absl::StatusOr<PeerCertificate> parsed = ParsePeerCertificate(pem);
  std::optional<PeerCertificate> result;
  if (parsed.ok()) result = *std::move(parsed);
  absl::MutexLock lock(&cache_mutex_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.emplace(std::string(pem), result);
  return result;
}

std::optional<PeerCertificate> AccessControl::PeerCertificateOf(
    const grpc::CallbackServerContext& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return std::nullopt;
  std::vector<grpc::string_ref> pems = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) return std::nullopt;
  return Parsed(absl::string_view(pems.front().data(), pems.front().size()));
}

PeerIdentity AccessControl::Identify(const grpc::CallbackServerContext& context) const {
  std::optional<PeerCertificate> certificate = PeerCertificateOf(context);
  if (!certificate.has_value()) return {};
  return IdentifyCertificate(*certificate);
}

grpc::Status AccessControl::CheckNotRevoked(const PeerCertificate& certificate,
                                            absl::string_view service,
                                            absl::string_view method) const {
  if (options_.crls == nullptr) return grpc::Status::OK;
  std::optional<CrlSet::Revocation> revoked =
      options_.crls->Find(certificate.revocation_key.issuer_der, certificate.revocation_key.serial);
  if (!revoked.has_value()) return grpc::Status::OK;
  if (options_.on_revoked) options_.on_revoked(service, method);
  return Deny(service, method, grpc::StatusCode::UNAUTHENTICATED,
              absl::StrCat(method, " refused: the caller's certificate (serial ", revoked->serial,
                           ", issuer ", revoked->issuer, ", CN ", certificate.common_name,
                           ") is revoked by the CRL in ", revoked->file));
}

grpc::Status AccessControl::Deny(absl::string_view service, absl::string_view method,
                                 grpc::StatusCode code, std::string message) const {
  if (options_.on_denied) options_.on_denied(service, method);
  return grpc::Status(code, std::move(message));
}

grpc::Status AccessControl::CheckNode(const grpc::CallbackServerContext& context,
                                      absl::string_view method, absl::string_view node) const {
  if (!options_.enforce) return grpc::Status::OK;
  const std::optional<PeerCertificate> certificate = PeerCertificateOf(context);
  const PeerIdentity identity =
      certificate.has_value() ? IdentifyCertificate(*certificate) : PeerIdentity();
  if (!certificate.has_value() ||
      (identity.kind == PeerIdentity::Kind::kNone && identity.name.empty())) {
    return Deny("node", method, grpc::StatusCode::UNAUTHENTICATED,
                absl::StrCat(method, " needs a node's client certificate"));
  }
  if (grpc::Status revoked = CheckNotRevoked(*certificate, "node", method); !revoked.ok()) {
    return revoked;
  }
  if (identity.kind != PeerIdentity::Kind::kNode) {
    return Deny("node", method, grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat(method, " is for agents; the caller is ", identity.Describe()));
  }
  if (!node.empty() && node != identity.name) {
    return Deny("node", method, grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat(method, " for node ", node, " refused: the caller's certificate is ",
                             identity.Describe()));
  }
  return grpc::Status::OK;
}

grpc::Status AccessControl::CheckOperator(const grpc::CallbackServerContext& context,
                                          absl::string_view method, OperatorRole needed) const {
  if (!options_.enforce) return grpc::Status::OK;
  const std::optional<PeerCertificate> certificate = PeerCertificateOf(context);
  const PeerIdentity identity =
      certificate.has_value() ? IdentifyCertificate(*certificate) : PeerIdentity();
  if (!certificate.has_value() ||
      (identity.kind == PeerIdentity::Kind::kNone && identity.name.empty())) {
    return Deny("operator", method, grpc::StatusCode::UNAUTHENTICATED,
                absl::StrCat(method, " needs an operator's client certificate"));
  }
  if (grpc::Status revoked = CheckNotRevoked(*certificate, "operator", method); !revoked.ok()) {
    return revoked;
  }
  if (identity.kind != PeerIdentity::Kind::kOperator) {
    return Deny("operator", method, grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat(method, " is for operators; the caller is ", identity.Describe()));
  }
  if (static_cast<int>(identity.role) < static_cast<int>(needed)) {
    return Deny("operator", method, grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat(method, " needs the ", RoleName(needed), " role; the caller is ",
                             identity.Describe()));
  }
  return grpc::Status::OK;
}

}  // namespace tended::coordinator
