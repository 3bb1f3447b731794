#include "agent/rebooter.h"

#include "agent/logind_rebooter.h"
#include "agent/simulated_rebooter.h"
#include "common/clock.h"

namespace tended::agent {

Rebooter::~Rebooter() = default;

absl::StatusOr<std::unique_ptr<Rebooter>> MakeRebooter(const AgentConfig& config,
                                                       const RootPath& root) {
  switch (config.reboot.method) {
    case RebootMethod::kLogind:
      return std::make_unique<LogindRebooter>(root);
    case RebootMethod::kSimulate: {
      auto rebooter = SimulatedRebooter::Create(root, Clock::Real());
      if (!rebooter.ok()) return rebooter.status();
      return std::unique_ptr<Rebooter>(std::move(rebooter).value());
    }
  }
  return absl::InvalidArgumentError("unknown reboot method");
}

}  // namespace tended::agent
