#include "common/x509_mint.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tended {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat("OpenSSL: ", what, " failed"));
}

absl::StatusOr<Key> NewKey() {
  Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return OpenSslError("EC key generation");
  return key;
}

std::string ToPem(X509* cert) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string ToPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::Status AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot put ", field, "=", value, " in a name"));
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) return OpenSslError(absl::StrCat("extension ", value));
  const int added = X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) return OpenSslError("adding an extension");
  return absl::OkStatus();
}

// A certificate for `key` with `subject`, valid over [not_before, not_after] from now,
// not yet signed. `issuer` null: self-issued.
absl::StatusOr<Cert> NewCertificate(EVP_PKEY* key, const CertificateSpec& spec, X509* issuer) {
  Cert cert(X509_new());
  if (cert == nullptr) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return OpenSslError("RAND_bytes");
  serial_bytes[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr), &BN_free);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), absl::ToInt64Seconds(spec.not_before));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), absl::ToInt64Seconds(spec.not_after));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  for (const std::string& organization : spec.organizations) {
    if (absl::Status s = AddName(subject, "O", organization); !s.ok()) return s;
  }
  for (const std::string& unit : spec.organizational_units) {
    if (absl::Status s = AddName(subject, "OU", unit); !s.ok()) return s;
  }
  if (absl::Status s = AddName(subject, "CN", spec.common_name); !s.ok()) return s;
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : subject);
  X509_set_pubkey(cert.get(), key);
  return cert;
}

}  // namespace

struct CertificateAuthority::Keys {
  Key key;
  Cert cert;
};

CertificateAuthority::~CertificateAuthority() = default;
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) = default;

absl::StatusOr<CertificateAuthority> CertificateAuthority::Create(const std::string& common_name,
                                                                  absl::Duration lifetime) {
  absl::StatusOr<Key> key = NewKey();
  if (!key.ok()) return key.status();
  CertificateSpec spec;
  spec.common_name = common_name;
  spec.not_after = lifetime;
  absl::StatusOr<Cert> cert = NewCertificate(key->get(), spec, nullptr);
  if (!cert.ok()) return cert.status();
  X509* raw = cert->get();
  for (const auto& [nid, value] :
       {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(raw, raw, nid, value); !s.ok()) return s;
  }
  if (X509_sign(raw, key->get(), EVP_sha256()) == 0) return OpenSslError("signing the CA");
  CertificateAuthority authority;
  authority.self_ = {ToPem(raw), ToPem(key->get())};
  authority.keys_ = std::make_unique<Keys>(Keys{*std::move(key), *std::move(cert)});
  return authority;
}

absl::StatusOr<MintedCertificate> CertificateAuthority::Issue(const CertificateSpec& spec) const {
  absl::StatusOr<Key> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<Cert> cert = NewCertificate(key->get(), spec, keys_->cert.get());
  if (!cert.ok()) return cert.status();
  X509* raw = cert->get();
  std::vector<std::string> usages;
  if (spec.server) usages.push_back("serverAuth");
  if (spec.client) usages.push_back("clientAuth");
  std::vector<std::string> alt_names;
  for (const std::string& name : spec.dns_names) alt_names.push_back("DNS:" + name);
  for (const std::string& address : spec.ip_addresses) alt_names.push_back("IP:" + address);
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, absl::StrJoin(usages, ",")},
      {NID_authority_key_identifier, "keyid"}};
  if (!alt_names.empty())
    extensions.push_back({NID_subject_alt_name, absl::StrJoin(alt_names, ",")});
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(raw, keys_->cert.get(), nid, value); !s.ok()) return s;
  }
  if (X509_sign(raw, keys_->key.get(), EVP_sha256()) == 0) return OpenSslError("signing");
  return MintedCertificate{ToPem(raw), ToPem(key->get())};
}

absl::StatusOr<std::string> CertificateAuthority::RevocationList(
    const std::vector<std::string>& revoked_cert_pems, absl::Duration lifetime) const {
  RevocationListSpec spec;
  spec.revoked_cert_pems = revoked_cert_pems;
  spec.next_update = lifetime;
  return RevocationList(spec);
}

absl::StatusOr<std::string> CertificateAuthority::RevocationList(
    const RevocationListSpec& spec) const {
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(X509_CRL_new(), &X509_CRL_free);
  if (crl == nullptr) return OpenSslError("X509_CRL_new");
  X509_CRL_set_version(crl.get(), 1);  // v2
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(keys_->cert.get()));
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> now(
      X509_gmtime_adj(nullptr, absl::ToInt64Seconds(spec.last_update)), &ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(
      X509_gmtime_adj(nullptr, absl::ToInt64Seconds(spec.next_update)), &ASN1_TIME_free);
  if (now == nullptr || next == nullptr) return OpenSslError("X509_gmtime_adj");
  X509_CRL_set1_lastUpdate(crl.get(), now.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  if (spec.number >= 0) {
    std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> number(ASN1_INTEGER_new(),
                                                                       &ASN1_INTEGER_free);
    if (number == nullptr || ASN1_INTEGER_set_int64(number.get(), spec.number) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
      return OpenSslError("adding the CRL number");
    }
  }
  for (const std::string& pem : spec.revoked_cert_pems) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) return absl::InvalidArgumentError("not a PEM certificate to revoke");
    X509_REVOKED* revoked = X509_REVOKED_new();
    if (revoked == nullptr) return OpenSslError("X509_REVOKED_new");
    X509_REVOKED_set_serialNumber(revoked, X509_get_serialNumber(cert.get()));
    X509_REVOKED_set_revocationDate(revoked, now.get());
    X509_CRL_add0_revoked(crl.get(), revoked);
  }
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), keys_->key.get(), EVP_sha256()) == 0) {
    return OpenSslError("signing the CRL");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_X509_CRL(out.get(), crl.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> HashedCrlFileName(const std::string& crl_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size())), &BIO_free);
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(
      PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), &X509_CRL_free);
  if (crl == nullptr) return absl::InvalidArgumentError("not a PEM CRL");
  int ok = 0;
  const unsigned long hash =
      X509_NAME_hash_ex(X509_CRL_get_issuer(crl.get()), nullptr, nullptr, &ok);
  if (ok != 1) return OpenSslError("hashing the CRL's issuer");
  return absl::StrFormat("%08lx.r0", hash);
}

}  // namespace tended
