// The bearer token for API requests: a fixed one from a kubeconfig, or a service-account
// token file that the kubelet rotates (about hourly). The file is checked for a change at
// most once per interval of the injected clock, as client-go re-reads it every minute; a
// 401 from the server forces an early check. Thread-safe.
#ifndef TENDED_COORDINATOR_KUBE_TOKEN_SOURCE_H_
#define TENDED_COORDINATOR_KUBE_TOKEN_SOURCE_H_

#include <sys/types.h>

#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tended::kube {

class TokenSource {
 public:
  // A fixed token (possibly empty: no Authorization header).
  explicit TokenSource(std::string fixed_token);
  // A token file; `clock` must outlive this.
  TokenSource(std::string token_file, const Clock& clock, absl::Duration reread_interval);

  // The token to send now. A file that cannot be read keeps the last good token when there
  // is one; otherwise the error.
  absl::StatusOr<std::string> Token();

  // After a 401: re-reads the file now. True when the token changed.
  bool RefreshAfterUnauthorized();

 private:
  struct FileStamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const FileStamp&) const = default;
  };
  // Reads the file when its stamp changed (or `force`). Requires mutex_.
  absl::Status ReloadLocked(bool force);

  const std::string token_file_;
  const Clock* const clock_;
  const absl::Duration reread_interval_;
  std::mutex mutex_;
  std::string token_;
  bool loaded_ = false;
  FileStamp stamp_;
  absl::Time last_check_ = absl::InfinitePast();
};

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_TOKEN_SOURCE_H_
