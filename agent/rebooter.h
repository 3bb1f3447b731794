// The seam through which the agent reboots its node: logind over D-Bus on a real host
// (logind_rebooter.h), or a simulated reboot (new boot id, fresh /run) inside a test or demo
// root (simulated_rebooter.h); the daemon's composition root (run.h) picks one. The agent
// decides *whether* to reboot (lease, fencing token); a Rebooter only carries it out.
#ifndef TENDED_AGENT_REBOOTER_H_
#define TENDED_AGENT_REBOOTER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tended::agent {

class Rebooter {
 public:
  virtual ~Rebooter();

  // Asks for the reboot. On a real host an OK return means the request was accepted and the
  // machine is going down; the caller should expect to be stopped. `reason` is logged.
  virtual absl::Status Reboot(absl::string_view reason) = 0;

  // True for the simulated rebooter: the process keeps running and sees the "next boot".
  virtual bool simulated() const = 0;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_REBOOTER_H_
