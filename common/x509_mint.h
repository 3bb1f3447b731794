// Mints X.509 certificates and EC P-256 keys with OpenSSL: a self-signed CA and leaf
// certificates it signs (server, client or both), with subjects, subjectAltNames and
// validity periods as asked, and revocation lists. For `tendedctl certs` and for tests that
// need a PKI.
#ifndef TENDED_COMMON_X509_MINT_H_
#define TENDED_COMMON_X509_MINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tended {

struct CertificateSpec {
  std::string common_name;
  std::vector<std::string> organizations;
  std::vector<std::string> organizational_units;
  // subjectAltName entries of a server certificate.
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool server = false;
  bool client = true;
  // Validity, relative to now: the default is valid from an hour ago for a year.
  absl::Duration not_before = -absl::Hours(1);
  absl::Duration not_after = absl::Hours(24 * 365);
};

struct RevocationListSpec {
  // Certificates (PEM) revoked, by serial number.
  std::vector<std::string> revoked_cert_pems;
  // thisUpdate (lastUpdate) and nextUpdate, relative to now.
  absl::Duration last_update = absl::ZeroDuration();
  absl::Duration next_update = absl::Hours(24);
  // The cRLNumber extension; negative: none.
  int64_t number = -1;
};

struct MintedCertificate {
  std::string cert_pem;
  std::string key_pem;
};

class CertificateAuthority {
 public:
  static absl::StatusOr<CertificateAuthority> Create(const std::string& common_name,
                                                     absl::Duration lifetime);
  CertificateAuthority(CertificateAuthority&&);
  CertificateAuthority& operator=(CertificateAuthority&&);
  ~CertificateAuthority();

  const MintedCertificate& self() const { return self_; }
  absl::StatusOr<MintedCertificate> Issue(const CertificateSpec& spec) const;
  // A CRL (PEM) signed by this CA that revokes the given certificates (PEM, by serial
  // number), valid from now for `lifetime`.
  absl::StatusOr<std::string> RevocationList(const std::vector<std::string>& revoked_cert_pems,
                                             absl::Duration lifetime) const;
  absl::StatusOr<std::string> RevocationList(const RevocationListSpec& spec) const;

 private:
  struct Keys;
  CertificateAuthority() = default;
  MintedCertificate self_;
  std::unique_ptr<Keys> keys_;
};

// "<issuer name hash>.r0": the file name under which OpenSSL's hashed-directory lookup (and
// so gRPC's CRL directory) finds this CRL, as `openssl rehash` names it.
absl::StatusOr<std::string> HashedCrlFileName(const std::string& crl_pem);

}  // namespace tended

#endif  // TENDED_COMMON_X509_MINT_H_
