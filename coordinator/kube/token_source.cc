#include "coordinator/kube/token_source.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended::kube {

TokenSource::TokenSource(std::string fixed_token)
    : clock_(nullptr),
      reread_interval_(absl::InfiniteDuration()),
      token_(std::move(fixed_token)),
      loaded_(true) {}

TokenSource::TokenSource(std::string token_file, const Clock& clock, absl::Duration reread_interval)
    : token_file_(std::move(token_file)), clock_(&clock), reread_interval_(reread_interval) {}

absl::StatusOr<std::string> TokenSource::Token() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (token_file_.empty()) return token_;
  absl::Time now = clock_->Now();
  if (!loaded_ || now - last_check_ >= reread_interval_) {
    last_check_ = now;
    absl::Status status = ReloadLocked(/*force=*/false);
    if (!status.ok()) {
      if (!loaded_) return status;
      Logger("kube")->warn("keeping the previous service-account token: {}", status.message());
    }
  }
  return token_;
}

bool TokenSource::RefreshAfterUnauthorized() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (token_file_.empty()) return false;
  std::string before = token_;
  last_check_ = clock_->Now();
  absl::Status status = ReloadLocked(/*force=*/true);
  if (!status.ok()) {
    Logger("kube")->warn("re-reading the token after a 401 failed: {}", status.message());
    return false;
  }
  return token_ != before;
}

absl::Status TokenSource::ReloadLocked(bool force) {
  struct stat st;
  if (::stat(token_file_.c_str(), &st) != 0) {
    return PosixErrorToStatus(absl::StrCat("stat ", token_file_), errno);
  }
  FileStamp stamp{.inode = st.st_ino,
                  .size = st.st_size,
                  .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  if (loaded_ && !force && stamp == stamp_) return absl::OkStatus();
  absl::StatusOr<std::string> contents = ReadFileToString(token_file_);
  if (!contents.ok()) return contents.status();
  std::string token(absl::StripAsciiWhitespace(*contents));
  if (token.empty()) return absl::FailedPreconditionError(absl::StrCat(token_file_, " is empty"));
  if (loaded_ && token != token_) Logger("kube")->info("service-account token rotated");
  token_ = std::move(token);
  stamp_ = stamp;
  loaded_ = true;
  return absl::OkStatus();
}

}  // namespace tended::kube
