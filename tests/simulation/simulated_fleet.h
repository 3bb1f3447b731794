// The fleet simulation's model: a coordinator (CoordinatorHarness, on a real ledger) and a
// fleet of real agents in one process, linked in process and on one fake clock. Fleet runs
// the chaos (fleet_chaos.cc: restarts, outages, failed state writes, a lost state, a second
// coordinator, cut-off nodes, spoofed and hostile requests, alerts, halts, force-releases,
// power cycles) and checks the one promise after every step and at every reboot
// (fleet_invariants.cc); simulated_fleet.cc builds the fleet, runs what is due and settles.
// A run is replayed from its seed alone (RunSeed).
#ifndef TENDED_TESTS_SIMULATION_SIMULATED_FLEET_H_
#define TENDED_TESTS_SIMULATION_SIMULATED_FLEET_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/rebooter.h"
#include "agent/simulated_rebooter.h"
#include "common/clock.h"
#include "common/root_path.h"
#include "coordinator/alerts/alert_poller.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/in_process_coordinator_client.h"
#include "tests/fakes/temp_dir.h"

namespace tended::simulation {

inline constexpr char kSentinel[] = "/var/run/reboot-required";
inline constexpr absl::Duration kRebootDelay = absl::Seconds(5);
// 2026-01-01 is a Thursday; the window (when used) is open 00:10-00:35 UTC every day.
inline constexpr absl::Duration kWindowStart = absl::Minutes(10);
inline constexpr absl::Duration kWindowEnd = absl::Minutes(35);

// The integer in the environment variable `name`, if it holds one.
std::optional<int64_t> EnvInt(const char* name);

// The coordinator and the agents fsync every write; on tmpfs that costs nothing, so the
// hundreds of runs stay fast. An explicit TMPDIR wins.
void PreferTmpfsForScratch();

// Logs off unless TENDED_SIM_LOG names a level.
void QuietLogsUnlessAsked();

// What Prometheus would say: nothing firing, a firing alert, or no usable answer.
class ScriptedAlertSource final : public coordinator::AlertSource {
 public:
  enum class Mode { kQuiet, kFiring, kBroken };

  explicit ScriptedAlertSource(const Clock& clock) : clock_(clock) {}
  void set_mode(Mode mode) { mode_ = mode; }
  Mode mode() const { return mode_; }

  coordinator::AlertSnapshot Fetch() override;

 private:
  const Clock& clock_;
  Mode mode_ = Mode::kQuiet;
};

// The node's reboot: the simulation's checks run at the moment of the act, then the
// simulated reboot (new boot id, /run emptied) happens.
class CheckedRebooter final : public agent::Rebooter {
 public:
  CheckedRebooter(agent::Rebooter* inner, std::function<void()> before)
      : inner_(inner), before_(std::move(before)) {}
  absl::Status Reboot(absl::string_view reason) override {
    before_();
    return inner_->Reboot(reason);
  }
  bool simulated() const override { return true; }

 private:
  agent::Rebooter* inner_;
  std::function<void()> before_;
};

struct FleetOptions {
  int nodes = 5;
  int concurrency = 1;
  bool window = false;
};

// What a run did, so a run that never exercised anything cannot pass unnoticed.
struct FleetStats {
  int reboots = 0;
  int max_active = 0;
  int coordinator_restarts = 0;
  int agent_restarts = 0;
  int force_releases = 0;
  int power_cycles = 0;
  int state_losses = 0;
  int ledger_failures = 0;
  int second_coordinators = 0;
  int spoofed_reports = 0;
  int hostile_requests = 0;
  int begins_refused = 0;
};

struct SimNode {
  std::string name;
  std::unique_ptr<testing::TempDir> dir;
  RootPath root;
  std::unique_ptr<agent::SimulatedRebooter> simulated;
  std::unique_ptr<CheckedRebooter> rebooter;
  std::unique_ptr<testing::InProcessCoordinatorClient> client;
  // Null while the node is down.
  std::unique_ptr<agent::Agent> agent;
  absl::Time wake = absl::InfinitePast();
  bool due = true;
  absl::Time partitioned_until = absl::InfinitePast();
  // The scenario where the node never comes back from its reboot.
  bool dies_on_reboot = false;
  // A node in its reboot: its agent is down until then (InfiniteFuture: not rebooting).
  absl::Time back_at = absl::InfiniteFuture();

  int needs = 0;      // Times the sentinel appeared.
  int withdrawn = 0;  // Times it went away without a reboot.
  int reboots = 0;
  // The lease it rebooted under, until that lease is released; and when.
  std::string rebooted_under;
  absl::Time rebooted_at = absl::InfinitePast();
};

// Everything the event log has said so far, replayed.
struct EventReplay {
  uint64_t last_sequence = 0;
  uint64_t last_token = 0;
  std::map<std::string, std::string> active;  // lease id -> node
  std::set<std::string> disrupting;           // lease ids that reached DISRUPTING
  std::set<std::string> verifying;            // lease ids that reached VERIFYING
  bool halted = false;
  absl::Time last_disruption_end = absl::InfinitePast();
};

// One simulated fleet and its coordinator. The first failed check is kept in failure(),
// with the seed and step that replay it; later ones are dropped. Not thread-safe.
class Fleet {
 public:
  Fleet(uint64_t seed, FleetOptions options);
  ~Fleet();

  // Builds the coordinator and the nodes' roots and starts every agent.
  bool Start();
  // One step of chaos, then whatever is due, then the checks.
  void ChaosStep();
  // Ends the chaos and runs until every need is served and every lease released.
  bool Settle();
  // After Settle(): every need was served by exactly one reboot.
  void CheckServed();

  // For the focused scenarios.
  ScriptedAlertSource& alerts() { return *alerts_; }
  coordinator::Coordinator* coordinator() {
    return harness_ != nullptr ? harness_->get() : nullptr;
  }
  SimNode& node(int i) { return nodes_[i]; }
  const FleetStats& stats() const { return stats_; }
  const std::string& failure() const { return failure_; }
  void set_slow_reboots(bool slow) { slow_reboots_ = slow; }

  // A first start grants nothing until every agent could report (a report deadline).
  void PastFirstStartRecovery();
  void Advance(absl::Duration by);
  void MakeNeedReboot(size_t index);
  void RestartCoordinator();
  bool StartAgent(SimNode& node);
  std::vector<v1::Lease> ActiveLeases();
  // The node goes down and up outside tended (a power cut, a kernel panic): a new boot,
  // a fresh /run (so the sentinel is gone: the need was met) and a fresh agent.
  void PowerCycle(size_t index);

 private:
  // simulated_fleet.cc: the coordinator, the agents, what is due.
  void StopCoordinator();
  void StartCoordinator(bool recover_state = false);
  // What the coordinator says (or, while it is down, what its store holds).
  std::vector<v1::Lease> AllLeases();
  void RememberLeases();
  bool HoldsLease(const std::string& node);
  void Fail(const std::string& message);
  // TENDED_SIM_EVENTS=1 prints the chaos and the event log as they happen.
  void Trace(const std::string& what);
  int Uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  size_t Pick() { return static_cast<size_t>(Uniform(0, static_cast<int>(nodes_.size()) - 1)); }
  // Ticks the coordinator and runs every agent that is due, pumping directives between,
  // a few rounds so that what one agent's call set off reaches the others.
  void RunDue();
  bool Settled();
  // Past the window's close nothing can be granted until it opens tomorrow: skip the
  // night rather than simulate it tick by tick. Only when nothing is in flight.
  void JumpToWindowWhenIdle();
  std::string Describe();

  // fleet_chaos.cc: the faults.
  // The state volume comes back empty (an unmounted volume, a changed path). Whether the
  // folder keeps its LOCK decides whether the coordinator can tell; either way it must
  // recover from the agents without ever granting a second node in the meantime.
  void LoseState();
  // A second coordinator on the same state must not start.
  void SecondCoordinator();
  // Someone reports under a node's name with another agent instance: a new boot id, no
  // reboot required. It must never verify a reboot or release a lease.
  void Spoof(size_t index);
  // Hostile or broken requests: refused with INVALID_ARGUMENT or FAILED_PRECONDITION, and
  // a k8s_upgrade lease is never granted.
  void Hostile(size_t index);
  void WithdrawNeed(size_t index);
  void RestartAgent(size_t index);
  testing::InProcessCoordinatorClient::Fault NextFault();
  // The agent's journal is garbage after a crash: it starts afresh from what the
  // coordinator tells it.
  void CorruptJournal(size_t index);
  void ForceReleaseSomeLease();
  void ToggleHalt();

  // fleet_invariants.cc: the checks of the promise.
  // (b) and (d): runs inside the agent, at the moment of the reboot.
  void BeforeReboot(size_t index);
  // (a) the lease list and (c) the event log, after every step.
  void CheckInvariants();
  void CheckEventLog(int limit);
  // No disruption starts while a gate says no: the gates the log lets us check.
  void CheckGrantPassedGates(const v1::Event& grant);

  const uint64_t seed_;
  const FleetOptions options_;
  std::mt19937 rng_;
  testing::FakeClock clock_;
  coordinator::CoordinatorConfig config_;
  agent::AgentConfig agent_config_;
  std::unique_ptr<testing::CoordinatorHarness> harness_;
  double write_failure_rate_ = 0;
  // What the coordinator last listed, for the checks while it is down.
  std::vector<v1::Lease> last_leases_;
  bool recovering_ = false;
  std::set<std::string> force_released_;
  absl::Time state_lost_at_ = absl::InfinitePast();
  // Chaos runs: a reboot takes seconds to minutes, during which the node is down.
  bool slow_reboots_ = true;
  // Its own stream, so faults do not shift the chaos when a call is added or removed.
  std::mt19937 fault_rng_{static_cast<std::mt19937::result_type>(seed_ * 104729 + 7)};
  double fault_rate_ = 0;
  std::set<std::string> power_cycled_leases_;
  ScriptedAlertSource* alerts_ = nullptr;  // Owned by alert_poller_.
  // Polled at every RunDue, as its background thread would.
  std::unique_ptr<coordinator::AlertPoller> alert_poller_;
  testing::CoordinatorEndpoint endpoint_;
  absl::Time coordinator_next_ = absl::InfinitePast();
  absl::Time outage_until_ = absl::InfinitePast();
  bool halted_ = false;
  std::vector<SimNode> nodes_;
  std::set<std::string> rebooted_leases_;
  EventReplay replay_;
  FleetStats stats_;
  int step_ = 0;
  std::string failure_;
};

struct RunResult {
  std::string failure;
  FleetStats stats;
  FleetOptions options;
};

// One chaos run of `steps` steps, then settling. The fleet's shape comes from the seed
// too, so a seed alone replays a run.
RunResult RunSeed(uint64_t seed, int steps);

}  // namespace tended::simulation

#endif  // TENDED_TESTS_SIMULATION_SIMULATED_FLEET_H_
