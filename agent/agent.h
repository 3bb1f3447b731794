// The agent's core: an event-driven state machine that reports the node's facts, asks for
// a REBOOT lease when the reboot-required sentinel appears, and reboots only under a
// current lease, proving it with the fencing token right before each disruptive act. The
// step in flight is journaled on disk first, so a crash or the reboot itself resumes it.
//
// Inputs arrive as events (Wake, directives, stream end) from other threads; RunOnce()
// does the work due at the injected clock's now and says when it next wants to run. Run()
// is the real loop around it; the fleet simulation calls RunOnce() itself.
#ifndef TENDED_AGENT_AGENT_H_
#define TENDED_AGENT_AGENT_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/config.h"
#include "agent/coordinator_client.h"
#include "agent/node_facts.h"
#include "agent/os_upgrade_step.h"
#include "agent/rebooter.h"
#include "agent/service_notifier.h"
#include "common/clock.h"
#include "common/root_path.h"
#include "tended/state/v1/state.pb.h"

namespace tended::agent {

class Agent {
 public:
  struct Dependencies {
    const Clock* clock = nullptr;
    CoordinatorClient* coordinator = nullptr;
    Rebooter* rebooter = nullptr;
    ServiceNotifier* notifier = nullptr;  // Optional.
    // Optional: with it the agent plans OS upgrades and installs them under OS_UPGRADE
    // leases (config.apt sets the schedule), and repairs an interrupted dpkg on start.
    apt::PackageManager* packages = nullptr;
    // Run list refreshes, plans and installs on a worker thread (the daemon); false runs
    // them inside RunOnce (tests, the simulation).
    bool apt_in_background = true;
  };

  // Loads the journal from <root>/<state_dir>/agent-state.json. A corrupt journal is set
  // aside (the coordinator re-sends the leases the node holds when the stream opens).
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config,
                                                       std::string node_name, RootPath root,
                                                       Dependencies dependencies);
  ~Agent();

  // Thread-safe event inputs.
  void Wake();
  void PostDirective(const tended::v1::Directive& directive);
  void PostStreamEnded(const absl::Status& status);

  // Does what is due now; returns when it next wants to run.
  absl::Time RunOnce();

  // Runs until `stop` is set (then Wake() to end the wait promptly).
  void Run(const std::atomic<bool>& stop);

  // For tests and the simulation.
  const tended::state::v1::AgentState& journal() const { return journal_; }
  bool connected() const { return connected_; }
  // Forgets everything not on disk, as a process restart would.
  void SimulateRestartForTest();

 private:
  Agent(const AgentConfig& config, std::string node_name, RootPath root,
        Dependencies dependencies);

  absl::Status SaveJournal();
  void ClearLease(absl::string_view why);
  void AdoptLease(const tended::v1::Lease& lease, absl::string_view how);
  void HandleEvents();
  absl::Status Report();
  void Disconnected(const absl::Status& why);
  // Each returns the next time it wants to run (InfiniteFuture when it has nothing due).
  absl::Time HandleLease(const std::string& boot_id, bool reboot_needed);
  absl::Time HandleNoLease(bool reboot_needed);
  absl::Time StartReboot(const std::string& boot_id);
  absl::Time FinishReboot();
  void SetStatus(const std::string& status);

  // OS upgrades (agent_os_upgrade.cc).
  // On start: repair dpkg, and turn a dpkg step journaled before a crash into an
  // INTERRUPTED report (never redone).
  void StartOsUpgrades();
  void FillOsUpgradeFacts(tended::v1::OsUpgradeFacts* facts) const;
  absl::Time HandleNoOsLease();
  absl::Time HandleOsUpgradeLease();
  absl::Time DeliverStepReport();
  void CancelOsLeaseRequest();

  const AgentConfig& config_;
  const std::string node_name_;
  const RootPath root_;
  Dependencies deps_;
  NodeFactsReader facts_reader_;
  const std::string journal_path_;
  tended::state::v1::AgentState journal_;

  bool connected_ = false;
  absl::Duration backoff_;
  absl::Time next_connect_attempt_ = absl::InfinitePast();
  absl::Time next_report_ = absl::InfinitePast();
  bool waiting_for_lease_ = false;
  absl::Time next_acquire_ = absl::InfinitePast();
  absl::Time next_renew_ = absl::InfinitePast();
  std::optional<absl::Time> reboot_at_;
  bool awaiting_host_reboot_ = false;
  std::string last_status_;

  std::unique_ptr<OsUpgradeStep> os_;
  bool waiting_for_os_lease_ = false;
  absl::Time next_os_acquire_ = absl::InfinitePast();
  // The plan being installed, for the report when Apply fails.
  apt::UpgradePlan applying_;
  // The last delivered OS upgrade report (also in <state_dir>/last-os-upgrade.json).
  tended::v1::StepReport last_os_step_;

  absl::Mutex events_mutex_;
  std::deque<tended::v1::Directive> directives_ ABSL_GUARDED_BY(events_mutex_);
  std::optional<absl::Status> stream_ended_ ABSL_GUARDED_BY(events_mutex_);
  bool woken_ ABSL_GUARDED_BY(events_mutex_) = false;
};

// The host's name, lowercased, as the default node name.
std::string DefaultNodeName();

}  // namespace tended::agent

#endif  // TENDED_AGENT_AGENT_H_
