// Owning pointers for the OpenSSL objects tended parses and checks (each freed by its own
// *_free), and a read-only memory BIO over a string, for PEM and DER reads.
#ifndef TENDED_COMMON_OPENSSL_PTR_H_
#define TENDED_COMMON_OPENSSL_PTR_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/string_view.h"

namespace tended {

template <typename T, void (*Free)(T*)>
struct OpenSslFree {
  void operator()(T* object) const { Free(object); }
};

using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509, X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, OpenSslFree<X509_CRL, X509_CRL_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY, EVP_PKEY_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<BIGNUM, BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslFree<ASN1_INTEGER, ASN1_INTEGER_free>>;

// Reads `data` in place: it must outlive the BIO.
inline BioPtr MemoryBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace tended

#endif  // TENDED_COMMON_OPENSSL_PTR_H_
