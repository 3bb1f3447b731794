// Reboots the host by asking systemd-logind over the system D-Bus
// (org.freedesktop.login1.Manager.Reboot, non-interactive), so shutdown inhibitors and
// kubelet's graceful node shutdown are honoured like any other orderly reboot.
#ifndef TENDED_AGENT_LOGIND_REBOOTER_H_
#define TENDED_AGENT_LOGIND_REBOOTER_H_

#include <string>

#include "agent/rebooter.h"
#include "common/root_path.h"

namespace tended::agent {

class LogindRebooter final : public Rebooter {
 public:
  // Connects to nothing yet. With the host root the usual system bus is used; with another
  // root (the host's / mounted at /host in a container) the bus socket under that root, so a
  // test root never reaches the real host's logind.
  explicit LogindRebooter(const RootPath& root);

  // Opens a bus connection, calls Reboot(false) and closes it. Errors carry the D-Bus error
  // name and message. Thread-safe.
  absl::Status Reboot(absl::string_view reason) override;
  bool simulated() const override { return false; }

  // Empty for the default system bus, else a D-Bus address such as "unix:path=/host/run/...".
  const std::string& bus_address() const { return bus_address_; }

 private:
  std::string bus_address_;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_LOGIND_REBOOTER_H_
