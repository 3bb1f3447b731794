// Building the simulated fleet, running what is due, settling, and the seeded run.
#include "tests/simulation/simulated_fleet.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/node_facts.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "coordinator/gates/window.h"
#include "coordinator/state/embedded_ledger.h"

namespace tended::simulation {

using ::tended::coordinator::AlertSnapshot;
using ::tended::coordinator::LeasePolicy;
using ::tended::testing::InProcessCoordinatorClient;
using ::tended::v1::Lease;

std::optional<int64_t> EnvInt(const char* name) {
  const char* value = std::getenv(name);
  int64_t parsed = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &parsed)) return std::nullopt;
  return parsed;
}

void PreferTmpfsForScratch() {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", /*overwrite=*/0);
  }
}

void QuietLogsUnlessAsked() {
  const char* level = std::getenv("TENDED_SIM_LOG");
  InitLogging(LogTarget::kStderr, level != nullptr ? level : "off");
}

AlertSnapshot ScriptedAlertSource::Fetch() {
  AlertSnapshot snapshot;
  snapshot.fetched_at = clock_.Now();
  if (mode_ == Mode::kBroken) {
    snapshot.status = absl::UnavailableError("connection refused");
  } else if (mode_ == Mode::kFiring) {
    snapshot.alerts.push_back({"NodeDiskFull", "firing", {{"alertname", "NodeDiskFull"}}});
  }
  return snapshot;
}

Fleet::Fleet(uint64_t seed, FleetOptions options) : seed_(seed), options_(options), rng_(seed) {
  auto alerts = std::make_unique<ScriptedAlertSource>(clock_);
  alerts_ = alerts.get();
  alert_poller_ =
      std::make_unique<coordinator::AlertPoller>(std::move(alerts), clock_, absl::Seconds(15));
}

Fleet::~Fleet() {
  for (SimNode& node : nodes_) node.agent.reset();
  nodes_.clear();
  endpoint_.Set(nullptr);
  harness_.reset();
}

bool Fleet::Start() {
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

bool Fleet::Settle() {
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
    absl::Duration by = std::clamp(next - clock_.Now(), absl::Milliseconds(500), absl::Seconds(15));
    clock_.Advance(by);
    JumpToWindowWhenIdle();
    RunDue();
    CheckInvariants();
  }
  if (failure_.empty()) Fail(absl::StrCat("did not settle: ", Describe()));
  return false;
}

void Fleet::CheckServed() {
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

void Fleet::PastFirstStartRecovery() {
  for (int i = 0; i < 30; ++i) Advance(absl::Seconds(5));
}

void Fleet::Advance(absl::Duration by) {
  ++step_;
  clock_.Advance(by);
  RunDue();
  CheckInvariants();
}

void Fleet::MakeNeedReboot(size_t index) {
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

void Fleet::RestartCoordinator() {
  StopCoordinator();
  StartCoordinator();
}

void Fleet::StopCoordinator() {
  Trace("coordinator stops");
  RememberLeases();
  endpoint_.Set(nullptr);
  harness_->Stop();
  coordinator_next_ = absl::InfinitePast();
}

void Fleet::StartCoordinator(bool recover_state) {
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
  for (int attempt = 0; attempt < 20 && !started.ok() && absl::IsUnavailable(started); ++attempt) {
    started = harness_->Start(recover_state);
  }
  if (!started.ok()) {
    Fail(absl::StrCat("coordinator start: ", started.ToString()));
    return;
  }
  endpoint_.Set(harness_->get());
  coordinator_next_ = absl::InfinitePast();
}

bool Fleet::StartAgent(SimNode& node) {
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

std::vector<Lease> Fleet::AllLeases() {
  if (coordinator() != nullptr) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(true);
    auto response = coordinator()->ListLeases(request);
    return {response.leases().begin(), response.leases().end()};
  }
  return last_leases_;
}

void Fleet::RememberLeases() {
  if (coordinator() != nullptr) last_leases_ = AllLeases();
}

std::vector<Lease> Fleet::ActiveLeases() {
  std::vector<Lease> active;
  for (Lease& lease : AllLeases()) {
    if (coordinator::state::IsActive(lease)) active.push_back(std::move(lease));
  }
  return active;
}

void Fleet::Fail(const std::string& message) {
  if (!failure_.empty()) return;
  failure_ = absl::StrCat("seed ", seed_, ", step ", step_, " (",
                          absl::FormatTime("%Y-%m-%d %H:%M:%S", clock_.Now(), absl::UTCTimeZone()),
                          "): ", message, "\n  replay: TENDED_SIM_SEED=", seed_,
                          " TENDED_SIM_EVENTS=1 TENDED_SIM_LOG=info");
}

void Fleet::Trace(const std::string& what) {
  if (std::getenv("TENDED_SIM_EVENTS") == nullptr) return;
  std::fprintf(stderr, "step %d %s: %s\n", step_,
               absl::FormatTime("%H:%M:%S", clock_.Now(), absl::UTCTimeZone()).c_str(),
               what.c_str());
}

bool Fleet::HoldsLease(const std::string& node) {
  for (const Lease& lease : ActiveLeases()) {
    if (lease.node_name() == node) return true;
  }
  return false;
}

void Fleet::RunDue() {
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

bool Fleet::Settled() {
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

void Fleet::JumpToWindowWhenIdle() {
  if (!options_.window || coordinator() == nullptr || !ActiveLeases().empty()) return;
  const LeasePolicy& policy = config_.leases.at(tended::v1::LEASE_KIND_REBOOT);
  coordinator::WindowStatus status =
      coordinator::EvaluateWindows(policy.windows, policy.expected_duration, clock_.Now());
  if (status.open || !status.next_open.has_value()) return;
  if (*status.next_open - clock_.Now() > absl::Minutes(30)) clock_.Set(*status.next_open);
}

std::string Fleet::Describe() {
  std::string text;
  for (const Lease& lease : ActiveLeases()) {
    absl::StrAppend(&text, "\n  active ", lease.id(), " ",
                    tended::v1::LeasePhase_Name(lease.phase()), " overdue=", lease.overdue(), " ",
                    lease.status_message());
  }
  for (const SimNode& node : nodes_) {
    absl::StrAppend(&text, "\n  ", node.name, ": needs=", node.needs, " withdrawn=", node.withdrawn,
                    " reboots=", node.reboots,
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

}  // namespace tended::simulation
