// A reboot for demos and tests, acted out inside the agent's root as if the node had just come
// back: a new random boot id, btime set to now, and /run and /var/run emptied like the fresh
// tmpfs a real boot mounts. It refuses the host root, so it can never touch a real node.
#ifndef TENDED_AGENT_SIMULATED_REBOOTER_H_
#define TENDED_AGENT_SIMULATED_REBOOTER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/rebooter.h"
#include "common/clock.h"
#include "common/root_path.h"

namespace tended::agent {

class SimulatedRebooter final : public Rebooter {
 public:
  // Fails when `root` is the host root ("/", empty, or anything resolving to "/") or does not
  // exist.
  static absl::StatusOr<std::unique_ptr<SimulatedRebooter>> Create(const RootPath& root,
                                                                   const Clock& clock);

  // Prefer Create(); Reboot() repeats its checks either way. `clock` must outlive this.
  SimulatedRebooter(RootPath root, const Clock& clock);

  // Clears <root>/run and <root>/var/run (only what resolves inside the root; a var/run
  // symlink stays, its target is emptied when inside the root), writes btime=now into
  // <root>/proc/stat and a new boot id into <root>/proc/sys/kernel/random/boot_id, in that
  // order. Thread-safe; calls are serialized.
  absl::Status Reboot(absl::string_view reason) override;
  bool simulated() const override { return true; }

  int reboot_count() const;

  // A random version 4 UUID in lowercase, the format of the kernel's boot_id.
  static std::string NewBootId();

 private:
  const RootPath root_;
  const Clock& clock_;
  mutable absl::Mutex mutex_;
  int reboot_count_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_SIMULATED_REBOOTER_H_
