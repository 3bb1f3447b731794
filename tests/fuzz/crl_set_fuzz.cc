// A file in a CRL folder as CrlSet loads it. The first byte picks: the bytes as they are
// (garbage, PEM, DER: the signature check turns nearly all away), or, when the rest parses
// as a DER CRL, that CRL re-signed by the trusted CA, so that what comes after the
// signature check (times, CRL number, revoked entries) sees arbitrary contents. The file
// is loaded or rejected, never both; the set never counts more serials than the CRL lists.
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/crl_set.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/x509_mint.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

struct Fixture {
  std::string dir;
  std::string ca_file;
  EVP_PKEY* key = nullptr;
  X509* ca = nullptr;
};

std::string& ScratchDir() {
  static std::string* dir = new std::string();
  return *dir;
}

void RemoveScratch() {
  const std::string& dir = ScratchDir();
  for (const char* path : {"/crl/input.r0", "/crl", "/ca.crt"}) ::remove((dir + path).c_str());
  ::rmdir(dir.c_str());
}

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    // Every load logs what it rejected; millions of lines would only slow the run.
    tended::InitLogging(tended::LogTarget::kStderr, "off");
    auto* out = new Fixture();
    char pattern[] = "/tmp/tended-crl-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(pattern) != nullptr);
    out->dir = pattern;
    ScratchDir() = pattern;
    FUZZ_CHECK(tended::MakeDirectories(out->dir + "/crl").ok());
    auto ca = tended::CertificateAuthority::Create("tended fuzz CA", absl::Hours(24));
    FUZZ_CHECK(ca.ok());
    out->ca_file = out->dir + "/ca.crt";
    FUZZ_CHECK(tended::WriteFileAtomically(out->ca_file, ca->self().cert_pem).ok());
    BIO* key_bio =
        BIO_new_mem_buf(ca->self().key_pem.data(), static_cast<int>(ca->self().key_pem.size()));
    out->key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    BIO_free(key_bio);
    BIO* cert_bio =
        BIO_new_mem_buf(ca->self().cert_pem.data(), static_cast<int>(ca->self().cert_pem.size()));
    out->ca = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    BIO_free(cert_bio);
    FUZZ_CHECK(out->key != nullptr && out->ca != nullptr);
    std::atexit(RemoveScratch);
    return out;
  }();
  return *fixture;
}

// The CRL in `der` with the CA as issuer, signed by it; empty when `der` is no CRL.
std::string Resigned(absl::string_view der, const Fixture& fixture, int* entries) {
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der.data());
  X509_CRL* crl = d2i_X509_CRL(nullptr, &cursor, static_cast<long>(der.size()));
  if (crl == nullptr) return "";
  std::string out;
  if (X509_CRL_set_issuer_name(crl, X509_get_subject_name(fixture.ca)) == 1 &&
      X509_CRL_sign(crl, fixture.key, EVP_sha256()) > 0) {
    unsigned char* encoded = nullptr;
    const int length = i2d_X509_CRL(crl, &encoded);
    if (length > 0) {
      out.assign(reinterpret_cast<const char*>(encoded), static_cast<size_t>(length));
      OPENSSL_free(encoded);
    }
    *entries = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
  }
  X509_CRL_free(crl);
  return out;
}

void RunOne(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const Fixture& fixture = TheFixture();
  absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string contents(bytes);
  int entries = -1;
  if ((data[0] & 1) != 0) {
    contents = Resigned(bytes, fixture, &entries);
    if (contents.empty()) return;
  }
  // Written in place, without WriteFileAtomically's fsyncs (they cost most of the time).
  const std::string path = fixture.dir + "/crl/input.r0";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::write(fd, contents.data(), contents.size()) ==
             static_cast<ssize_t>(contents.size()));
  ::close(fd);

  tended::CrlSet::Options options;
  options.directory = fixture.dir + "/crl";
  options.ca_file = fixture.ca_file;
  options.max_file_bytes = 1 << 20;
  auto set = tended::CrlSet::Create(options, tended::Clock::Real());
  FUZZ_CHECK(set.ok());
  const tended::CrlSet::Stats stats = (*set)->stats();
  FUZZ_CHECK(stats.files_loaded + static_cast<int>(stats.rejected.size()) == 1);
  FUZZ_CHECK(stats.issuers <= stats.files_loaded);
  if (entries >= 0) FUZZ_CHECK(stats.revoked_serials <= entries);
  FUZZ_CHECK(!(*set)->Find("", "").has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RunOne(data, size);
  // OpenSSL keeps this thread's error queue (and the strings its errors carry) from one
  // call to the next; freed here, every run frees what it allocated, so libFuzzer's leak
  // check (a full LeakSanitizer scan whenever the counts differ) stays out of the way.
  OPENSSL_thread_stop();
  return 0;
}
