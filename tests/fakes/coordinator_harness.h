// A Coordinator as tests and the fleet simulation run it: on the real embedded ledger in a
// scratch folder (synchronous journal, so every run replays the same way), a fake clock,
// and an alert snapshot the test sets. It can be stopped and started again on the same
// state (a restart), the state can be lost (the folder emptied, as an unmounted volume
// would look) and the ledger's writes can be made to fail (then the coordinator refuses
// every change until it is restarted, as the process would be).
#ifndef TENDED_TESTS_FAKES_COORDINATOR_HARNESS_H_
#define TENDED_TESTS_FAKES_COORDINATOR_HARNESS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/alerts/deprecated_api_source.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/state/embedded_ledger.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended::testing {

class CoordinatorHarness {
 public:
  // `config.state_dir` is replaced by a scratch folder the harness owns. A null `clock`
  // means the harness's own FakeClock.
  explicit CoordinatorHarness(coordinator::CoordinatorConfig config, const Clock* clock = nullptr);
  ~CoordinatorHarness();

  // Opens the ledger and creates the coordinator (recover_state: --recover-state).
  absl::Status Start(bool recover_state = false);
  // Destroys the coordinator, then the ledger (the folder lock is released).
  void Stop();
  absl::Status Restart(bool recover_state = false);
  bool running() const { return coordinator_ != nullptr; }

  coordinator::Coordinator& coordinator() { return *coordinator_; }
  coordinator::Coordinator* get() { return coordinator_.get(); }
  coordinator::state::EmbeddedLedger& ledger() { return *ledger_; }
  FakeClock& clock() { return own_clock_; }
  const coordinator::CoordinatorConfig& config() const { return config_; }
  coordinator::CoordinatorConfig& mutable_config() { return config_; }
  const std::string& state_dir() const { return config_.state_dir; }

  // Removes every file of the state folder but, with `keep_lock`, the LOCK file. The
  // coordinator must be stopped.
  void LoseState(bool keep_lock);

  // What the alert source last said (nullopt: no answer yet). Thread-safe.
  void SetAlerts(std::optional<coordinator::AlertSnapshot> alerts);
  // Firing `name` (or nothing), fetched now.
  void SetFiring(const std::string& name);
  // The coordinator reads its alerts from `source` (an AlertPoller's Current, as the
  // program wires it) instead of SetAlerts; null goes back to SetAlerts. Takes effect at
  // the next Start; `source` must be quick and outlive the coordinator.
  void SetAlertSource(std::function<std::optional<coordinator::AlertSnapshot>()> source);

  // The coordinator's deprecated-API source (null: none configured). Takes effect at the
  // next Start; `source` must outlive the coordinator's use of it.
  void SetDeprecatedApiSource(std::shared_ptr<coordinator::DeprecatedApiSource> source) {
    deprecated_apis_ = std::move(source);
  }

  // Each write or fsync of the ledger fails with this probability (a full or failing disk).
  void SetWriteFailureRate(double rate, uint64_t seed);
  // The ledger failed since the last Start.
  bool ledger_failed() const { return ledger_failed_.load(); }

 private:
  coordinator::CoordinatorConfig config_;
  FakeClock own_clock_;
  const Clock& clock_;
  TempDir dir_;
  std::unique_ptr<coordinator::state::EmbeddedLedger> ledger_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::atomic<bool> ledger_failed_{false};

  mutable absl::Mutex mutex_;
  std::optional<coordinator::AlertSnapshot> alerts_ ABSL_GUARDED_BY(mutex_);
  std::function<std::optional<coordinator::AlertSnapshot>()> alert_source_;
  std::shared_ptr<coordinator::DeprecatedApiSource> deprecated_apis_;
  double failure_rate_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t failure_state_ ABSL_GUARDED_BY(mutex_) = 1;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_COORDINATOR_HARNESS_H_
