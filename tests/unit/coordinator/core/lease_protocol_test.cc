// What the lease manager's tests checked, on the new core: grants up to the concurrency
// with a fencing counter that only grows, one lease per node and no overlap of kinds,
// renewals and holder calls fenced, a silent holder flagged overdue once and still held,
// force-release and node removal only with a reason, what a restart keeps, a bounded event
// log, heartbeats that write nothing, and a failed ledger write that stops every change
// (fail-stop) instead of granting what is not durable.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

using tended::v1::Lease;
using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_KIND_REBOOT;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

coordinator::CoordinatorConfig TwoAtATime() {
  coordinator::CoordinatorConfig config = SmallFleetConfig();
  config.leases[LEASE_KIND_REBOOT].concurrency = 2;
  coordinator::LeasePolicy os;
  os.concurrency = 1;
  os.soak = absl::ZeroDuration();
  os.expected_duration = absl::Minutes(5);
  config.leases[LEASE_KIND_OS_UPGRADE] = os;
  return config;
}

tended::v1::ForceReleaseLeaseRequest Force(const Lease& lease, const std::string& reason) {
  tended::v1::ForceReleaseLeaseRequest request;
  request.set_lease_id(lease.id());
  request.set_reason(reason);
  return request;
}

class LeaseProtocolTest : public FleetFixture {
 protected:
  LeaseProtocolTest() : FleetFixture(TwoAtATime()) {}

  Lease Granted(const std::string& node, tended::v1::LeaseKind kind = LEASE_KIND_REBOOT) {
    auto asked = Ask(node, kind);
    EXPECT_TRUE(asked.ok()) << asked.status();
    return asked.ok() ? asked->lease() : Lease();
  }

  tended::v1::Node NodeNamed(const std::string& name) {
    const tended::v1::ListNodesResponse nodes = coordinator().ListNodes();
    for (const auto& node : nodes.nodes()) {
      if (node.facts().node_name() == name) return node;
    }
    return {};
  }

  std::vector<std::string> Waiting(tended::v1::LeaseKind kind) {
    tended::v1::ExplainGatesRequest request;
    request.set_kind(kind);
    auto explained = coordinator().ExplainGates(request);
    if (!explained.ok() || explained->explanations_size() != 1) return {};
    return {explained->explanations(0).waiting_nodes().begin(),
            explained->explanations(0).waiting_nodes().end()};
  }
};

TEST_F(LeaseProtocolTest, GrantsUpToTheConcurrencyWithGrowingFencingTokens) {
  BringUp({"node-a", "node-b", "node-c"});
  for (const char* node : {"node-a", "node-b", "node-c"}) ASSERT_TRUE(Report(node, true).ok());
  const Lease a = Granted("node-a");
  const Lease b = Granted("node-b");
  ASSERT_FALSE(a.id().empty());
  ASSERT_FALSE(b.id().empty());
  EXPECT_GE(a.fencing_token(), 1u);
  EXPECT_EQ(b.fencing_token(), a.fencing_token() + 1);
  EXPECT_EQ(a.phase(), tended::v1::LEASE_PHASE_GRANTED);
  EXPECT_EQ(a.boot_id_at_grant(), BootOf("node-a"));
  EXPECT_EQ(FromProtoTimestamp(a.expire_time()), clock().Now() + absl::Minutes(5));

  EXPECT_TRUE(Granted("node-c").id().empty());
  EXPECT_EQ(GateReason(LEASE_KIND_REBOOT, "concurrency"),
            "GATE_VERDICT_BLOCK: 2 of 2 reboot leases in use (held by node-a, node-b)");
  EXPECT_EQ(Active().size(), 2u);
}

TEST_F(LeaseProtocolTest, OneLeasePerNodeAndKindsDoNotOverlapByDefault) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease a = Granted("node-a");
  ASSERT_FALSE(a.id().empty());
  // Asking again answers with the lease it holds; nothing new is granted.
  EXPECT_EQ(Granted("node-a").id(), a.id());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_GRANTED), 1);
  auto other_kind = Ask("node-a", LEASE_KIND_OS_UPGRADE);
  EXPECT_TRUE(absl::IsFailedPrecondition(other_kind.status())) << other_kind.status();
  EXPECT_THAT(std::string(other_kind.status().message()), HasSubstr("one lease at a time"));

  EXPECT_TRUE(Granted("node-b", LEASE_KIND_OS_UPGRADE).id().empty());
  EXPECT_THAT(GateReason(LEASE_KIND_OS_UPGRADE, "concurrency"),
              HasSubstr("a reboot lease is active on node-a, and lease kinds may not overlap"));

  harness_.mutable_config().allow_kind_overlap = true;
  ASSERT_TRUE(harness_.Restart().ok());
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Report("node-b").ok());
  coordinator().Tick();
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[1].node_name(), "node-b");
  EXPECT_EQ(active[1].kind(), LEASE_KIND_OS_UPGRADE);
}

TEST_F(LeaseProtocolTest, AKindThatIsNotEnabledIsRefused) {
  harness_.mutable_config().leases[LEASE_KIND_OS_UPGRADE].enabled = false;
  ASSERT_TRUE(harness_.Restart().ok());
  BringUp({"node-a"});
  auto asked = Ask("node-a", LEASE_KIND_OS_UPGRADE);
  EXPECT_TRUE(absl::IsFailedPrecondition(asked.status())) << asked.status();
  EXPECT_THAT(std::string(asked.status().message()), HasSubstr("not enabled"));
  EXPECT_THAT(Waiting(LEASE_KIND_OS_UPGRADE), IsEmpty());
}

TEST_F(LeaseProtocolTest, RenewingExtendsOnlyWithTheCurrentTokenAndOnlyBeforeTheDisruption) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Granted("node-a");
  clock().Advance(absl::Minutes(3));
  auto renewed = coordinator().RenewLease(RenewRequest(lease));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(FromProtoTimestamp(renewed->lease().expire_time()), clock().Now() + absl::Minutes(5));

  tended::v1::RenewLeaseRequest stale = RenewRequest(lease);
  stale.set_fencing_token(lease.fencing_token() + 7);
  auto refused = coordinator().RenewLease(stale);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("stale fencing token"));
  EXPECT_EQ(coordinator().stats().fencing_rejections, 1u);

  // Once disrupted, the return deadline governs: renewing does not move it.
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  const absl::Time return_by = clock().Now() + absl::Minutes(15);
  clock().Advance(absl::Minutes(4));
  renewed = coordinator().RenewLease(RenewRequest(lease));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(FromProtoTimestamp(renewed->lease().expire_time()), return_by);
  EXPECT_EQ(FromProtoTimestamp(renewed->lease().renew_time()), clock().Now());
}

TEST_F(LeaseProtocolTest, AReleasedLeaseRefusesEveryHolderCallWithoutCountingIt) {
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Granted("node-a");
  ASSERT_TRUE(coordinator().ForceReleaseLease(Force(lease, "operator")).ok());
  auto begun = coordinator().BeginDisruption(BeginRequest(lease, "reboot"));
  EXPECT_TRUE(absl::IsFailedPrecondition(begun.status()));
  EXPECT_THAT(std::string(begun.status().message()), HasSubstr("released"));
  EXPECT_TRUE(absl::IsFailedPrecondition(coordinator().RenewLease(RenewRequest(lease)).status()));
  // How a holder learns its lease is gone: not a fencing rejection.
  EXPECT_EQ(coordinator().stats().fencing_rejections, 0u);
  // Force-releasing what is released or unknown.
  EXPECT_TRUE(
      absl::IsFailedPrecondition(coordinator().ForceReleaseLease(Force(lease, "again")).status()));
  Lease unknown = lease;
  unknown.set_id("reboot-node-z-99");
  EXPECT_TRUE(absl::IsNotFound(coordinator().ForceReleaseLease(Force(unknown, "typo")).status()));
}

TEST_F(LeaseProtocolTest, TheHolderMayGiveBackAGrantedLeaseWithoutBackingOff) {
  BringUp({"node-a", "node-b", "node-c"});
  for (const char* node : {"node-a", "node-b", "node-c"}) ASSERT_TRUE(Report(node, true).ok());
  const Lease a = Granted("node-a");
  ASSERT_FALSE(Granted("node-b").id().empty());
  EXPECT_TRUE(Granted("node-c").id().empty());
  auto returned = coordinator().ReleaseLease(ReleaseRequest(a, "the need went away"));
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->lease().phase(), tended::v1::LEASE_PHASE_RELEASED);
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_RETURNED), 1);
  // Nothing was disrupted: no soak, no backoff, and the slot goes to the waiting node.
  EXPECT_FALSE(NodeNamed("node-a").has_backoff_until());
  ASSERT_EQ(Active().size(), 2u);
  EXPECT_EQ(Active()[1].node_name(), "node-c");
}

TEST_F(LeaseProtocolTest, ASilentHolderIsFlaggedOverdueOnceAndKeepsItsSlot) {
  BringUp({"node-a", "node-b", "node-c"});
  for (const char* node : {"node-a", "node-b", "node-c"}) ASSERT_TRUE(Report(node, true).ok());
  const Lease a = Granted("node-a");
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(a, "reboot")).ok());
  const Lease b = Granted("node-b");  // Then stops renewing.
  ASSERT_FALSE(b.id().empty());
  EXPECT_TRUE(Granted("node-c").id().empty());

  clock().Advance(absl::Hours(48));
  ASSERT_TRUE(Report("node-c", true).ok());
  coordinator().Tick();
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 2u);  // A timeout never hands the slot on.
  EXPECT_TRUE(active[0].overdue());
  EXPECT_TRUE(active[1].overdue());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_OVERDUE), 2);
  EXPECT_TRUE(Granted("node-c").id().empty());
  coordinator().Tick();
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_OVERDUE), 2);  // Flagged once.

  // An operator must say why.
  EXPECT_TRUE(absl::IsInvalidArgument(coordinator().ForceReleaseLease(Force(a, " ")).status()));
  EXPECT_EQ(Active().size(), 2u);
  ASSERT_TRUE(coordinator().ForceReleaseLease(Force(a, "node-a was decommissioned")).ok());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED), 1);
  // node-a was disrupted: the soak runs from the force-release, then node-c goes.
  EXPECT_THAT(GateReason(LEASE_KIND_REBOOT, "soak"), HasSubstr("node-a"));
  clock().Advance(absl::Minutes(11));
  ASSERT_TRUE(Report("node-a").ok());  // Back, or fleet health would wait for it.
  ASSERT_TRUE(Report("node-c", true).ok());
  coordinator().Tick();
  active = Active();
  ASSERT_EQ(active.size(), 2u) << GateReason(LEASE_KIND_REBOOT, "fleet_health");
  EXPECT_EQ(active[0].id(), b.id());
  EXPECT_EQ(active[1].node_name(), "node-c");
}

TEST_F(LeaseProtocolTest, ASilentHolderDoesNotBlockTheFleetHealthOfOthers) {
  BringUp({"node-a", "node-b"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease a = Granted("node-a");
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(a, "reboot")).ok());
  clock().Advance(absl::Minutes(10));  // node-a is down, rebooting.
  ASSERT_TRUE(Report("node-b", true).ok());
  EXPECT_FALSE(Granted("node-b").id().empty()) << GateReason(LEASE_KIND_REBOOT, "fleet_health");
}

TEST_F(LeaseProtocolTest, AReportExactlyAtTheDeadlineCountsOneSecondLaterItDoesNot) {
  BringUp({"node-a", "node-b", "node-c"});
  clock().Advance(absl::Minutes(2));
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Report("node-c").ok());
  EXPECT_FALSE(Granted("node-a").id().empty()) << GateReason(LEASE_KIND_REBOOT, "fleet_health");

  clock().Advance(absl::Seconds(1));
  ASSERT_TRUE(Report("node-c", true).ok());
  EXPECT_TRUE(Granted("node-c").id().empty());
  EXPECT_THAT(
      GateReason(LEASE_KIND_REBOOT, "fleet_health"),
      HasSubstr("GATE_VERDICT_BLOCK: 1 node has not reported within 2m: node-b (silent for 2m1s)"));
  ASSERT_TRUE(Report("node-b").ok());  // Its report lets node-c go.
  EXPECT_EQ(Active().size(), 2u);
}

TEST_F(LeaseProtocolTest, AVerifiedRebootEndsTheBackoffSeries) {
  BringUp({"node-a"});
  tended::v1::HaltRequest halt;
  halt.set_reason("storage maintenance");
  // Returns the lease the halt kept from acting on, and how long the node then backs off.
  auto given_back = [&]() -> absl::Duration {
    EXPECT_TRUE(Report("node-a", true).ok());
    const Lease lease = Granted("node-a");
    EXPECT_FALSE(lease.id().empty());
    EXPECT_TRUE(coordinator().Halt(halt).ok());
    EXPECT_FALSE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
    clock().Advance(absl::Minutes(11));
    EXPECT_TRUE(Report("node-a", true).ok());
    coordinator().Tick();
    EXPECT_TRUE(Active().empty());
    EXPECT_TRUE(coordinator().Resume().ok());
    const absl::Duration wait =
        FromProtoTimestamp(NodeNamed("node-a").backoff_until()) - clock().Now();
    clock().Advance(wait + absl::Seconds(1));
    return wait;
  };
  EXPECT_EQ(given_back(), absl::Minutes(5));
  EXPECT_EQ(given_back(), absl::Minutes(10));
  // A reboot that happens and verifies ends the series.
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease lease = Granted("node-a");
  ASSERT_FALSE(lease.id().empty());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(lease, "reboot")).ok());
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());
  ASSERT_TRUE(Active().empty());
  EXPECT_FALSE(NodeNamed("node-a").has_backoff_until());
  clock().Advance(absl::Minutes(11));  // The soak.
  EXPECT_EQ(given_back(), absl::Minutes(5));
}

TEST_F(LeaseProtocolTest, ARestartKeepsLeasesTheQueueTheHaltTheSoakAndTheCounter) {
  BringUp({"node-a", "node-b", "node-c"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease a = Granted("node-a");
  // The grant is durable before it is answered.
  const tended::state::v1::CoordinatorState on_disk = harness_.ledger().DurableState();
  bool saved = false;
  for (const Lease& lease : on_disk.leases()) saved |= lease.id() == a.id();
  EXPECT_TRUE(saved);
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(a, "reboot")).ok());
  ASSERT_TRUE(Report("node-c", true).ok());
  const Lease c = Granted("node-c");
  ASSERT_FALSE(c.id().empty());
  ASSERT_TRUE(coordinator().BeginDisruption(BeginRequest(c, "reboot")).ok());
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());  // Verified and released: the soak starts.
  const absl::Time released_at = clock().Now();
  ASSERT_TRUE(Report("node-b", true).ok());
  EXPECT_TRUE(Granted("node-b").id().empty());
  tended::v1::HaltRequest halt;
  halt.set_reason("investigating");
  ASSERT_TRUE(coordinator().Halt(halt).ok());

  ASSERT_TRUE(harness_.Restart().ok());
  std::vector<Lease> active = Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), c.id());
  EXPECT_EQ(active[0].phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  EXPECT_EQ(FromProtoTimestamp(NodeNamed("node-a").last_disruption_end_time()), released_at);
  EXPECT_THAT(Waiting(LEASE_KIND_REBOOT), ::testing::ElementsAre("node-b"));
  EXPECT_EQ(GateReason(LEASE_KIND_REBOOT, "halt"),
            "GATE_VERDICT_BLOCK: an operator halted the coordinator: investigating");
  EXPECT_THAT(GateReason(LEASE_KIND_REBOOT, "soak"),
              HasSubstr("GATE_VERDICT_BLOCK: soaking after node-a"));

  ASSERT_TRUE(coordinator().Resume().ok());
  clock().Advance(absl::Minutes(11));
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    ASSERT_TRUE(Report(node, node == std::string("node-b")).ok());
  }
  coordinator().Tick();
  active = Active();
  ASSERT_EQ(active.size(), 2u);  // Sorted by node.
  EXPECT_EQ(active[0].node_name(), "node-b");
  // The counter goes on from where it was: never a token twice.
  EXPECT_EQ(active[0].fencing_token(), c.fencing_token() + 1);
}

TEST_F(LeaseProtocolTest, AFailedLedgerWriteGrantsNothingAndStopsEveryChange) {
  BringUp({"node-a", "node-b"});
  std::vector<tended::v1::Event> heard;
  coordinator().SetEventListener([&](const tended::v1::Event& event) { heard.push_back(event); });
  tended::v1::HaltRequest halt;
  halt.set_reason("maintenance");
  ASSERT_TRUE(coordinator().Halt(halt).ok());
  ASSERT_TRUE(coordinator().Resume().ok());
  ASSERT_TRUE(Report("node-a", true).ok());

  harness_.SetWriteFailureRate(1.0, 1);
  auto asked = Ask("node-a");
  EXPECT_TRUE(absl::IsUnavailable(asked.status())) << asked.status();
  EXPECT_THAT(std::string(asked.status().message()), HasSubstr("no space left on device"));
  EXPECT_TRUE(harness_.ledger_failed());
  EXPECT_FALSE(coordinator().health().ok());
  // Fail-stop: every later change is refused, even once the disk is fine again, until the
  // process restarts from what is on disk.
  harness_.SetWriteFailureRate(0, 1);
  EXPECT_TRUE(absl::IsUnavailable(coordinator().Halt(halt).status()));
  EXPECT_FALSE(Report("node-b", true).ok());
  EXPECT_FALSE(coordinator().ExplainGates({}).ok());
  // The listener heard what became durable, in order, and nothing else (not the request
  // and grant that failed).
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0].type(), tended::v1::EVENT_TYPE_HALTED);
  EXPECT_EQ(heard[1].type(), tended::v1::EVENT_TYPE_RESUMED);
  EXPECT_EQ(heard[1].sequence(), heard[0].sequence() + 1);

  ASSERT_TRUE(harness_.Restart().ok());
  EXPECT_TRUE(Active().empty());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_GRANTED), 0);
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Report("node-b").ok());
  const Lease granted = Granted("node-a");
  ASSERT_FALSE(granted.id().empty());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_LEASE_GRANTED), 1);
}

TEST_F(LeaseProtocolTest, AHeartbeatWritesNothingAndANewBootIdIsARebootEvent) {
  BringUp({"node-a"});
  const uint64_t records = harness_.ledger().stats().records;
  for (int i = 0; i < 5; ++i) {
    clock().Advance(absl::Seconds(30));
    ASSERT_TRUE(Report("node-a").ok());
  }
  EXPECT_EQ(harness_.ledger().stats().records, records)
      << "a plain heartbeat must not write the state";
  Reboot("node-a");
  ASSERT_TRUE(Report("node-a").ok());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_NODE_REBOOTED), 1);
  EXPECT_EQ(harness_.ledger().stats().records, records + 1);
  EXPECT_EQ(NodeNamed("node-a").facts().boot_id(), BootOf("node-a"));
}

TEST_F(LeaseProtocolTest, RemoveNodeOnlyWithoutALeaseAndWithAReason) {
  BringUp({"node-a", "node-b", "node-c"});
  ASSERT_TRUE(Report("node-a", true).ok());
  ASSERT_TRUE(Report("node-b", true).ok());
  ASSERT_FALSE(Granted("node-a").id().empty());
  ASSERT_TRUE(coordinator()
                  .Halt([] {
                    tended::v1::HaltRequest halt;
                    halt.set_reason("keep node-b waiting");
                    return halt;
                  }())
                  .ok());
  EXPECT_TRUE(Granted("node-b").id().empty());
  auto remove = [&](const std::string& node, const std::string& reason) {
    tended::v1::RemoveNodeRequest request;
    request.set_node_name(node);
    request.set_reason(reason);
    return coordinator().RemoveNode(request).status();
  };
  EXPECT_TRUE(absl::IsFailedPrecondition(remove("node-a", "gone")));
  EXPECT_TRUE(absl::IsInvalidArgument(remove("node-b", "")));
  EXPECT_TRUE(absl::IsNotFound(remove("node-z", "typo")));

  ASSERT_TRUE(remove("node-b", "decommissioned").ok());
  EXPECT_TRUE(NodeNamed("node-b").facts().node_name().empty());
  EXPECT_THAT(Waiting(LEASE_KIND_REBOOT), IsEmpty());
  EXPECT_EQ(CountEvents(tended::v1::EVENT_TYPE_NODE_REMOVED), 1);
  ASSERT_TRUE(harness_.Restart().ok());
  EXPECT_TRUE(NodeNamed("node-b").facts().node_name().empty());
  EXPECT_EQ(coordinator().ListNodes().nodes_size(), 2);
}

TEST_F(LeaseProtocolTest, TheEventLogIsBoundedAndItsNumbersKeepGrowing) {
  harness_.mutable_config().history_limit = 10;
  ASSERT_TRUE(harness_.Restart().ok());
  BringUp({"node-a"});
  ASSERT_TRUE(Report("node-a", true).ok());
  const Lease a = Granted("node-a");
  std::vector<tended::v1::Event> events = Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_LEASE_GRANTED);
  EXPECT_EQ(events.back().disrupted_nodes(), 1u);
  EXPECT_EQ(events.back().fencing_token(), a.fencing_token());
  EXPECT_EQ(events.back().lease_id(), a.id());
  tended::v1::HaltRequest halt;
  halt.set_reason("test");
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(coordinator().Halt(halt).ok());
    ASSERT_TRUE(coordinator().Resume().ok());
  }
  events = Events();
  ASSERT_EQ(events.size(), 10u);
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_RESUMED);
  EXPECT_GT(events.front().sequence(), 50u);
  ASSERT_TRUE(harness_.Restart().ok());
  std::vector<tended::v1::Event> after = Events();
  ASSERT_EQ(after.size(), 10u);
  EXPECT_EQ(after.back().sequence(), events.back().sequence());
}

}  // namespace
}  // namespace tended::testing
