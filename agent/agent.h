// The agent's core: an event-driven state machine that reports the node's facts (with the
// lease it holds, so a coordinator that lost its state can adopt it), asks for a REBOOT
// lease when the reboot-required sentinel appears (an OS_UPGRADE lease when the apt plan
// has upgrades), and acts only under a current lease, proving it with the fencing token
// right before each disruptive act. The step in flight is journaled on disk first, so a
// crash or the reboot itself resumes it. Every call carries the installation's instance id.
//
// K8S_UPGRADE leases are never asked for: the coordinator's rollout grants them, and the
// agent runs their typed steps in order, each behind its own BeginDisruption.
//
// The files: agent.cc (events, reports, asking for leases), agent_lease.cc (acting under
// any lease: fences, renewals, returns), agent_reboot.cc, agent_os_upgrade.cc and
// agent_k8s_upgrade.cc (the kinds' steps).
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
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/apt_plan_status.h"
#include "agent/config.h"
#include "agent/coordinator_client.h"
#include "agent/k8s/step_runner.h"
#include "agent/k8s/version_check.h"
#include "agent/lease_requester.h"
#include "agent/node_facts.h"
#include "agent/os_upgrade_step.h"
#include "agent/rebooter.h"
#include "agent/service_notifier.h"
#include "common/clock.h"
#include "common/root_path.h"
#include "tended/state/v1/state.pb.h"

namespace tended::agent {

// The step a REBOOT lease journals before rebooting (BeginDisruption's step).
inline constexpr char kRebootStep[] = "reboot";

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
    // Optional: told every plan's outcome, for /metrics (AgentMetricsEndpoint).
    AptPlanStatus* apt_plan_status = nullptr;
    // Optional, together: with them the agent reports its Kubernetes packages and runs the
    // typed steps of K8S_UPGRADE leases (config.k8s.enabled).
    k8s::K8sStepRunner* k8s_steps = nullptr;
    k8s::InstalledK8sReader* k8s_installed = nullptr;
    // Optional: the scheduled version check whose findings go into the reports.
    k8s::ScheduledVersionCheck* k8s_version_check = nullptr;
    // Run the Kubernetes steps on a worker thread (the daemon); false runs them inside
    // RunOnce (tests, the simulation).
    bool k8s_in_background = true;
  };

  // Loads the journal from <root>/<state_dir>/agent-state.json and the instance id from
  // <root>/<state_dir>/agent-id (made on the first start). A corrupt journal is set aside
  // (the coordinator re-sends the leases the node holds when the stream opens).
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
  const std::string& instance_id() const { return instance_id_; }
  // The operator-facing status last set (also sent to systemd).
  const std::string& status() const { return last_status_; }
  // How often the agent reports now: the coordinator's interval once it said one.
  absl::Duration report_interval() const { return report_interval_; }
  // Forgets everything not on disk, as a process restart would.
  void SimulateRestartForTest();

 private:
  // How BeginDisruption answered, as a step acts on it.
  enum class Fence {
    kGo,           // OK: act now; the journal holds the lease the coordinator returned.
    kWait,         // Not yet (a gate blocks, the node is being prepared): keep the lease,
                   // ask again at next_lease_act_.
    kLost,         // The lease is gone or the token stale: it was forgotten.
    kUnreachable,  // The coordinator could not be asked: disconnected.
  };

  Agent(const AgentConfig& config, std::string node_name, RootPath root, Dependencies dependencies);

  absl::Status SaveJournal();
  void ClearLease(absl::string_view why);
  void AdoptLease(const tended::v1::Lease& lease, absl::string_view how);
  void NoteFencingToken(uint64_t token);
  void HandleEvents();
  absl::Status Report();
  void Disconnected(const absl::Status& why);
  void SetStatus(const std::string& status);
  // How long to wait before asking again when the coordinator says "not yet".
  absl::Duration ActRetryDelay() const;
  // How often the held lease is renewed (granted) or probed (disrupted).
  absl::Duration RenewEvery(const tended::v1::Lease& lease) const;

  // No lease held (agent.cc): asks for the lease of the first kind that needs one and
  // withdraws the others' requests. Each Handle* returns the next time it wants to run
  // (InfiniteFuture when it has nothing due).
  absl::Time HandleNoLease(bool reboot_needed);

  // Under a lease, whatever its kind (agent_lease.cc): the kind's step, then renewal.
  absl::Time HandleLease(const std::string& boot_id, bool reboot_needed);
  // BeginDisruption(step) for the held lease, naming `packages` (OS_UPGRADE).
  Fence BeginDisruption(
      absl::string_view step,
      const google::protobuf::RepeatedPtrField<tended::v1::PackageChange>& packages);
  // Unless the fence says go (nullopt), when the step should run again: at next_lease_act_
  // to ask again, now when the lease was lost, at the next connection attempt.
  std::optional<absl::Time> WakeUnlessGo(Fence fence) const;
  // Gives the held lease back. A FAILED_PRECONDITION answer is checked with RenewLease: the
  // lease is forgotten only when that is refused too (or shows it released); otherwise it is
  // kept and renewed, and the release tried again at next_lease_act_. Returns when to run
  // next.
  absl::Time ReturnLease(const std::string& reason);

  // REBOOT leases (agent_reboot.cc).
  absl::Time HandleRebootLease(const std::string& boot_id, bool reboot_needed);
  absl::Time StartReboot(const std::string& boot_id);
  absl::Time FinishReboot(bool reboot_needed);

  // OS upgrades (agent_os_upgrade.cc).
  // On start: repair dpkg, and turn a dpkg step journaled before a crash into an
  // INTERRUPTED report (never redone).
  void StartOsUpgrades();
  void FillOsUpgradeFacts(tended::v1::OsUpgradeFacts* facts) const;
  absl::Time HandleOsUpgradeLease();
  absl::Time StartOsUpgrade();
  absl::Time DeliverStepReport();

  // Kubernetes upgrades (agent_k8s_upgrade.cc).
  void FillK8sFacts(tended::v1::K8sNodeFacts* facts);
  absl::Time HandleK8sUpgradeLease();
  // Begins `step` behind the fence, journals it as in flight, and runs it.
  absl::Time StartK8sStep(const tended::v1::K8sStep& step, bool resumed);
  // Journals the finished step's report (done on success) and delivers it.
  absl::Time FinishK8sStep(const tended::v1::K8sStep& step,
                           const absl::StatusOr<k8s::StepOutcome>& outcome);
  absl::Time DeliverK8sReport();
  // The running step's outcome once it ended (once); nullopt while it runs or when none does.
  std::optional<absl::StatusOr<k8s::StepOutcome>> TakeK8sOutcome();
  bool K8sStepRunning();

  const AgentConfig& config_;
  const std::string node_name_;
  const RootPath root_;
  Dependencies deps_;
  NodeFactsReader facts_reader_;
  const std::string journal_path_;
  tended::state::v1::AgentState journal_;
  std::string instance_id_;

  bool connected_ = false;
  absl::Duration backoff_;
  absl::Time next_connect_attempt_ = absl::InfinitePast();
  absl::Time next_report_ = absl::InfinitePast();
  // The configured interval until the coordinator names its own.
  absl::Duration report_interval_;
  absl::Time next_renew_ = absl::InfinitePast();
  // When the held lease's act (BeginDisruption, a release) is tried again after the
  // coordinator said "not yet"; InfinitePast when nothing waits.
  absl::Time next_lease_act_ = absl::InfinitePast();
  std::optional<absl::Time> reboot_at_;
  bool awaiting_host_reboot_ = false;
  std::string last_status_;

  // One per lease kind the agent asks for, in priority order (the reboot first).
  std::unique_ptr<LeaseRequester> reboot_requester_;
  std::unique_ptr<LeaseRequester> os_requester_;  // With OS upgrades only.

  std::unique_ptr<OsUpgradeStep> os_;
  // The last delivered OS upgrade report (also in <state_dir>/last-os-upgrade.json).
  tended::v1::StepReport last_os_step_;

  // The last etcd snapshot this node took (also in <state_dir>/last-etcd-snapshot.json).
  tended::v1::EtcdSnapshotRecord last_snapshot_;
  bool last_snapshot_loaded_ = false;
  std::thread k8s_worker_;
  absl::Mutex k8s_mutex_;
  bool k8s_running_ ABSL_GUARDED_BY(k8s_mutex_) = false;
  std::optional<absl::StatusOr<k8s::StepOutcome>> k8s_outcome_ ABSL_GUARDED_BY(k8s_mutex_);

  absl::Mutex events_mutex_;
  std::deque<tended::v1::Directive> directives_ ABSL_GUARDED_BY(events_mutex_);
  std::optional<absl::Status> stream_ended_ ABSL_GUARDED_BY(events_mutex_);
  bool woken_ ABSL_GUARDED_BY(events_mutex_) = false;
};

// The host's name, lowercased, as the default node name.
std::string DefaultNodeName();

}  // namespace tended::agent

#endif  // TENDED_AGENT_AGENT_H_
