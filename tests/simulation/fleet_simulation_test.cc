// The fleet simulation: many seeded runs of a coordinator and a fleet of agents in one
// process, on a fake clock, with the coordinator restarting and going away, its state
// writes failing (it then stops and restarts from disk) or its whole state lost (it recovers
// from what the agents report), a second coordinator trying the same state, agents
// restarting and reporting slower than the coordinator wants, nodes cut off, spoofed
// reports under a node's name, hostile requests, alerts firing, halts after grants and
// force-releases. After every step it checks the one promise (DESIGN.md): never more
// disrupted nodes than the concurrency, in the lease list, in the event log and by the
// nodes' own ground truth; no reboot without a current lease proven by its fencing token,
// nor while a gate says no; never two reboots under one lease; a lease released only after
// verification. Each run then settles without chaos and must have served every reboot.
//
// Replay one run: TENDED_SIM_SEED=<seed> ./fleet_simulation_test, with TENDED_SIM_EVENTS=1
// for the chaos and the event log as they happen and TENDED_SIM_LOG=info for the logs.
// More or fewer runs: TENDED_SIM_RUNS=<n>; longer ones: TENDED_SIM_STEPS=<n>.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/node_facts.h"
#include "agent/rebooter.h"
#include "agent/simulated_rebooter.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/root_path.h"
#include "coordinator/alerts/alert_poller.h"
#include "coordinator/alerts/alert_source.h"
#include "coordinator/state/embedded_ledger.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/gates/window.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/in_process_coordinator_client.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::tended::coordinator::AlertSnapshot;
using ::tended::coordinator::Coordinator;
using ::tended::coordinator::CoordinatorConfig;
using ::tended::coordinator::LeasePolicy;
using ::tended::testing::InProcessCoordinatorClient;
using ::tended::v1::Lease;

constexpr char kSentinel[] = "/var/run/reboot-required";
constexpr absl::Duration kRebootDelay = absl::Seconds(5);
// 2026-01-01 is a Thursday; the window (when used) is open 00:10-00:35 UTC every day.
constexpr absl::Duration kWindowStart = absl::Minutes(10);
constexpr absl::Duration kWindowEnd = absl::Minutes(35);

std::optional<int64_t> EnvInt(const char* name) {
  const char* value = std::getenv(name);
  int64_t parsed = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &parsed)) return std::nullopt;
  return parsed;
}

// The coordinator and the agents fsync every write; on tmpfs that costs nothing, so the
// hundreds of runs stay fast. An explicit TMPDIR wins.
void PreferTmpfsForScratch() {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", /*overwrite=*/0);
  }
}

void QuietLogsUnlessAsked() {
  const char* level = std::getenv("TENDED_SIM_LOG");
  InitLogging(LogTarget::kStderr, level != nullptr ? level : "off");
}

// What Prometheus would say: nothing firing, a firing alert, or no usable answer.
class ScriptedAlertSource final : public coordinator::AlertSource {
 public:
  enum class Mode { kQuiet, kFiring, kBroken };

  explicit ScriptedAlertSource(const Clock& clock) : clock_(clock) {}
  void set_mode(Mode mode) { mode_ = mode; }
  Mode mode() const { return mode_; }

  AlertSnapshot Fetch() override {
    AlertSnapshot snapshot;
    snapshot.fetched_at = clock_.Now();
    if (mode_ == Mode::kBroken) {
      snapshot.status = absl::UnavailableError("connection refused");
    } else if (mode_ == Mode::kFiring) {
      snapshot.alerts.push_back({"NodeDiskFull", "firing", {{"alertname", "NodeDiskFull"}}});
    }
    return snapshot;
  }

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

class Fleet {
 public:
  Fleet(uint64_t seed, FleetOptions options)
      : seed_(seed), options_(options), rng_(seed) {
    auto alerts = std::make_unique<ScriptedAlertSource>(clock_);
    alerts_ = alerts.get();
    alert_poller_ =
        std::make_unique<coordinator::AlertPoller>(std::move(alerts), clock_, absl::Seconds(15));
  }

  ~Fleet() {
    for (SimNode& node : nodes_) node.agent.reset();
    nodes_.clear();
    endpoint_.Set(nullptr);
    harness_.reset();
  }

  bool Start() {
    config_.history_limit = 200;
    config_.fleet.report_deadline = absl::Minutes(2);
    config_.fleet.report_interval = absl::Seconds(30);
    config_.alerts.prometheus_url = "http://127.0.0.1:9/";
    LeasePolicy reboot;
    reboot.concurrency = options_.concurrency;
    reboot.soak = absl::Minutes(2);
    reboot.expected_duration = absl::Minutes(5);
    reboot.renew_deadline = absl::Minutes(5);
    reboot.return_deadline = absl::Minutes(10);
    reboot.begin_wait = absl::Minutes(5);
    if (options_.window) {
      coordinator::MaintenanceWindow window;
      window.days = {absl::Weekday::monday,   absl::Weekday::tuesday, absl::Weekday::wednesday,
                     absl::Weekday::thursday, absl::Weekday::friday,  absl::Weekday::saturday,
                     absl::Weekday::sunday};
      window.start = kWindowStart;
      window.end = kWindowEnd;
      window.time_zone_name = "UTC";
      window.time_zone = absl::UTCTimeZone();
      reboot.windows.push_back(window);
    }
    config_.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    // Configured, but no flow carries it out: every request for one must be refused.
    config_.leases[tended::v1::LEASE_KIND_K8S_UPGRADE] = reboot;
    config_.fleet.return_backoff = absl::Minutes(2);
    config_.fleet.return_backoff_max = absl::Minutes(20);
    config_.alerts.max_age = absl::Minutes(1);
    harness_ = std::make_unique<testing::CoordinatorHarness>(config_, &clock_);
    if (absl::Status valid = coordinator::ValidateCoordinatorConfig(config_); !valid.ok()) {
      Fail(absl::StrCat("coordinator config: ", valid.ToString()));
      return false;
    }

    agent_config_.state_dir = "/var/lib/tended";
    // Slower than the coordinator's report deadline: the agents must follow the
    // coordinator's interval (30s) or the fleet-health gate would never open.
    agent_config_.report_interval = absl::Minutes(5);
    agent_config_.check_period = absl::Minutes(5);
    agent_config_.reconnect_initial_backoff = absl::Seconds(1);
    agent_config_.reconnect_max_backoff = absl::Seconds(60);
    agent_config_.reboot.method = agent::RebootMethod::kSimulate;
    agent_config_.reboot.sentinel = kSentinel;
    agent_config_.reboot.delay = kRebootDelay;

    StartCoordinator();
    nodes_.reserve(static_cast<size_t>(options_.nodes));
    for (int i = 0; i < options_.nodes; ++i) {
      SimNode& node = nodes_.emplace_back();
      node.name = absl::StrCat("node-", i < 10 ? "0" : "", i);
      node.dir = std::make_unique<testing::TempDir>();
      node.root = RootPath(node.dir->path());
      absl::Status made = MakeDirectories(node.root.Resolve("/proc/sys/kernel/random"));
      if (made.ok()) made = MakeDirectories(node.root.Resolve("/var/run"));
      if (made.ok()) {
        made = WriteFileAtomically(node.root.Resolve(agent::kBootIdPath),
                                   agent::SimulatedRebooter::NewBootId() + "\n");
      }
      if (made.ok()) {
        made = WriteFileAtomically(node.root.Resolve(agent::kKernelReleasePath), "6.1.0-sim\n");
      }
      if (!made.ok()) {
        Fail(absl::StrCat("building the root of ", node.name, ": ", made.ToString()));
        return false;
      }
      node.simulated = std::make_unique<agent::SimulatedRebooter>(node.root, clock_);
      const size_t index = nodes_.size() - 1;
      node.rebooter = std::make_unique<CheckedRebooter>(node.simulated.get(),
                                                        [this, index] { BeforeReboot(index); });
      node.client = std::make_unique<InProcessCoordinatorClient>(&endpoint_);
      node.client->SetFaultInjector([this](const char*) { return NextFault(); });
      if (!StartAgent(node)) return false;
    }
    return failure_.empty();
  }

  // One step of chaos, then whatever is due, then the checks.
  void ChaosStep() {
    ++step_;
    clock_.Advance(absl::Milliseconds(Uniform(500, 15000)));
    const absl::Time now = clock_.Now();

    if (coordinator() == nullptr && now >= outage_until_) StartCoordinator();
    for (SimNode& node : nodes_) {
      if (!node.client->reachable() && now >= node.partitioned_until) {
        node.client->SetReachable(true);
      }
    }
    if (Chance(0.06)) MakeNeedReboot(Pick());
    if (Chance(0.01)) WithdrawNeed(Pick());
    if (Chance(0.02)) RestartAgent(Pick());
    if (Chance(0.01) && coordinator() != nullptr) RestartCoordinator();
    if (Chance(0.004) && coordinator() != nullptr) LoseState();
    if (Chance(0.01) && coordinator() != nullptr) SecondCoordinator();
    if (Chance(0.02)) Spoof(Pick());
    if (Chance(0.02)) Hostile(Pick());
    if (Chance(0.008) && coordinator() != nullptr) {
      StopCoordinator();
      outage_until_ = now + absl::Seconds(Uniform(10, 480));
    }
    if (Chance(0.01)) {
      SimNode& node = nodes_[Pick()];
      node.client->SetReachable(false);
      Trace(absl::StrCat(node.name, " cut off"));
      node.partitioned_until = now + absl::Seconds(Uniform(10, 300));
    }
    if (Chance(0.015)) ForceReleaseSomeLease();
    if (Chance(0.008)) PowerCycle(Pick());
    if (Chance(0.005)) CorruptJournal(Pick());
    if (Chance(0.02)) {
      fault_rate_ = Chance(0.5) ? 0.0 : 0.05;
      write_failure_rate_ = Chance(0.7) ? 0.0 : 0.02;
      harness_->SetWriteFailureRate(write_failure_rate_, seed_ * 31 + static_cast<uint64_t>(step_));
    }
    if (Chance(0.006)) ToggleHalt();
    if (Chance(0.03)) {
      int roll = Uniform(0, 99);
      alerts_->set_mode(roll < 60   ? ScriptedAlertSource::Mode::kQuiet
                        : roll < 85 ? ScriptedAlertSource::Mode::kFiring
                                    : ScriptedAlertSource::Mode::kBroken);
    }
    RunDue();
    CheckInvariants();
  }

  // Ends the chaos and runs until every need is served and every lease released.
  bool Settle() {
    alerts_->set_mode(ScriptedAlertSource::Mode::kQuiet);
    fault_rate_ = 0;
    write_failure_rate_ = 0;
    harness_->SetWriteFailureRate(0, 0);
    if (coordinator() == nullptr) StartCoordinator();
    for (SimNode& node : nodes_) node.client->SetReachable(true);
    if (coordinator() != nullptr) {
      if (auto resumed = coordinator()->Resume(); !resumed.ok()) {
        Fail(absl::StrCat("resume: ", resumed.status().ToString()));
      }
      halted_ = false;
    }
    for (int i = 0; i < 20000 && failure_.empty(); ++i) {
      ++step_;
      if (Settled()) return true;
      // The operator resumes a halt the recovering coordinator set by itself.
      if (coordinator() != nullptr && i % 20 == 0) (void)coordinator()->Resume();
      // ... and force-releases what the coordinator holds loudly for an operator: a node
      // that rebooted but asks for another reboot (a lease it adopted after losing its state
      // can meet a sentinel that appeared meanwhile).
      if (coordinator() != nullptr && i % 20 == 0) {
        for (const Lease& lease : ActiveLeases()) {
          if (!lease.overdue() || lease.phase() != tended::v1::LEASE_PHASE_VERIFYING ||
              !absl::StrContains(lease.status_message(), "still reports reboot-required")) {
            continue;
          }
          tended::v1::ForceReleaseLeaseRequest release;
          release.set_lease_id(lease.id());
          release.set_reason("settling: the node rebooted and asks again");
          (void)coordinator()->ForceReleaseLease(release);
        }
      }
      absl::Time next = coordinator_next_;
      for (const SimNode& node : nodes_) {
        if (node.agent != nullptr) next = std::min(next, node.wake);
        next = std::min(next, node.back_at);
      }
      absl::Duration by =
          std::clamp(next - clock_.Now(), absl::Milliseconds(500), absl::Seconds(15));
      clock_.Advance(by);
      JumpToWindowWhenIdle();
      RunDue();
      CheckInvariants();
    }
    if (failure_.empty()) Fail(absl::StrCat("did not settle: ", Describe()));
    return false;
  }

  // After Settle(): every need was served by exactly one reboot.
  void CheckServed() {
    for (const SimNode& node : nodes_) {
      if (PathExists(node.root.Resolve(kSentinel))) {
        Fail(absl::StrCat(node.name, " still needs a reboot"));
      }
      if (node.reboots != node.needs - node.withdrawn) {
        Fail(absl::StrCat(node.name, " needed ", node.needs, " reboots (", node.withdrawn,
                          " withdrawn) but rebooted ", node.reboots, " times"));
      }
      if (!node.rebooted_under.empty()) {
        Fail(absl::StrCat(node.name, " rebooted under ", node.rebooted_under,
                          ", which was never released"));
      }
    }
  }

  // For the focused scenarios.
  ScriptedAlertSource& alerts() { return *alerts_; }
  Coordinator* coordinator() { return harness_ != nullptr ? harness_->get() : nullptr; }
  SimNode& node(int i) { return nodes_[i]; }
  const FleetStats& stats() const { return stats_; }
  const std::string& failure() const { return failure_; }

  // A first start grants nothing until every agent could report (a report deadline).
  void PastFirstStartRecovery() {
    for (int i = 0; i < 30; ++i) Advance(absl::Seconds(5));
  }

  void Advance(absl::Duration by) {
    ++step_;
    clock_.Advance(by);
    RunDue();
    CheckInvariants();
  }

  void MakeNeedReboot(size_t index) {
    SimNode& node = nodes_[index];
    const std::string sentinel = node.root.Resolve(kSentinel);
    // A sentinel that appears under a lease (after the reboot, before verification) keeps
    // that lease from verifying: the design's "sentinel gone" rule. Not what we test here.
    if (PathExists(sentinel) || HoldsLease(node.name)) return;
    absl::Status written = WriteFileAtomically(sentinel, "*** System restart required ***\n");
    if (written.ok()) {
      written = WriteFileAtomically(absl::StrCat(sentinel, ".pkgs"), "linux-image-6.1.0-sim\n");
    }
    if (!written.ok()) {
      Fail(absl::StrCat("writing the sentinel: ", written.ToString()));
      return;
    }
    ++node.needs;
    node.due = true;  // What the sentinel watcher's inotify would do.
    Trace(absl::StrCat(node.name, " needs a reboot"));
  }

  void RestartCoordinator() {
    StopCoordinator();
    StartCoordinator();
  }

  void StopCoordinator() {
    Trace("coordinator stops");
    RememberLeases();
    endpoint_.Set(nullptr);
    harness_->Stop();
    coordinator_next_ = absl::InfinitePast();
  }

  void StartCoordinator(bool recover_state = false) {
    // Once the state was lost, the operator keeps --recover-state on until recovery ends.
    recover_state = recover_state || recovering_;
    ++stats_.coordinator_restarts;
    Trace(recover_state ? "coordinator starts with --recover-state" : "coordinator starts");
    absl::Status started = harness_->Start(recover_state);
    if (!started.ok() && !recover_state && absl::IsFailedPrecondition(started)) {
      // The folder was used before but holds no state: the operator restarts with the flag.
      started = harness_->Start(/*recover_state=*/true);
    }
    // A write that failed while starting ends the process; its supervisor starts it again.
    for (int attempt = 0; attempt < 20 && !started.ok() && absl::IsUnavailable(started);
         ++attempt) {
      started = harness_->Start(recover_state);
    }
    if (!started.ok()) {
      Fail(absl::StrCat("coordinator start: ", started.ToString()));
      return;
    }
    endpoint_.Set(harness_->get());
    coordinator_next_ = absl::InfinitePast();
  }

  // The state volume comes back empty (an unmounted volume, a changed path). Whether the
  // folder keeps its LOCK decides whether the coordinator can tell; either way it must
  // recover from the agents without ever granting a second node in the meantime.
  void LoseState() {
    ++stats_.state_losses;
    const bool keep_lock = Chance(0.5);
    Trace(absl::StrCat("the coordinator's state is lost", keep_lock ? " (LOCK kept)" : ""));
    StopCoordinator();
    harness_->LoseState(keep_lock);
    state_lost_at_ = clock_.Now();
    replay_ = EventReplay();
    // An operator's halt is lost with the state; the recovering coordinator halts by itself
    // once an agent shows that a state existed (and Settle resumes it).
    halted_ = false;
    if (keep_lock) {
      absl::Status refused = harness_->Start(/*recover_state=*/false);
      if (refused.ok() || !absl::IsFailedPrecondition(refused)) {
        Fail(absl::StrCat("a coordinator started on a lost state without --recover-state: ",
                          refused.ToString()));
        return;
      }
    }
    recovering_ = true;
    StartCoordinator(/*recover_state=*/true);
  }

  // A second coordinator on the same state must not start.
  void SecondCoordinator() {
    ++stats_.second_coordinators;
    coordinator::state::EmbeddedLedger::Options options;
    options.dir = harness_->state_dir();
    options.synchronous = true;
    auto second = coordinator::state::EmbeddedLedger::Open(options);
    if (second.ok() || !absl::IsFailedPrecondition(second.status())) {
      Fail(absl::StrCat("a second coordinator opened the state: ", second.status().ToString()));
    }
  }

  // Someone reports under a node's name with another agent instance: a new boot id, no
  // reboot required. It must never verify a reboot or release a lease.
  void Spoof(size_t index) {
    Coordinator* current = coordinator();
    if (current == nullptr) return;
    ++stats_.spoofed_reports;
    SimNode& node = nodes_[index];
    tended::v1::ReportFactsRequest spoof = testing::FactsReport(
        node.name, absl::StrCat("spoofed-boot-", step_), false, "spoofer-0000");
    spoof.mutable_facts()->set_node_name(node.name);
    auto answered = current->ReportFacts(spoof);
    Trace(absl::StrCat("spoofed report for ", node.name, ": ", answered.status().ToString()));
  }

  // Hostile or broken requests: refused with INVALID_ARGUMENT or FAILED_PRECONDITION, and
  // a k8s_upgrade lease is never granted.
  void Hostile(size_t index) {
    Coordinator* current = coordinator();
    if (current == nullptr) return;
    ++stats_.hostile_requests;
    SimNode& node = nodes_[index];
    auto k8s = current->AcquireLease(
        testing::LeaseRequest(node.name, tended::v1::LEASE_KIND_K8S_UPGRADE, "chaos"));
    if (k8s.ok() && k8s->has_lease()) Fail(absl::StrCat("a k8s_upgrade lease was granted"));
    auto huge = current->AcquireLease(testing::LeaseRequest(
        node.name, tended::v1::LEASE_KIND_REBOOT, std::string(100000, 'x')));
    if (!absl::IsInvalidArgument(huge.status()) && !absl::IsUnavailable(huge.status())) {
      Fail(absl::StrCat("a 100 KB reason was not refused: ", huge.status().ToString()));
    }
    tended::v1::BeginDisruptionRequest stale;
    stale.set_lease_id(absl::StrCat("reboot-", node.name, "-999999999"));
    stale.set_fencing_token(999999999);
    stale.set_step("reboot");
    stale.set_agent_instance_id("intruder");
    if (current->BeginDisruption(stale).ok()) Fail("a made-up lease began a disruption");
  }

  bool StartAgent(SimNode& node) {
    agent::Agent::Dependencies deps;
    deps.clock = &clock_;
    deps.coordinator = node.client.get();
    deps.rebooter = node.rebooter.get();
    auto created = agent::Agent::Create(agent_config_, node.name, node.root, deps);
    if (!created.ok()) {
      Fail(absl::StrCat("agent ", node.name, ": ", created.status().ToString()));
      return false;
    }
    node.agent = *std::move(created);
    node.due = true;
    node.wake = absl::InfinitePast();
    return true;
  }

  // What the coordinator says (or, while it is down, what its store holds).
  std::vector<Lease> AllLeases() {
    if (coordinator() != nullptr) {
      tended::v1::ListLeasesRequest request;
      request.set_include_released(true);
      auto response = coordinator()->ListLeases(request);
      return {response.leases().begin(), response.leases().end()};
    }
    return last_leases_;
  }

  void RememberLeases() {
    if (coordinator() != nullptr) last_leases_ = AllLeases();
  }

  std::vector<Lease> ActiveLeases() {
    std::vector<Lease> active;
    for (Lease& lease : AllLeases()) {
      if (coordinator::state::IsActive(lease)) active.push_back(std::move(lease));
    }
    return active;
  }

  void Fail(const std::string& message) {
    if (!failure_.empty()) return;
    failure_ = absl::StrCat(
        "seed ", seed_, ", step ", step_, " (",
        absl::FormatTime("%Y-%m-%d %H:%M:%S", clock_.Now(), absl::UTCTimeZone()), "): ", message,
        "\n  replay: TENDED_SIM_SEED=", seed_, " TENDED_SIM_EVENTS=1 TENDED_SIM_LOG=info");
  }

  // TENDED_SIM_EVENTS=1 prints the chaos and the event log as they happen.
  void Trace(const std::string& what) {
    if (std::getenv("TENDED_SIM_EVENTS") == nullptr) return;
    std::fprintf(stderr, "step %d %s: %s\n", step_,
                 absl::FormatTime("%H:%M:%S", clock_.Now(), absl::UTCTimeZone()).c_str(),
                 what.c_str());
  }

  int Uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  size_t Pick() { return static_cast<size_t>(Uniform(0, static_cast<int>(nodes_.size()) - 1)); }

  bool HoldsLease(const std::string& node) {
    for (const Lease& lease : ActiveLeases()) {
      if (lease.node_name() == node) return true;
    }
    return false;
  }

  void WithdrawNeed(size_t index) {
    SimNode& node = nodes_[index];
    const std::string sentinel = node.root.Resolve(kSentinel);
    // Only while no lease is held: under a lease a withdrawal races the reboot itself.
    if (!PathExists(sentinel) || HoldsLease(node.name)) return;
    if (absl::Status removed = RemoveFileIfExists(sentinel); !removed.ok()) {
      Fail(absl::StrCat("removing the sentinel: ", removed.ToString()));
      return;
    }
    ++node.withdrawn;
    node.due = true;
    Trace(absl::StrCat(node.name, " no longer needs a reboot"));
  }

  void RestartAgent(size_t index) {
    SimNode& node = nodes_[index];
    if (node.agent == nullptr) return;
    ++stats_.agent_restarts;
    Trace(absl::StrCat(node.name, " agent restarts"));
    if (Chance(0.5)) {
      node.agent->SimulateRestartForTest();
      node.due = true;
      return;
    }
    node.agent.reset();
    StartAgent(node);
  }

  InProcessCoordinatorClient::Fault NextFault() {
    if (fault_rate_ <= 0 || !std::bernoulli_distribution(fault_rate_)(fault_rng_)) {
      return InProcessCoordinatorClient::Fault::kNone;
    }
    return std::bernoulli_distribution(0.5)(fault_rng_)
               ? InProcessCoordinatorClient::Fault::kUnreachable
               : InProcessCoordinatorClient::Fault::kLoseResponse;
  }

  // The node goes down and up outside tended (a power cut, a kernel panic): a new boot,
  // a fresh /run (so the sentinel is gone: the need was met) and a fresh agent.
  void PowerCycle(size_t index) {
    SimNode& node = nodes_[index];
    if (node.agent == nullptr) return;
    for (const Lease& lease : ActiveLeases()) {
      if (lease.node_name() == node.name) power_cycled_leases_.insert(lease.id());
    }
    const bool needed = PathExists(node.root.Resolve(kSentinel));
    node.agent.reset();
    if (absl::Status rebooted = node.simulated->Reboot("chaos: power cycle"); !rebooted.ok()) {
      Fail(absl::StrCat("power cycle of ", node.name, ": ", rebooted.ToString()));
      return;
    }
    if (needed) ++node.withdrawn;
    ++stats_.power_cycles;
    Trace(absl::StrCat(node.name, " power-cycled"));
    StartAgent(node);
  }

  // The agent's journal is garbage after a crash: it starts afresh from what the
  // coordinator tells it.
  void CorruptJournal(size_t index) {
    SimNode& node = nodes_[index];
    if (node.agent == nullptr) return;
    node.agent.reset();
    Trace(absl::StrCat(node.name, " journal corrupted"));
    absl::Status written = WriteFileAtomically(
        node.root.Resolve(absl::StrCat(agent_config_.state_dir, "/agent-state.json")), "{ \"lea");
    if (!written.ok()) {
      Fail(absl::StrCat("corrupting the journal: ", written.ToString()));
      return;
    }
    StartAgent(node);
  }

  void ForceReleaseSomeLease() {
    if (coordinator() == nullptr) return;
    std::vector<Lease> active = ActiveLeases();
    if (active.empty()) return;
    const Lease& victim =
        active[static_cast<size_t>(Uniform(0, static_cast<int>(active.size()) - 1))];
    tended::v1::ForceReleaseLeaseRequest request;
    request.set_lease_id(victim.id());
    request.set_reason("chaos: an operator force-releases");
    auto released = coordinator()->ForceReleaseLease(request);
    if (released.ok()) {
      ++stats_.force_releases;
    } else if (!absl::IsUnavailable(released.status())) {  // A failed save is fine.
      Fail(absl::StrCat("force-release of ", victim.id(), ": ", released.status().ToString()));
    }
  }

  void ToggleHalt() {
    if (coordinator() == nullptr) return;
    if (!halted_) {
      tended::v1::HaltRequest request;
      request.set_reason("chaos: an operator halts");
      auto halted = coordinator()->Halt(request);
      if (halted.ok()) {
        halted_ = true;
      } else if (!absl::IsUnavailable(halted.status())) {
        Fail(absl::StrCat("halt: ", halted.status().ToString()));
      }
    } else {
      auto resumed = coordinator()->Resume();
      if (resumed.ok()) {
        halted_ = false;
      } else if (!absl::IsUnavailable(resumed.status())) {
        Fail(absl::StrCat("resume: ", resumed.status().ToString()));
      }
    }
  }

 private:
  // Ticks the coordinator and runs every agent that is due, pumping directives between,
  // a few rounds so that what one agent's call set off reaches the others.
  void RunDue() {
    for (SimNode& node : nodes_) {
      if (node.agent == nullptr && !node.dies_on_reboot && clock_.Now() >= node.back_at) {
        node.back_at = absl::InfiniteFuture();
        Trace(absl::StrCat(node.name, " is back from its reboot"));
        StartAgent(node);
      }
    }
    harness_->SetAlerts(alert_poller_->PollOnce());
    for (int round = 0; round < 8; ++round) {
      if (harness_->running() && harness_->ledger_failed()) {
        // A failed write or fsync: the process stops and is restarted from what is on disk.
        ++stats_.ledger_failures;
        Trace("the state ledger failed: the coordinator restarts from disk");
        StopCoordinator();
        StartCoordinator();
      }
      if (coordinator() != nullptr) coordinator_next_ = coordinator()->Tick();
      bool ran = false;
      for (SimNode& node : nodes_) {
        if (node.agent == nullptr) continue;
        if (node.client->Pump() > 0) node.due = true;
        if (!node.due && clock_.Now() < node.wake) continue;
        node.due = false;
        const int reboots_before = node.reboots;
        node.wake = node.agent->RunOnce();
        ran = true;
        if (node.dies_on_reboot && node.reboots > reboots_before) {
          node.agent.reset();  // Never comes back.
        } else if (node.reboots > reboots_before && slow_reboots_ && Chance(0.7)) {
          // A real reboot takes a while: the node is down (and its lease disrupted) until
          // its agent starts again on the new boot.
          node.agent.reset();
          // Within the return deadline (10m): a node down longer is overdue, and without
          // Kubernetes a coordinator that lost its state cannot know it exists.
          node.back_at = clock_.Now() + absl::Seconds(Uniform(5, 500));
          Trace(absl::StrCat(node.name, " is down until ",
                             absl::FormatTime("%H:%M:%S", node.back_at, absl::UTCTimeZone())));
        }
      }
      if (!ran) break;
    }
  }

  // (b) and (d): runs inside the agent, at the moment of the reboot.
  void BeforeReboot(size_t index) {
    SimNode& node = nodes_[index];
    Trace(absl::StrCat(node.name, " reboots"));
    ++node.reboots;
    ++stats_.reboots;
    if (node.agent == nullptr) {
      Fail(absl::StrCat(node.name, " rebooted with no agent running"));
      return;
    }
    const auto& journal = node.agent->journal();
    if (!journal.has_lease()) {
      Fail(absl::StrCat(node.name, " rebooted with no lease in its journal"));
      return;
    }
    if (journal.step() != "reboot") {
      Fail(absl::StrCat(node.name, " rebooted without journaling the step first"));
    }
    if (!PathExists(node.root.Resolve(kSentinel))) {
      Fail(absl::StrCat(node.name, " rebooted though no reboot was required"));
    }
    if (coordinator() == nullptr) {
      Fail(absl::StrCat(node.name, " rebooted while the coordinator was down"));
      return;
    }
    const Lease* current = nullptr;
    std::vector<Lease> active = ActiveLeases();
    for (const Lease& lease : active) {
      if (lease.node_name() == node.name) current = &lease;
    }
    if (current == nullptr) {
      Fail(absl::StrCat(node.name, " rebooted under ", journal.lease().id(),
                        " but the coordinator has no active lease for it"));
      return;
    }
    if (current->fencing_token() != journal.lease().fencing_token() ||
        current->id() != journal.lease().id()) {
      Fail(absl::StrCat(node.name, " rebooted with token ", journal.lease().fencing_token(), " (",
                        journal.lease().id(), ") but the current lease is ", current->id(),
                        " with token ", current->fencing_token()));
    }
    if (current->phase() != tended::v1::LEASE_PHASE_DISRUPTING) {
      Fail(absl::StrCat(node.name, " rebooted under ", current->id(), " in phase ",
                        tended::v1::LeasePhase_Name(current->phase())));
    }
    if (!rebooted_leases_.insert(current->id()).second) {
      Fail(absl::StrCat(node.name, " rebooted twice under ", current->id()));
    }
    if (!node.rebooted_under.empty()) {
      Fail(absl::StrCat(node.name, " rebooted under ", current->id(), " while ",
                        node.rebooted_under, " from its last reboot was still held"));
    }
    // The nodes' own ground truth, whatever the coordinator remembers (a lost state too):
    // the nodes that rebooted and were not yet released.
    int disrupted_by_truth = 1;
    for (const SimNode& other : nodes_) {
      if (&other != &node && !other.rebooted_under.empty()) ++disrupted_by_truth;
    }
    if (disrupted_by_truth > options_.concurrency) {
      Fail(absl::StrCat(node.name, " rebooted while ", disrupted_by_truth - 1,
                        " other nodes were rebooted and not yet released, concurrency ",
                        options_.concurrency));
    }
    // No disruption while a gate says no: the act itself, not only the grant.
    // The coordinator's own view of the halt (an operator's call that got no answer may
    // or may not have taken effect, as with any store).
    tended::v1::ExplainGatesRequest explain;
    explain.set_kind(tended::v1::LEASE_KIND_REBOOT);
    if (auto gates = coordinator()->ExplainGates(explain);
        gates.ok() && gates->explanations_size() == 1) {
      for (const auto& gate : gates->explanations(0).gates()) {
        if (gate.gate() == "halt" && gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
          Fail(absl::StrCat(node.name, " rebooted while the fleet was halted: ", gate.reason()));
        }
      }
    }
    if (alerts_->mode() != ScriptedAlertSource::Mode::kQuiet) {
      Fail(absl::StrCat(node.name, " rebooted while an alert fired or Prometheus was broken"));
    }
    const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
    // The last fence check comes reboot.delay before the act: the window must have admitted
    // the step then.
    if (!coordinator::EvaluateWindows(policy.windows, policy.expected_duration,
                                      clock_.Now() - kRebootDelay)
             .open &&
        !coordinator::EvaluateWindows(policy.windows, policy.expected_duration, clock_.Now())
             .open) {
      Fail(absl::StrCat(node.name, " rebooted outside the maintenance window"));
    }
    node.rebooted_under = current->id();
    node.rebooted_at = clock_.Now();
  }

  void CheckInvariants() {
    if (harness_->running() && harness_->ledger_failed()) {
      ++stats_.ledger_failures;
      Trace("the state ledger failed: the coordinator restarts from disk");
      StopCoordinator();
      StartCoordinator();
    }
    const int limit = options_.concurrency;
    std::vector<Lease> all = AllLeases();
    std::map<std::string, const Lease*> by_id;
    std::set<std::string> holders;
    int active = 0;
    for (const Lease& lease : all) {
      by_id[lease.id()] = &lease;
      if (!coordinator::state::IsActive(lease)) continue;
      ++active;
      if (!holders.insert(lease.node_name()).second) {
        Fail(absl::StrCat(lease.node_name(), " holds two active leases"));
      }
    }
    stats_.max_active = std::max(stats_.max_active, active);
    // (a) the lease list.
    if (active > limit) {
      Fail(absl::StrCat(active, " active leases, concurrency ", limit));
    }
    // (c) the event log, replayed from outside.
    if (coordinator() != nullptr) CheckEventLog(limit);
    // A node that rebooted keeps its lease until it is released, after verification or
    // by an operator.
    for (SimNode& node : nodes_) {
      if (node.rebooted_under.empty()) continue;
      auto it = by_id.find(node.rebooted_under);
      if (it == by_id.end()) {
        if (state_lost_at_ < node.rebooted_at) {
          Fail(absl::StrCat(node.name, " rebooted under ", node.rebooted_under,
                            ", which the coordinator forgot"));
        } else if (node.agent != nullptr && (!node.agent->journal().has_lease() ||
                                             node.agent->journal().lease().id() !=
                                                 node.rebooted_under)) {
          // Lost with the state and with the agent's journal: nobody holds it any more,
          // and the node is back.
          node.rebooted_under.clear();
        }
        continue;
      }
      if (!coordinator::state::IsActive(*it->second)) {
        if (coordinator() != nullptr && replay_.active.count(node.rebooted_under) == 0) {
          node.rebooted_under.clear();
        }
      }
    }
  }

  void CheckEventLog(int limit) {
    for (int page = 0; page < 100; ++page) {
      tended::v1::ListEventsRequest request;
      request.set_after_sequence(replay_.last_sequence);
      request.set_limit(1000);
      auto response = coordinator()->ListEvents(request);
      if (!response.ok()) {
        Fail(absl::StrCat("ListEvents: ", response.status().ToString()));
        return;
      }
      if (response->events().empty()) return;
      for (const tended::v1::Event& event : response->events()) {
        if (event.sequence() != replay_.last_sequence + 1) {
          Fail(absl::StrCat("event ", event.sequence(), " follows ", replay_.last_sequence));
        }
        replay_.last_sequence = event.sequence();
        const std::string& id = event.lease_id();
        if (std::getenv("TENDED_SIM_EVENTS") != nullptr) {
          std::fprintf(stderr, "event %llu %s %s %s token %llu disrupted %u: %s\n",
                       static_cast<unsigned long long>(event.sequence()),
                       tended::v1::EventType_Name(event.type()).c_str(), event.node_name().c_str(),
                       id.c_str(), static_cast<unsigned long long>(event.fencing_token()),
                       event.disrupted_nodes(), event.message().c_str());
        }
        switch (event.type()) {
          case tended::v1::EVENT_TYPE_LEASE_GRANTED:
            if (event.fencing_token() <= replay_.last_token) {
              Fail(absl::StrCat("grant of ", id, " with token ", event.fencing_token(),
                                " after token ", replay_.last_token));
            }
            replay_.last_token = event.fencing_token();
            for (const auto& [other, node] : replay_.active) {
              if (node == event.node_name()) {
                Fail(absl::StrCat("grant of ", id, " while ", other, " is held by ", node));
              }
            }
            replay_.active[id] = event.node_name();
            CheckGrantPassedGates(event);
            break;
          case tended::v1::EVENT_TYPE_LEASE_ADOPTED:
            // A coordinator that lost its state took the lease over from its holder.
            for (const auto& [other, node] : replay_.active) {
              if (node == event.node_name()) {
                Fail(absl::StrCat("adoption of ", id, " while ", other, " is held by ", node));
              }
            }
            replay_.active[id] = event.node_name();
            replay_.last_token = std::max(replay_.last_token, event.fencing_token());
            if (event.lease_phase() != tended::v1::LEASE_PHASE_GRANTED) {
              replay_.disrupting.insert(id);
            }
            break;
          case tended::v1::EVENT_TYPE_HALTED:
            replay_.halted = true;
            break;
          case tended::v1::EVENT_TYPE_RESUMED:
            replay_.halted = false;
            break;
          case tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED:
            if (replay_.active.count(id) == 0) {
              Fail(absl::StrCat("phase change of ", id, ", which is not active"));
            }
            if (event.lease_phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
              replay_.disrupting.insert(id);
            } else if (event.lease_phase() == tended::v1::LEASE_PHASE_VERIFYING) {
              replay_.verifying.insert(id);
            }
            break;
          default:
            break;
        }
        if (event.type() == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED) {
          // A coordinator that loses its state may adopt it again from a holder that never
          // heard of the release: that second life ends without saying anything new.
          force_released_.insert(id);
        }
        if (!id.empty() && event.lease_phase() == tended::v1::LEASE_PHASE_RELEASED) {
          if (replay_.active.erase(id) == 0) {
            Fail(absl::StrCat("release of ", id, ", which is not active"));
          }
          // A disruption ended (verified, or force-released once begun): the soak starts.
          if (replay_.verifying.count(id) > 0 ||
              (event.type() == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED &&
               replay_.disrupting.count(id) > 0)) {
            replay_.last_disruption_end = FromProtoTimestamp(event.time());
          }
          // Short of an operator's force-release, a lease ends after verification, or is
          // given back before any disruption: never a disrupted lease that did not verify.
          if (event.type() != tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED) {
            const bool rebooted =
                rebooted_leases_.count(id) > 0 || power_cycled_leases_.count(id) > 0;
            if (rebooted && replay_.verifying.count(id) == 0 && force_released_.count(id) == 0) {
              Fail(absl::StrCat(id, " was released without verification after its reboot"));
            }
            // Given back after it began is fine only if the node never rebooted under it.
            if (!rebooted && replay_.disrupting.count(id) > 0 &&
                event.type() != tended::v1::EVENT_TYPE_LEASE_RETURNED) {
              Fail(absl::StrCat(id, " began a disruption, never rebooted, and was released"));
            }
            if (rebooted && event.type() == tended::v1::EVENT_TYPE_LEASE_RETURNED &&
                force_released_.count(id) == 0) {
              Fail(absl::StrCat(id, " was returned although its node rebooted under it"));
            }
          }
        }
        if (event.disrupted_nodes() != replay_.active.size()) {
          Fail(absl::StrCat("event ", event.sequence(), " says ", event.disrupted_nodes(),
                            " disrupted nodes; its log replayed says ", replay_.active.size()));
        }
        if (event.disrupted_nodes() > static_cast<uint32_t>(limit)) {
          Fail(absl::StrCat("event ", event.sequence(), " records ", event.disrupted_nodes(),
                            " disrupted nodes, concurrency ", limit));
        }
      }
    }
  }

  // No disruption starts while a gate says no: the gates the log lets us check.
  void CheckGrantPassedGates(const tended::v1::Event& grant) {
    const absl::Time at = FromProtoTimestamp(grant.time());
    const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
    if (replay_.halted) Fail(absl::StrCat(grant.lease_id(), " granted while halted"));
    if (at < replay_.last_disruption_end + policy.soak) {
      Fail(absl::StrCat(grant.lease_id(), " granted ",
                        absl::FormatDuration(at - replay_.last_disruption_end),
                        " after the last disruption ended, inside the soak"));
    }
    if (!coordinator::EvaluateWindows(policy.windows, policy.expected_duration, at).open) {
      Fail(absl::StrCat(grant.lease_id(), " granted outside the maintenance window"));
    }
  }

  bool Settled() {
    if (coordinator() == nullptr) return false;
    for (const SimNode& node : nodes_) {
      if (node.back_at != absl::InfiniteFuture()) return false;
      if (node.agent == nullptr) continue;
      if (PathExists(node.root.Resolve(kSentinel))) return false;
      if (node.agent->journal().has_lease()) return false;
    }
    if (!ActiveLeases().empty()) return false;
    auto explained = coordinator()->ExplainGates(tended::v1::ExplainGatesRequest());
    if (!explained.ok()) return false;
    for (const auto& explanation : explained->explanations()) {
      if (!explanation.waiting_nodes().empty()) return false;
    }
    return true;
  }

  // Past the window's close nothing can be granted until it opens tomorrow: skip the
  // night rather than simulate it tick by tick. Only when nothing is in flight.
  void JumpToWindowWhenIdle() {
    if (!options_.window || coordinator() == nullptr || !ActiveLeases().empty()) return;
    const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
    coordinator::WindowStatus status =
        coordinator::EvaluateWindows(policy.windows, policy.expected_duration, clock_.Now());
    if (status.open || !status.next_open.has_value()) return;
    if (*status.next_open - clock_.Now() > absl::Minutes(30)) clock_.Set(*status.next_open);
  }

  std::string Describe() {
    std::string text;
    for (const Lease& lease : ActiveLeases()) {
      absl::StrAppend(&text, "\n  active ", lease.id(), " ",
                      tended::v1::LeasePhase_Name(lease.phase()), " overdue=", lease.overdue(), " ",
                      lease.status_message());
    }
    for (const SimNode& node : nodes_) {
      absl::StrAppend(&text, "\n  ", node.name, ": needs=", node.needs,
                      " withdrawn=", node.withdrawn, " reboots=", node.reboots,
                      " sentinel=", PathExists(node.root.Resolve(kSentinel)));
      if (node.agent != nullptr && node.agent->journal().has_lease()) {
        absl::StrAppend(&text, " journal lease ", node.agent->journal().lease().id(), " step '",
                        node.agent->journal().step(), "'");
      }
    }
    if (coordinator() != nullptr) {
      auto explained = coordinator()->ExplainGates(tended::v1::ExplainGatesRequest());
      if (explained.ok()) {
        for (const auto& explanation : explained->explanations()) {
          if (explanation.kind() != tended::v1::LEASE_KIND_REBOOT) continue;
          for (const auto& gate : explanation.gates()) {
            absl::StrAppend(&text, "\n  gate ", gate.gate(), ": ",
                            tended::v1::GateVerdict_Name(gate.verdict()), " ", gate.reason());
          }
        }
      }
    }
    return text;
  }

  const uint64_t seed_;
  const FleetOptions options_;
  std::mt19937 rng_;
  testing::FakeClock clock_;
  CoordinatorConfig config_;
  agent::AgentConfig agent_config_;
  std::unique_ptr<testing::CoordinatorHarness> harness_;
  double write_failure_rate_ = 0;
  // What the coordinator last listed, for the checks while it is down.
  std::vector<Lease> last_leases_;
  bool recovering_ = false;
  std::set<std::string> force_released_;
  absl::Time state_lost_at_ = absl::InfinitePast();
  // Chaos runs: a reboot takes seconds to minutes, during which the node is down.
  bool slow_reboots_ = true;

 public:
  void set_slow_reboots(bool slow) { slow_reboots_ = slow; }

 private:
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

// The fleet's shape comes from the seed too, so a seed alone replays a run.
RunResult RunSeed(uint64_t seed, int steps) {
  FleetOptions options;
  options.nodes = 5 + static_cast<int>(seed % 8);
  options.concurrency = 1 + static_cast<int>((seed / 8) % 2);
  options.window = (seed / 16) % 3 == 0;
  Fleet fleet(seed, options);
  if (fleet.Start()) {
    for (int i = 0; i < steps && fleet.failure().empty(); ++i) fleet.ChaosStep();
    if (fleet.failure().empty() && fleet.Settle()) fleet.CheckServed();
  }
  return {fleet.failure(), fleet.stats(), options};
}

class FleetSimulationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PreferTmpfsForScratch();
    QuietLogsUnlessAsked();
  }
};

TEST_F(FleetSimulationTest, ThePromiseHoldsAcrossSeededChaos) {
  const int64_t runs = EnvInt("TENDED_SIM_RUNS").value_or(300);
  const int steps = static_cast<int>(EnvInt("TENDED_SIM_STEPS").value_or(250));
  std::vector<uint64_t> seeds;
  if (std::optional<int64_t> only = EnvInt("TENDED_SIM_SEED"); only.has_value()) {
    seeds.push_back(static_cast<uint64_t>(*only));
  } else {
    for (int64_t i = 1; i <= runs; ++i) seeds.push_back(static_cast<uint64_t>(i));
  }
  int failures = 0;
  FleetStats total;
  int runs_at_two = 0;
  int runs_reaching_two = 0;
  for (uint64_t seed : seeds) {
    RunResult result = RunSeed(seed, steps);
    if (!result.failure.empty()) {
      ADD_FAILURE() << result.failure;
      if (++failures >= 5) break;
      continue;
    }
    total.reboots += result.stats.reboots;
    total.coordinator_restarts += result.stats.coordinator_restarts;
    total.agent_restarts += result.stats.agent_restarts;
    total.force_releases += result.stats.force_releases;
    total.state_losses += result.stats.state_losses;
    total.ledger_failures += result.stats.ledger_failures;
    total.second_coordinators += result.stats.second_coordinators;
    total.spoofed_reports += result.stats.spoofed_reports;
    total.hostile_requests += result.stats.hostile_requests;
    if (result.options.concurrency == 2) {
      ++runs_at_two;
      if (result.stats.max_active == 2) ++runs_reaching_two;
    }
  }
  std::printf(
      "%zu runs: %d reboots, %d coordinator starts, %d agent restarts, %d "
      "force-releases, %d states lost, %d ledger failures, %d second coordinators refused, %d "
      "spoofed reports, %d hostile requests; %d of %d runs at concurrency 2 reached it\n",
      seeds.size(), total.reboots, total.coordinator_restarts, total.agent_restarts,
      total.force_releases, total.state_losses, total.ledger_failures, total.second_coordinators,
      total.spoofed_reports, total.hostile_requests, runs_reaching_two, runs_at_two);
  if (seeds.size() < 50) return;  // A replay: the totals below need many runs.
  // The chaos really happened, and concurrency 2 was really used, not merely allowed.
  EXPECT_GT(total.reboots, static_cast<int>(seeds.size()) * 3);
  EXPECT_GT(total.coordinator_restarts, static_cast<int>(seeds.size()));
  EXPECT_GT(total.agent_restarts, static_cast<int>(seeds.size()));
  EXPECT_GT(total.force_releases, static_cast<int>(seeds.size()) / 10);
  EXPECT_GT(runs_reaching_two, runs_at_two / 2);
  EXPECT_GT(total.state_losses, static_cast<int>(seeds.size()) / 2);
  EXPECT_GT(total.ledger_failures, static_cast<int>(seeds.size()) / 10);
  EXPECT_GT(total.second_coordinators, static_cast<int>(seeds.size()));
  EXPECT_GT(total.spoofed_reports, static_cast<int>(seeds.size()));
}

// A request queued before the node booted again, granted before the node could say so:
// the lease carries a boot id older than the node's. The node must still get its reboot.
TEST_F(FleetSimulationTest, LeaseGrantedOnAStaleBootIdStillLeadsToOneReboot) {
  FleetOptions options;
  options.nodes = 3;
  Fleet fleet(/*seed=*/1, options);
  ASSERT_TRUE(fleet.Start()) << fleet.failure();
  fleet.PastFirstStartRecovery();

  // Firing alerts keep node-00's request waiting in the queue.
  fleet.alerts().set_mode(ScriptedAlertSource::Mode::kFiring);
  fleet.MakeNeedReboot(0);
  fleet.Advance(absl::Seconds(1));
  ASSERT_TRUE(fleet.ActiveLeases().empty());

  // Cut off, the node goes through a power cycle (which met the need) and then needs
  // a reboot again; the coordinator has not heard of either.
  fleet.node(0).client->SetReachable(false);
  fleet.PowerCycle(0);
  fleet.MakeNeedReboot(0);
  fleet.Advance(absl::Seconds(1));

  // The alert clears: the queued request is granted on the boot id the coordinator knew.
  fleet.alerts().set_mode(ScriptedAlertSource::Mode::kQuiet);
  fleet.Advance(absl::Seconds(10));
  std::vector<Lease> active = fleet.ActiveLeases();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].node_name(), "node-00");

  fleet.node(0).client->SetReachable(true);
  ASSERT_TRUE(fleet.Settle()) << fleet.failure();
  fleet.CheckServed();
  EXPECT_EQ(fleet.node(0).reboots, 1);
  EXPECT_EQ(fleet.failure(), "");
}

tended::v1::GateExplanation ExplainReboot(Coordinator& coordinator) {
  tended::v1::ExplainGatesRequest request;
  request.set_kind(tended::v1::LEASE_KIND_REBOOT);
  auto explained = coordinator.ExplainGates(request);
  if (!explained.ok() || explained->explanations_size() != 1) return {};
  return explained->explanations(0);
}

tended::v1::GateVerdict Verdict(const tended::v1::GateExplanation& explanation,
                                const std::string& gate) {
  for (const auto& result : explanation.gates()) {
    if (result.gate() == gate) return result.verdict();
  }
  return tended::v1::GATE_VERDICT_UNSPECIFIED;
}

// A node dies in its reboot and never reports again. Its lease stays held through
// coordinator restarts and past its deadline, no other node is disrupted meanwhile, it is
// flagged overdue, and only an operator's force-release frees the slot.
TEST_F(FleetSimulationTest, ANodeThatNeverComesBackHoldsItsSlotUntilForceReleased) {
  FleetOptions options;
  options.nodes = 4;
  options.concurrency = 1;
  Fleet fleet(/*seed=*/2, options);
  ASSERT_TRUE(fleet.Start()) << fleet.failure();
  fleet.PastFirstStartRecovery();
  fleet.node(0).dies_on_reboot = true;
  fleet.MakeNeedReboot(0);
  fleet.Advance(absl::Seconds(1));
  for (int i = 1; i < 4; ++i) fleet.MakeNeedReboot(i);
  for (int i = 0; i < 100 && fleet.node(0).reboots == 0; ++i) fleet.Advance(absl::Seconds(5));
  ASSERT_EQ(fleet.node(0).reboots, 1) << fleet.failure();
  ASSERT_EQ(fleet.node(0).agent, nullptr);
  std::vector<Lease> active = fleet.ActiveLeases();
  ASSERT_EQ(active.size(), 1u);
  const Lease held = active[0];
  EXPECT_EQ(held.node_name(), "node-00");
  EXPECT_EQ(held.phase(), tended::v1::LEASE_PHASE_DISRUPTING);

  // Twenty minutes, twice its return deadline, with two coordinator restarts.
  for (int i = 0; i < 240; ++i) {
    if (i == 60 || i == 180) fleet.RestartCoordinator();
    fleet.Advance(absl::Seconds(5));
    active = fleet.ActiveLeases();
    ASSERT_EQ(active.size(), 1u) << "step " << i;
    ASSERT_EQ(active[0].id(), held.id());
    ASSERT_EQ(active[0].fencing_token(), held.fencing_token());
  }
  EXPECT_TRUE(active[0].overdue());
  for (int i = 1; i < 4; ++i) EXPECT_EQ(fleet.node(i).reboots, 0) << fleet.node(i).name;

  Coordinator& coordinator = *fleet.coordinator();
  tended::v1::ListEventsRequest events_request;
  events_request.set_limit(1000);
  auto events = coordinator.ListEvents(events_request);
  ASSERT_TRUE(events.ok());
  int overdue_events = 0;
  for (const auto& event : events->events()) {
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_OVERDUE && event.lease_id() == held.id()) {
      ++overdue_events;
    }
  }
  EXPECT_EQ(overdue_events, 1);  // Flagged once, not again after each restart.

  tended::v1::GateExplanation explanation = ExplainReboot(coordinator);
  EXPECT_FALSE(explanation.would_grant());
  EXPECT_EQ(Verdict(explanation, "concurrency"), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_EQ(explanation.waiting_nodes_size(), 3);

  tended::v1::ForceReleaseLeaseRequest release;
  release.set_lease_id(held.id());
  release.set_reason("node-00 died in its reboot; taken out for repair");
  ASSERT_TRUE(coordinator.ForceReleaseLease(release).ok());
  fleet.Advance(absl::Seconds(5));
  EXPECT_TRUE(fleet.ActiveLeases().empty());

  // The slot is free. node-00 holds no lease now, so as a known node that does not report
  // it blocks the fleet-health gate: nothing else starts while it is silent.
  explanation = ExplainReboot(*fleet.coordinator());
  EXPECT_EQ(Verdict(explanation, "concurrency"), tended::v1::GATE_VERDICT_PASS);
  EXPECT_EQ(Verdict(explanation, "fleet_health"), tended::v1::GATE_VERDICT_BLOCK);
  for (int i = 0; i < 60; ++i) fleet.Advance(absl::Seconds(5));
  EXPECT_TRUE(fleet.ActiveLeases().empty());

  // Back from repair, its agent reports again and the rest of the fleet goes through,
  // one node at a time.
  fleet.node(0).dies_on_reboot = false;
  ASSERT_TRUE(fleet.StartAgent(fleet.node(0)));
  ASSERT_TRUE(fleet.Settle()) << fleet.failure();
  fleet.CheckServed();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(fleet.node(i).reboots, 1) << fleet.node(i).name;
  EXPECT_EQ(fleet.stats().max_active, 1);
  EXPECT_EQ(fleet.failure(), "");
}

}  // namespace
}  // namespace tended
