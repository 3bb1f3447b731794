#include "coordinator/lease_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/proto_time.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator {
namespace {

using tended::v1::LEASE_KIND_OS_UPGRADE;
using tended::v1::LEASE_KIND_REBOOT;
using ::testing::HasSubstr;

// Counts saves and can be told to fail them, to check that nothing is answered unsaved.
class CountingStore final : public StateStore {
 public:
  explicit CountingStore(std::string path) : file_(std::move(path)) {}
  absl::StatusOr<tended::state::v1::CoordinatorState> Load() override { return file_.Load(); }
  absl::Status Save(const tended::state::v1::CoordinatorState& state) override {
    if (fail_saves) return absl::ResourceExhaustedError("disk full");
    ++saves;
    return file_.Save(state);
  }
  bool fail_saves = false;
  int saves = 0;

 private:
  FileStateStore file_;
};

class LeaseManagerTest : public ::testing::Test {
 protected:
  LeaseManagerTest() : store_(dir_.Path("state/coordinator.json")) {
    LeasePolicy reboot;
    reboot.concurrency = 2;
    reboot.renew_deadline = absl::Minutes(10);
    reboot.return_deadline = absl::Minutes(30);
    config_.leases[LEASE_KIND_REBOOT] = reboot;
    LeasePolicy os_upgrade;
    os_upgrade.concurrency = 1;
    config_.leases[LEASE_KIND_OS_UPGRADE] = os_upgrade;
    Reload();
    for (const char* name : {"node-a", "node-b", "node-c"}) Register(name, "boot-1");
  }

  void Reload() {
    auto loaded = LeaseManager::Load(&store_, config_, clock_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    manager_ = std::move(*loaded);
  }

  void Register(const std::string& node, const std::string& boot_id) {
    tended::v1::NodeFacts facts;
    facts.set_node_name(node);
    facts.set_boot_id(boot_id);
    ASSERT_TRUE(manager_->RecordFacts(facts).ok());
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  CoordinatorConfig config_;
  CountingStore store_;
  std::unique_ptr<LeaseManager> manager_;
};

TEST_F(LeaseManagerTest, GrantsWithGrowingFencingTokensUpToTheConcurrency) {
  auto a = manager_->Grant("node-a", LEASE_KIND_REBOOT, "kernel");
  auto b = manager_->Grant("node-b", LEASE_KIND_REBOOT, "kernel");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->fencing_token(), 1u);
  EXPECT_EQ(b->fencing_token(), 2u);
  EXPECT_EQ(a->phase(), tended::v1::LEASE_PHASE_GRANTED);
  EXPECT_EQ(a->boot_id_at_grant(), "boot-1");

  auto c = manager_->Grant("node-c", LEASE_KIND_REBOOT, "kernel");
  EXPECT_TRUE(absl::IsFailedPrecondition(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("concurrency of 2"));
  EXPECT_EQ(manager_->ActiveLeaseCount(), 2);
}

TEST_F(LeaseManagerTest, OneLeasePerNodeAndKindsDoNotOverlapByDefault) {
  ASSERT_TRUE(manager_->Grant("node-a", LEASE_KIND_REBOOT, "").ok());
  EXPECT_TRUE(
      absl::IsFailedPrecondition(manager_->Grant("node-a", LEASE_KIND_REBOOT, "").status()));
  auto upgrade = manager_->Grant("node-b", LEASE_KIND_OS_UPGRADE, "");
  EXPECT_TRUE(absl::IsFailedPrecondition(upgrade.status()));
  EXPECT_THAT(upgrade.status().message(), HasSubstr("may not overlap"));

  config_.allow_kind_overlap = true;
  EXPECT_TRUE(manager_->Grant("node-b", LEASE_KIND_OS_UPGRADE, "").ok());
}

TEST_F(LeaseManagerTest, UnconfiguredKindIsRefused) {
  auto k8s = manager_->Grant("node-a", tended::v1::LEASE_KIND_K8S_UPGRADE, "");
  EXPECT_TRUE(absl::IsFailedPrecondition(k8s.status()));
}

TEST_F(LeaseManagerTest, RenewExtendsOnlyWithTheCurrentToken) {
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(lease.ok());
  clock_.Advance(absl::Minutes(5));
  auto renewed = manager_->Renew(lease->id(), lease->fencing_token());
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(FromProtoTimestamp(renewed->expire_time()), clock_.Now() + absl::Minutes(10));

  auto stale = manager_->Renew(lease->id(), lease->fencing_token() + 7);
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status()));
  EXPECT_THAT(stale.status().message(), HasSubstr("stale fencing token"));
  auto events = manager_->EventsAfter(0, 1000);
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_FENCING_REJECTED);
}

TEST_F(LeaseManagerTest, ReleasedLeaseTokenIsRefusedForDisruption) {
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(manager_->ForceRelease(lease->id(), "operator").ok());
  auto begin = manager_->BeginDisruption(lease->id(), lease->fencing_token(), "reboot");
  EXPECT_TRUE(absl::IsFailedPrecondition(begin.status()));
  EXPECT_THAT(begin.status().message(), HasSubstr("released"));
}

TEST_F(LeaseManagerTest, HolderMayReleaseOnlyBeforeDisrupting) {
  auto a = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  auto b = manager_->Grant("node-b", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(manager_->ReleaseByHolder(a->id(), a->fencing_token(), "not needed").ok());
  ASSERT_TRUE(manager_->BeginDisruption(b->id(), b->fencing_token(), "reboot").ok());
  auto refused = manager_->ReleaseByHolder(b->id(), b->fencing_token(), "changed my mind");
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_EQ(manager_->ActiveLeaseCount(), 1);
}

TEST_F(LeaseManagerTest, SilentHolderKeepsItsSlotAndIsFlaggedOverdue) {
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(manager_->BeginDisruption(lease->id(), lease->fencing_token(), "reboot").ok());
  ASSERT_TRUE(manager_->Grant("node-b", LEASE_KIND_REBOOT, "").ok());

  clock_.Advance(absl::Hours(48));
  auto flagged = manager_->FlagOverdueLeases();
  ASSERT_TRUE(flagged.ok());
  ASSERT_EQ(flagged->size(), 2u);
  // Still held: a timeout never hands the slot on.
  EXPECT_EQ(manager_->ActiveLeaseCount(), 2);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(manager_->Grant("node-c", LEASE_KIND_REBOOT, "").status()));
  // Flagged once only.
  EXPECT_TRUE(manager_->FlagOverdueLeases()->empty());

  ASSERT_TRUE(manager_->ForceRelease(lease->id(), "node-a was decommissioned").ok());
  EXPECT_TRUE(manager_->Grant("node-c", LEASE_KIND_REBOOT, "").ok());
}

TEST_F(LeaseManagerTest, RestartReloadsLeasesTokensQueueHaltAndSoak) {
  auto a = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(manager_->BeginDisruption(a->id(), a->fencing_token(), "reboot").ok());
  auto b = manager_->Grant("node-b", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(manager_->MarkVerifying(b->id(), "new boot id").ok());
  ASSERT_TRUE(manager_->CompleteVerification(b->id(), "ok").ok());
  ASSERT_TRUE(manager_->AddPendingRequest("node-c", LEASE_KIND_REBOOT, "kernel").ok());
  ASSERT_TRUE(manager_->Halt("investigating").ok());
  const absl::Time released_at = clock_.Now();

  manager_.reset();
  Reload();
  ASSERT_NE(manager_, nullptr);
  const tended::v1::Lease* reloaded = manager_->FindActiveLeaseForNode("node-a");
  ASSERT_NE(reloaded, nullptr);
  EXPECT_EQ(reloaded->phase(), tended::v1::LEASE_PHASE_DISRUPTING);
  EXPECT_EQ(reloaded->fencing_token(), a->fencing_token());
  EXPECT_EQ(manager_->FindActiveLeaseForNode("node-b"), nullptr);
  EXPECT_EQ(FromProtoTimestamp(manager_->FindNode("node-b")->last_disruption_end_time()),
            released_at);
  EXPECT_EQ(manager_->PendingRequests(LEASE_KIND_REBOOT).size(), 1u);
  EXPECT_TRUE(manager_->state().halt().halted());
  // The counter goes on from where it was: never a token twice.
  ASSERT_TRUE(manager_->Resume().ok());
  auto c = manager_->Grant("node-c", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->fencing_token(), 3u);
}

TEST_F(LeaseManagerTest, AFailedSaveGrantsNothing) {
  store_.fail_saves = true;
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  EXPECT_TRUE(absl::IsUnavailable(lease.status()));
  EXPECT_THAT(lease.status().message(), HasSubstr("disk full"));
  EXPECT_EQ(manager_->ActiveLeaseCount(), 0);
  EXPECT_EQ(manager_->state().last_fencing_token(), 0u);

  store_.fail_saves = false;
  Reload();
  EXPECT_EQ(manager_->ActiveLeaseCount(), 0);
  auto granted = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(granted.ok());
  EXPECT_EQ(granted->fencing_token(), 1u);
}

TEST_F(LeaseManagerTest, EveryGrantIsSavedBeforeItIsReturned) {
  int before = store_.saves;
  ASSERT_TRUE(manager_->Grant("node-a", LEASE_KIND_REBOOT, "").ok());
  EXPECT_EQ(store_.saves, before + 1);
  // What is on disk already has the lease.
  FileStateStore reader(dir_.Path("state/coordinator.json"));
  auto on_disk = reader.Load();
  ASSERT_TRUE(on_disk.ok());
  ASSERT_EQ(on_disk->leases_size(), 1);
  EXPECT_EQ(on_disk->leases(0).node_name(), "node-a");
}

TEST_F(LeaseManagerTest, CorruptStateFileRefusesToLoad) {
  ASSERT_TRUE(manager_->Grant("node-a", LEASE_KIND_REBOOT, "").ok());
  FILE* file = std::fopen(dir_.Path("state/coordinator.json").c_str(), "w");
  std::fputs("{\"leases\": [ {\"id\": ", file);
  std::fclose(file);
  auto loaded = LeaseManager::Load(&store_, config_, clock_);
  EXPECT_TRUE(absl::IsInvalidArgument(loaded.status()));
  EXPECT_THAT(loaded.status().message(), HasSubstr("coordinator.json"));
}

TEST_F(LeaseManagerTest, EventLogCountsDisruptedNodesAndIsBounded) {
  config_.history_limit = 10;
  auto a = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(a.ok());
  auto events = manager_->EventsAfter(0, 100);
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_LEASE_GRANTED);
  EXPECT_EQ(events.back().disrupted_nodes(), 1u);
  EXPECT_EQ(events.back().fencing_token(), a->fencing_token());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(manager_->Halt("test").ok());
    ASSERT_TRUE(manager_->Resume().ok());
  }
  events = manager_->EventsAfter(0, 1000);
  EXPECT_EQ(events.size(), 10u);
  EXPECT_EQ(events.back().type(), tended::v1::EVENT_TYPE_RESUMED);
  // Sequence numbers keep growing past the trimmed ones.
  EXPECT_GT(events.front().sequence(), 50u);
}

TEST_F(LeaseManagerTest, BootIdChangeIsRecordedAsARebootEvent) {
  tended::v1::NodeFacts facts;
  facts.set_node_name("node-a");
  facts.set_boot_id("boot-2");
  auto changed = manager_->RecordFacts(facts);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  EXPECT_EQ(manager_->EventsAfter(0, 100).back().type(), tended::v1::EVENT_TYPE_NODE_REBOOTED);
  int saves = store_.saves;
  EXPECT_FALSE(*manager_->RecordFacts(facts));
  EXPECT_EQ(store_.saves, saves) << "a plain heartbeat must not rewrite the state file";
}

TEST_F(LeaseManagerTest, RemoveNodeOnlyWithoutALeaseAndWithAReason) {
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(manager_->AddPendingRequest("node-b", LEASE_KIND_REBOOT, "kernel").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(manager_->RemoveNode("node-a", "gone")));
  EXPECT_TRUE(absl::IsInvalidArgument(manager_->RemoveNode("node-b", "")));
  EXPECT_TRUE(absl::IsNotFound(manager_->RemoveNode("node-z", "typo")));

  ASSERT_TRUE(manager_->RemoveNode("node-b", "decommissioned").ok());
  EXPECT_EQ(manager_->FindNode("node-b"), nullptr);
  EXPECT_TRUE(manager_->PendingRequests(LEASE_KIND_REBOOT).empty());
  EXPECT_EQ(manager_->EventsAfter(0, 100).back().type(), tended::v1::EVENT_TYPE_NODE_REMOVED);
  Reload();
  EXPECT_EQ(manager_->FindNode("node-b"), nullptr);
}

TEST_F(LeaseManagerTest, ListenerHearsEveryDurableEventInOrder) {
  std::vector<tended::v1::Event> heard;
  manager_->SetEventListener([&](const tended::v1::Event& event) { heard.push_back(event); });
  auto lease = manager_->Grant("node-a", LEASE_KIND_REBOOT, "");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(manager_->Halt("maintenance").ok());
  store_.fail_saves = true;
  EXPECT_FALSE(manager_->Resume().ok());
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0].type(), tended::v1::EVENT_TYPE_LEASE_GRANTED);
  EXPECT_EQ(heard[1].type(), tended::v1::EVENT_TYPE_HALTED);
  EXPECT_EQ(heard[1].sequence(), heard[0].sequence() + 1);
}

}  // namespace
}  // namespace tended::coordinator
