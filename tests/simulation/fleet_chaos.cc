// The simulation's chaos: what one step may do to the fleet and its coordinator, and the
// faults themselves (restarts, outages, a lost state, a second coordinator, spoofed and
// hostile requests, withdrawn needs, power cycles, corrupted journals, force-releases,
// halts, failed calls).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "coordinator/state/embedded_ledger.h"
#include "tests/fakes/agent_requests.h"
#include "tests/simulation/simulated_fleet.h"

namespace tended::simulation {

using ::tended::coordinator::Coordinator;
using ::tended::testing::InProcessCoordinatorClient;
using ::tended::v1::Lease;

void Fleet::ChaosStep() {
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

void Fleet::LoseState() {
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

void Fleet::SecondCoordinator() {
  ++stats_.second_coordinators;
  coordinator::state::EmbeddedLedger::Options options;
  options.dir = harness_->state_dir();
  options.synchronous = true;
  auto second = coordinator::state::EmbeddedLedger::Open(options);
  if (second.ok() || !absl::IsFailedPrecondition(second.status())) {
    Fail(absl::StrCat("a second coordinator opened the state: ", second.status().ToString()));
  }
}

void Fleet::Spoof(size_t index) {
  Coordinator* current = coordinator();
  if (current == nullptr) return;
  ++stats_.spoofed_reports;
  SimNode& node = nodes_[index];
  tended::v1::ReportFactsRequest spoof =
      testing::FactsReport(node.name, absl::StrCat("spoofed-boot-", step_), false, "spoofer-0000");
  spoof.mutable_facts()->set_node_name(node.name);
  auto answered = current->ReportFacts(spoof);
  Trace(absl::StrCat("spoofed report for ", node.name, ": ", answered.status().ToString()));
}

void Fleet::Hostile(size_t index) {
  Coordinator* current = coordinator();
  if (current == nullptr) return;
  ++stats_.hostile_requests;
  SimNode& node = nodes_[index];
  auto k8s = current->AcquireLease(
      testing::LeaseRequest(node.name, tended::v1::LEASE_KIND_K8S_UPGRADE, "chaos"));
  if (k8s.ok() && k8s->has_lease()) Fail(absl::StrCat("a k8s_upgrade lease was granted"));
  auto huge = current->AcquireLease(
      testing::LeaseRequest(node.name, tended::v1::LEASE_KIND_REBOOT, std::string(100000, 'x')));
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

void Fleet::WithdrawNeed(size_t index) {
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

void Fleet::RestartAgent(size_t index) {
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

InProcessCoordinatorClient::Fault Fleet::NextFault() {
  if (fault_rate_ <= 0 || !std::bernoulli_distribution(fault_rate_)(fault_rng_)) {
    return InProcessCoordinatorClient::Fault::kNone;
  }
  return std::bernoulli_distribution(0.5)(fault_rng_)
             ? InProcessCoordinatorClient::Fault::kUnreachable
             : InProcessCoordinatorClient::Fault::kLoseResponse;
}

void Fleet::PowerCycle(size_t index) {
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

void Fleet::CorruptJournal(size_t index) {
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

void Fleet::ForceReleaseSomeLease() {
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

void Fleet::ToggleHalt() {
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

}  // namespace tended::simulation
