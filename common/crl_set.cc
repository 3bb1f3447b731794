#include "common/crl_set.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/openssl_ptr.h"
#include "common/status_macros.h"

namespace tended {
namespace {

// The reason OpenSSL gave last, and its error queue emptied.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  std::string out;
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    out = buffer;
  }
  ERR_clear_error();
  return out;
}

std::string NameDer(const X509_NAME* name) {
  unsigned char* der = nullptr;
  const int length = i2d_X509_NAME(name, &der);
  if (length <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::string NameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string IntegerHex(const ASN1_INTEGER* value) {
  BignumPtr bn(ASN1_INTEGER_to_BN(value, nullptr));
  if (bn == nullptr) return "";
  std::string magnitude(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
  BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(magnitude.data()));
  return SerialHex(magnitude, BN_is_negative(bn.get()) != 0);
}

std::optional<absl::Time> TimeOf(const ASN1_TIME* value) {
  if (value == nullptr) return std::nullopt;
  struct tm parts {};
  if (ASN1_TIME_to_tm(value, &parts) != 1) return std::nullopt;
  return absl::FromTimeT(timegm(&parts));
}

// Hex without leading zeros, compared as numbers.
int CompareHex(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}

absl::StatusOr<std::string> ReadBounded(const std::string& path, int64_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return absl::FailedPreconditionError(std::strerror(errno));
  std::string out;
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      return absl::FailedPreconditionError(std::strerror(saved));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > limit) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("larger than ", limit, " bytes"));
    }
  }
  ::close(fd);
  return out;
}

// Every CRL in `data`: PEM blocks, else one DER CRL.
absl::StatusOr<std::vector<X509CrlPtr>> ParseCrls(absl::string_view data) {
  std::vector<X509CrlPtr> out;
  if (data.find("-----BEGIN") != absl::string_view::npos) {
    auto bio = MemoryBio(data);
    while (true) {
      X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
      if (crl == nullptr) break;
      out.push_back(std::move(crl));
    }
    const unsigned long error = ERR_peek_last_error();
    const bool clean_end = ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
    std::string why = TakeOpenSslError();
    if (out.empty() || (error != 0 && !clean_end)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not a complete PEM CRL", why.empty() ? "" : " (", why, why.empty() ? "" : ")"));
    }
    return out;
  }
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(data.data());
  X509CrlPtr crl(d2i_X509_CRL(nullptr, &cursor, static_cast<long>(data.size())));
  if (crl == nullptr ||
      cursor != reinterpret_cast<const unsigned char*>(data.data()) + data.size()) {
    TakeOpenSslError();
    return absl::InvalidArgumentError("neither a PEM nor a DER CRL");
  }
  out.push_back(std::move(crl));
  return out;
}

bool NewerThan(const std::string& number_a, absl::Time last_a, const std::string& number_b,
               absl::Time last_b, bool* tie) {
  *tie = false;
  if (!number_a.empty() && !number_b.empty()) {
    const int order = CompareHex(number_a, number_b);
    *tie = order == 0;
    return order > 0;
  }
  *tie = last_a == last_b;
  return last_a > last_b;
}

}  // namespace

std::string SerialHex(absl::string_view big_endian_magnitude, bool negative) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char byte : big_endian_magnitude) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xF]);
  }
  const size_t first = out.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  out.erase(0, first);
  return negative ? absl::StrCat("-", out) : out;
}

RevocationKey RevocationKeyOf(const X509* certificate) {
  return RevocationKey{NameDer(X509_get_issuer_name(certificate)),
                       IntegerHex(X509_get0_serialNumber(certificate))};
}

absl::StatusOr<RevocationKey> RevocationKeyOfPem(absl::string_view pem) {
  auto bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) return absl::InvalidArgumentError("not a PEM certificate");
  return RevocationKeyOf(cert.get());
}

absl::StatusOr<std::unique_ptr<CrlSet>> CrlSet::Create(Options options, const Clock& clock) {
  std::unique_ptr<CrlSet> set(new CrlSet(std::move(options), clock));
  RETURN_IF_ERROR(set->RefreshIfDue());
  return set;
}

absl::StatusOr<CrlSet::Listing> CrlSet::List(std::vector<std::string>* rejected) const {
  DIR* dir = ::opendir(options_.directory.c_str());
  if (dir == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot list the CRL directory ", options_.directory, ": ", std::strerror(errno)));
  }
  std::set<std::string> names;
  size_t seen = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    // Bounded: a folder of a million entries is not read into memory.
    if (++seen > options_.max_files * 4) break;
    names.insert(entry->d_name);
  }
  ::closedir(dir);
  Listing listing;
  size_t kept = 0;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(options_.directory, "/", name);
    absl::StatusOr<FileStamp> stamp = StampFile(path);
    if (!stamp.ok()) {
      rejected->push_back(std::string(stamp.status().message()));
      continue;
    }
    if (!stamp->regular) continue;  // Folders (a ConfigMap's ..data), devices.
    if (++kept > options_.max_files) {
      rejected->push_back(
          absl::StrCat(path, ": more than ", options_.max_files, " files in the folder; not read"));
      continue;
    }
    listing[name] = *stamp;
  }
  if (seen > options_.max_files * 4) {
    rejected->push_back(absl::StrCat(options_.directory, ": more than ", options_.max_files * 4,
                                     " entries; the rest not looked at"));
  }
  return listing;
}

absl::Status CrlSet::RefreshIfDue() {
  absl::MutexLock lock(&mutex_);
  const absl::Time now = clock_.Now();
  if (loaded_once_ && now < next_check_) return absl::OkStatus();
  next_check_ = now + options_.refresh_interval;
  std::vector<std::string> rejected;
  absl::StatusOr<Listing> listing = List(&rejected);
  absl::Status status = listing.status();
  if (listing.ok()) {
    const FileStamp ca = StampFile(options_.ca_file).value_or(FileStamp{});
    if (loaded_once_ && *listing == listing_ && ca == ca_stamp_) {
      WarnAboutExpired(now);
      return absl::OkStatus();
    }
    status = Reload(*listing, std::move(rejected), ca != ca_stamp_);
    WarnAboutExpired(now);
    if (status.ok()) {
      listing_ = *std::move(listing);
      ca_stamp_ = ca;
      loaded_once_ = true;
      last_error_.clear();
    }
  }
  if (!status.ok() && loaded_once_ && std::string(status.message()) != last_error_) {
    last_error_ = std::string(status.message());
    Logger("crl")->error("{}; the CRLs loaded before stay in force", status.message());
  }
  return status;
}

void CrlSet::WarnAboutExpired(absl::Time now) {
  if (snapshot_ == nullptr) return;
  std::set<std::string> expired;
  for (const auto& [der, issuer] : snapshot_->issuers) {
    if (issuer->next_update >= now) continue;
    expired.insert(issuer->text);
    if (expired_logged_.count(issuer->text) == 0) {
      Logger("crl")->warn(
          "the CRL of {} in {} is past its nextUpdate ({}): its revocations still apply, but "
          "the handshake refuses that CA's certificates until a current CRL is published",
          issuer->text, issuer->file, absl::FormatTime(issuer->next_update));
    }
  }
  expired_logged_ = std::move(expired);
}

absl::Status CrlSet::Reload(const Listing& listing, std::vector<std::string> rejected,
                            bool ca_changed) {
  absl::StatusOr<std::string> ca_pem = ReadBounded(options_.ca_file, options_.max_total_bytes);
  if (!ca_pem.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read the CA bundle ", options_.ca_file, ": ", ca_pem.status().message()));
  }
  std::vector<X509Ptr> cas;
  {
    auto bio = MemoryBio(*ca_pem);
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      cas.emplace_back(cert);
    }
    ERR_clear_error();
  }
  if (cas.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the CA bundle ", options_.ca_file, " holds no PEM certificate"));
  }
  std::map<std::string, FileCrls> files;
  int64_t total = 0;
  for (const auto& [name, stamp] : listing) {
    const std::string path = absl::StrCat(options_.directory, "/", name);
    auto found = files_.find(path);
    const FileCrls* previous = found != files_.end() ? &found->second : nullptr;
    if (previous != nullptr && previous->stamp == stamp && !ca_changed) {
      files.emplace(path, *previous);
      total += stamp.size;
      continue;
    }
    auto reject = [&](absl::string_view why) {
      if (previous != nullptr) {
        files.emplace(path, *previous);
        rejected.push_back(absl::StrCat(path, ": ", why, "; its previous CRL stays in force"));
      } else {
        rejected.push_back(absl::StrCat(path, ": ", why));
      }
    };
    if (stamp.size > options_.max_file_bytes) {
      reject(absl::StrCat("larger than ", options_.max_file_bytes, " bytes"));
      continue;
    }
    if (total + stamp.size > options_.max_total_bytes) {
      reject(absl::StrCat("the folder's files exceed ", options_.max_total_bytes,
                          " bytes in all; not read"));
      continue;
    }
    absl::StatusOr<std::string> data = ReadBounded(path, options_.max_file_bytes);
    if (!data.ok()) {
      reject(data.status().message());
      continue;
    }
    total += static_cast<int64_t>(data->size());
    absl::StatusOr<std::vector<X509CrlPtr>> crls = ParseCrls(*data);
    if (!crls.ok()) {
      reject(crls.status().message());
      continue;
    }
    FileCrls loaded;
    loaded.stamp = stamp;
    std::string problem;
    for (const X509CrlPtr& crl : *crls) {
      const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
      const X509* signer = nullptr;
      for (const X509Ptr& ca : cas) {
        if (X509_NAME_cmp(X509_get_subject_name(ca.get()), issuer) != 0) continue;
        EVP_PKEY* key = X509_get0_pubkey(ca.get());
        if (key != nullptr && X509_CRL_verify(crl.get(), key) == 1) {
          signer = ca.get();
          break;
        }
      }
      ERR_clear_error();
      if (signer == nullptr) {
        problem = absl::StrCat("a CRL of ", NameText(issuer), " not signed by any CA in ",
                               options_.ca_file);
        break;
      }
      if (X509_CRL_get_ext_by_NID(crl.get(), NID_delta_crl, -1) >= 0) {
        problem = "a delta CRL (not supported; publish complete CRLs)";
        break;
      }
      std::optional<absl::Time> last_update = TimeOf(X509_CRL_get0_lastUpdate(crl.get()));
      if (!last_update.has_value()) {
        problem = "a CRL without a readable lastUpdate";
        break;
      }
      auto kept = std::make_shared<LoadedCrl>();
      kept->issuer_der = NameDer(issuer);
      kept->signer_der = NameDer(X509_get_subject_name(signer));
      kept->issuer_text = NameText(issuer);
      kept->last_update = *last_update;
      if (std::optional<absl::Time> next = TimeOf(X509_CRL_get0_nextUpdate(crl.get()))) {
        kept->next_update = *next;
      }
      int critical = 0;
      Asn1IntegerPtr number(static_cast<ASN1_INTEGER*>(
          X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &critical, nullptr)));
      if (number != nullptr) kept->number = IntegerHex(number.get());
      STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
      for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
        const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
        const std::string serial = IntegerHex(X509_REVOKED_get0_serialNumber(entry));
        if (serial.empty()) continue;
        kept->revoked.emplace(
            serial, TimeOf(X509_REVOKED_get0_revocationDate(entry)).value_or(kept->last_update));
      }
      loaded.crls.push_back(std::move(kept));
    }
    ERR_clear_error();
    if (!problem.empty()) {
      reject(problem);
      continue;
    }
    files.emplace(path, std::move(loaded));
  }

  // Per issuer, the newest CRL.
  struct Choice {
    std::shared_ptr<const LoadedCrl> crl;
    std::string file;
    std::map<std::string, absl::Time> revoked;
    absl::Time next_update;
  };
  std::map<std::string, Choice> newest;
  for (const auto& [path, file] : files) {
    for (const auto& crl : file.crls) {
      auto [it, inserted] = newest.try_emplace(crl->issuer_der);
      Choice& choice = it->second;
      bool tie = false;
      if (inserted || NewerThan(crl->number, crl->last_update, choice.crl->number,
                                choice.crl->last_update, &tie)) {
        choice = Choice{crl, path, crl->revoked, crl->next_update};
      } else if (tie) {
        for (const auto& [serial, when] : crl->revoked) choice.revoked.emplace(serial, when);
        choice.next_update = std::max(choice.next_update, crl->next_update);
      }
    }
  }
  auto snapshot = std::make_shared<Snapshot>();
  for (auto& [der, choice] : newest) {
    auto issuer = std::make_shared<Issuer>();
    issuer->file = choice.file;
    issuer->text = choice.crl->issuer_text;
    issuer->next_update = choice.next_update;
    issuer->revoked = std::move(choice.revoked);
    snapshot->revoked_serials += static_cast<int>(issuer->revoked.size());
    snapshot->issuers[der] = issuer;
    snapshot->issuers.try_emplace(choice.crl->signer_der, issuer);
  }
  for (const auto& [path, file] : files) {
    if (!file.crls.empty()) ++snapshot->files_loaded;
  }
  snapshot->rejected = std::move(rejected);
  auto log = Logger("crl");
  for (const std::string& why : snapshot->rejected) log->error("CRL file rejected: {}", why);
  log->info("CRLs from {}: {} files loaded, {} rejected, {} issuers, {} serials revoked",
            options_.directory, snapshot->files_loaded, snapshot->rejected.size(), newest.size(),
            snapshot->revoked_serials);
  files_ = std::move(files);
  snapshot_ = std::move(snapshot);
  ++reloads_;
  last_reload_ = clock_.Now();
  return absl::OkStatus();
}

std::optional<CrlSet::Revocation> CrlSet::Find(absl::string_view issuer_der,
                                               absl::string_view serial) {
  (void)RefreshIfDue();
  std::shared_ptr<const Snapshot> snapshot;
  {
    absl::MutexLock lock(&mutex_);
    snapshot = snapshot_;
  }
  if (snapshot == nullptr) return std::nullopt;
  auto issuer = snapshot->issuers.find(issuer_der);
  if (issuer == snapshot->issuers.end()) return std::nullopt;
  auto revoked = issuer->second->revoked.find(std::string(serial));
  if (revoked == issuer->second->revoked.end()) return std::nullopt;
  return Revocation{revoked->first, issuer->second->text, issuer->second->file, revoked->second};
}

CrlSet::Stats CrlSet::stats() {
  (void)RefreshIfDue();
  absl::MutexLock lock(&mutex_);
  Stats out;
  out.reloads = reloads_;
  out.last_reload = last_reload_;
  if (snapshot_ == nullptr) return out;
  out.files_loaded = snapshot_->files_loaded;
  out.rejected = snapshot_->rejected;
  out.revoked_serials = snapshot_->revoked_serials;
  std::set<const Issuer*> issuers;
  for (const auto& [der, issuer] : snapshot_->issuers) issuers.insert(issuer.get());
  out.issuers = static_cast<int>(issuers.size());
  const absl::Time now = clock_.Now();
  for (const Issuer* issuer : issuers) {
    if (issuer->next_update < now) ++out.expired;
  }
  return out;
}

}  // namespace tended
