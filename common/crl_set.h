// The certificate revocation lists of one folder, checked by the coordinator after the
// handshake so that a CRL rewritten in place applies to the next call without a restart.
// Every regular file there (symlinks followed, dot files skipped) that holds CRLs, PEM or
// DER, signed by a CA of the trusted bundle is loaded; per issuer the newest CRL applies
// (the higher CRL number when both have one, else the later lastUpdate; on a tie the union
// of what they revoke). The folder is looked at again at most every refresh interval of
// the injected Clock and reloaded when a file's name, size, modification time or inode, or
// the CA bundle's, changed. A file that does not load (garbage, half-written, another CA's,
// too big) is logged and counted and never stops the others; when it loaded before, its
// previous CRL stays in force until it loads again or is removed. Thread-safe.
#ifndef TENDED_COMMON_CRL_SET_H_
#define TENDED_COMMON_CRL_SET_H_

#include <openssl/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/file_util.h"

namespace tended {

// The serial number of a certificate as CrlSet compares it: upper-case hex, no leading
// zeros ("0" for zero), "-" in front of a negative one.
std::string SerialHex(absl::string_view big_endian_magnitude, bool negative);

// What Find takes for a certificate: its issuer name (DER) and serial (SerialHex).
struct RevocationKey {
  std::string issuer_der;
  std::string serial;
};
RevocationKey RevocationKeyOf(const X509* certificate);
// The same for the first certificate of a PEM.
absl::StatusOr<RevocationKey> RevocationKeyOfPem(absl::string_view pem);

class CrlSet {
 public:
  struct Options {
    std::string directory;
    // PEM bundle: a CRL counts only when one of these certificates signed it.
    std::string ca_file;
    absl::Duration refresh_interval = absl::Seconds(10);
    // Bounds on what one reload reads: files looked at (the rest are rejected), the size
    // of one file, and the bytes read in all.
    size_t max_files = 1024;
    int64_t max_file_bytes = int64_t{16} << 20;
    int64_t max_total_bytes = int64_t{64} << 20;
  };

  struct Revocation {
    std::string serial;  // SerialHex.
    std::string issuer;  // The CRL issuer, one line (RFC 2253).
    std::string file;    // The file of the CRL that says so.
    absl::Time revoked_at;
  };

  // What the last reload found, for logs, metrics and tests.
  struct Stats {
    int files_loaded = 0;
    // Files that did not load at the last reload, each with why (path: reason).
    std::vector<std::string> rejected;
    int issuers = 0;
    int revoked_serials = 0;
    // Issuers whose CRL in use is past its nextUpdate at the time of asking.
    int expired = 0;
    int reloads = 0;
    absl::Time last_reload = absl::InfinitePast();
  };

  // Loads the folder once. An error only when the folder cannot be listed or the CA
  // bundle cannot be read; files that do not load are in stats().
  static absl::StatusOr<std::unique_ptr<CrlSet>> Create(Options options, const Clock& clock);

  CrlSet(const CrlSet&) = delete;
  CrlSet& operator=(const CrlSet&) = delete;

  // After a refresh when one is due: the revocation of the certificate with this serial
  // (SerialHex) whose issuer name has this DER encoding, or nullopt.
  std::optional<Revocation> Find(absl::string_view issuer_der, absl::string_view serial);

  // Refreshes when due, then the figures.
  Stats stats();

  const std::string& directory() const { return options_.directory; }

 private:
  // One CRL that loaded and verified, as kept.
  struct LoadedCrl {
    std::string issuer_der;
    std::string signer_der;  // The subject of the CA whose key verified it.
    std::string issuer_text;
    std::string number;  // SerialHex of the CRL number; empty when it has none.
    absl::Time last_update;
    absl::Time next_update = absl::InfiniteFuture();  // InfiniteFuture: none given.
    std::map<std::string, absl::Time> revoked;        // Serial -> revocation date.
  };
  struct FileCrls {
    FileStamp stamp;
    std::vector<std::shared_ptr<const LoadedCrl>> crls;
  };
  // The CRL that applies to one issuer.
  struct Issuer {
    std::string file;
    std::string text;
    absl::Time next_update;
    std::map<std::string, absl::Time> revoked;
  };
  struct Snapshot {
    // By issuer DER (the CRL's, and the signing CA's subject when encoded differently).
    std::map<std::string, std::shared_ptr<const Issuer>, std::less<>> issuers;
    int files_loaded = 0;
    std::vector<std::string> rejected;
    int revoked_serials = 0;
  };
  using Listing = std::map<std::string, FileStamp>;

  CrlSet(Options options, const Clock& clock) : options_(std::move(options)), clock_(clock) {}

  absl::Status RefreshIfDue() ABSL_LOCKS_EXCLUDED(mutex_);
  absl::StatusOr<Listing> List(std::vector<std::string>* rejected) const;
  // `ca_changed`: every file is verified again, not only those whose stamp changed.
  absl::Status Reload(const Listing& listing, std::vector<std::string> rejected, bool ca_changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Logs each issuer whose CRL in force went past its nextUpdate, once.
  void WarnAboutExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  const Clock& clock_;
  absl::Mutex mutex_;
  absl::Time next_check_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  Listing listing_ ABSL_GUARDED_BY(mutex_);
  FileStamp ca_stamp_ ABSL_GUARDED_BY(mutex_);
  bool loaded_once_ ABSL_GUARDED_BY(mutex_) = false;
  // The last CRLs that loaded from each file still in the folder.
  std::map<std::string, FileCrls> files_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mutex_);
  int reloads_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time last_reload_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  // The last problem logged with the folder or the CA bundle, so that it is logged once.
  std::string last_error_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> expired_logged_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended

#endif  // TENDED_COMMON_CRL_SET_H_
