// Tells the service manager how the agent is doing: readiness, a status line, watchdog pings
// and that it is stopping (the sd_notify protocol). Without NOTIFY_SOCKET, as when run by
// hand or in tests, every call does nothing and succeeds.
#ifndef TENDED_AGENT_SERVICE_NOTIFIER_H_
#define TENDED_AGENT_SERVICE_NOTIFIER_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tended::agent {

class ServiceNotifier {
 public:
  virtual ~ServiceNotifier() = default;

  // READY=1: start-up finished (for Type=notify units this ends "activating").
  virtual absl::Status Ready() = 0;
  // STATUS=<text>: one line shown by `systemctl status`. Newlines become spaces.
  virtual absl::Status Status(std::string status) = 0;
  // WATCHDOG=1. Call every WatchdogInterval() while the agent's main loop is healthy.
  virtual absl::Status WatchdogPing() = 0;
  // STOPPING=1: an orderly shutdown began.
  virtual absl::Status Stopping() = 0;
  // How often to ping: half the service manager's watchdog timeout, or nullopt when there is
  // no watchdog for this process.
  virtual std::optional<absl::Duration> WatchdogInterval() const = 0;
};

// sd_notify()-backed. Reads WATCHDOG_USEC/WATCHDOG_PID once, at construction (do it in main()
// before threads start); NOTIFY_SOCKET is read on each call and left in the environment.
// Thread-safe.
class SystemdServiceNotifier final : public ServiceNotifier {
 public:
  SystemdServiceNotifier();

  absl::Status Ready() override;
  absl::Status Status(std::string status) override;
  absl::Status WatchdogPing() override;
  absl::Status Stopping() override;
  std::optional<absl::Duration> WatchdogInterval() const override { return watchdog_interval_; }

 private:
  std::optional<absl::Duration> watchdog_interval_;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_SERVICE_NOTIFIER_H_
