#include "agent/service_notifier.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended::agent {
namespace {

absl::Status Notify(const std::string& message) {
  int r = sd_notify(/*unset_environment=*/0, message.c_str());
  if (r < 0) return PosixErrorToStatus(absl::StrCat("sd_notify ", message), -r);
  return absl::OkStatus();  // r == 0: not running under a service manager, nothing to say
}

}  // namespace

SystemdServiceNotifier::SystemdServiceNotifier() {
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(/*unset_environment=*/0, &usec);
  if (r > 0 && usec > 0) {
    watchdog_interval_ = absl::Microseconds(static_cast<int64_t>(usec)) / 2;
  } else if (r < 0) {
    Logger("agent")->warn("ignoring the service watchdog settings: {}",
                          PosixErrorToStatus("sd_watchdog_enabled", -r).ToString());
  }
}

absl::Status SystemdServiceNotifier::Ready() { return Notify("READY=1"); }

absl::Status SystemdServiceNotifier::Status(std::string status) {
  std::replace(status.begin(), status.end(), '\n', ' ');
  return Notify(absl::StrCat("STATUS=", status));
}

absl::Status SystemdServiceNotifier::WatchdogPing() { return Notify("WATCHDOG=1"); }

absl::Status SystemdServiceNotifier::Stopping() { return Notify("STOPPING=1"); }

}  // namespace tended::agent
