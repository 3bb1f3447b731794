// The fleet simulation (simulated_fleet.h): many seeded runs of a coordinator and a fleet of
// agents in one process, on a fake clock, under chaos: the coordinator restarting and going
// away, its state writes failing (it then stops and restarts from disk) or its whole state
// lost (it recovers from what the agents report), a second coordinator trying the same
// state, agents restarting and reporting slower than the coordinator wants, nodes cut off,
// spoofed reports under a node's name, hostile requests, alerts firing, halts after grants
// and force-releases. After every step it checks the one promise (DESIGN.md): never more
// disrupted nodes than the concurrency, in the lease list, in the event log and by the
// nodes' own ground truth; no reboot without a current lease proven by its fencing token,
// nor while a gate says no; never two reboots under one lease; a lease released only after
// verification. Each run then settles without chaos and must have served every reboot.
//
// Replay one run: TENDED_SIM_SEED=<seed> ./fleet_simulation_test, with TENDED_SIM_EVENTS=1
// for the chaos and the event log as they happen and TENDED_SIM_LOG=info for the logs.
// More or fewer runs: TENDED_SIM_RUNS=<n>; longer ones: TENDED_SIM_STEPS=<n>.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/core/coordinator.h"
#include "gtest/gtest.h"
#include "tests/simulation/simulated_fleet.h"

namespace tended::simulation {
namespace {

using ::tended::coordinator::Coordinator;
using ::tended::v1::Lease;

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
}  // namespace tended::simulation
