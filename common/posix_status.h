// Converts errno values into absl::Status with the operation that failed in the message.
#ifndef TENDED_COMMON_POSIX_STATUS_H_
#define TENDED_COMMON_POSIX_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tended {

// "open /var/lib/tended/state.json: No such file or directory", with a code chosen from
// the errno (NOT_FOUND, PERMISSION_DENIED, ...).
absl::Status PosixErrorToStatus(absl::string_view operation, int error_number);

}  // namespace tended

#endif  // TENDED_COMMON_POSIX_STATUS_H_
