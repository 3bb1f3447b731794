// The typed state over the journal: transactions record exactly what changed and undo
// cleanly, the image replays records into the same state, and the embedded ledger recovers,
// compacts, imports the previous format and fails stop.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "coordinator/state/embedded_ledger.h"
#include "coordinator/state/fleet_state.h"
#include "coordinator/state/state_image.h"
#include "coordinator/state/transaction.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace tended::coordinator::state {
namespace {

using tended::state::v1::CoordinatorState;
using tended::state::v1::LedgerRecord;
using tended::v1::Lease;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

Lease MakeLease(const std::string& node, uint64_t token,
                tended::v1::LeasePhase phase = tended::v1::LEASE_PHASE_GRANTED) {
  Lease lease;
  lease.set_id(absl::StrCat("reboot-", node, "-", token));
  lease.set_kind(tended::v1::LEASE_KIND_REBOOT);
  lease.set_node_name(node);
  lease.set_fencing_token(token);
  lease.set_phase(phase);
  return lease;
}

TEST(TransactionTest, RecordsWhatChangedOnceAndUndoesEverythingOnRollback) {
  FleetState state(10);
  {
    Transaction txn(state, kNow);
    tended::state::v1::KnownNode node;
    node.set_node_name("node-a");
    txn.PutNode(node);
    Lease lease = MakeLease("node-a", txn.NextFencingToken());
    txn.PutLease(lease);
    lease.set_status_message("changed twice");
    txn.PutLease(lease);
    txn.AddEvent(tended::v1::EVENT_TYPE_LEASE_GRANTED, &lease, "node-a", "granted");
    Transaction::Outcome outcome = txn.Finish();
    ASSERT_TRUE(outcome.record.has_value());
    EXPECT_EQ(outcome.record->leases_size(), 1);
    EXPECT_EQ(outcome.record->leases(0).status_message(), "changed twice");
    EXPECT_EQ(outcome.record->nodes_size(), 1);
    EXPECT_EQ(outcome.record->last_fencing_token(), 1u);
    ASSERT_EQ(outcome.record->events_size(), 1);
    EXPECT_EQ(outcome.record->events(0).disrupted_nodes(), 1u);
  }
  EXPECT_EQ(state.ActiveCount(), 1);
  {
    Transaction txn(state, kNow);
    Lease released = *state.FindLease("reboot-node-a-1");
    released.set_phase(tended::v1::LEASE_PHASE_RELEASED);
    txn.PutLease(released);
    txn.PutLease(MakeLease("node-b", txn.NextFencingToken()));
    txn.RemoveNode("node-a");
    txn.AddEvent(tended::v1::EVENT_TYPE_HALTED, nullptr, "", "x");
    EXPECT_EQ(state.ActiveCount(), 1);
    EXPECT_EQ(state.ActiveLeaseForNode("node-b")->fencing_token(), 2u);
    txn.Rollback();
  }
  EXPECT_EQ(state.ActiveCount(), 1);
  EXPECT_NE(state.ActiveLeaseForNode("node-a"), nullptr);
  EXPECT_EQ(state.ActiveLeaseForNode("node-b"), nullptr);
  EXPECT_NE(state.FindNode("node-a"), nullptr);
  EXPECT_EQ(state.last_fencing_token(), 1u);
  EXPECT_EQ(state.last_event_sequence(), 1u);
  {
    Transaction txn(state, kNow);
    EXPECT_FALSE(txn.Finish().record.has_value());  // Nothing changed: nothing to write.
  }
}

TEST(TransactionTest, TheHistoryIsBoundedOldestReleaseFirst) {
  FleetState state(10);
  for (uint64_t token = 1; token <= 15; ++token) {
    Transaction txn(state, kNow + absl::Seconds(token));
    Lease lease = MakeLease("node-a", txn.NextFencingToken(), tended::v1::LEASE_PHASE_RELEASED);
    *lease.mutable_release_time() = ToProtoTimestamp(kNow + absl::Seconds(token));
    txn.PutLease(lease);
    Transaction::Outcome outcome = txn.Finish();
    if (token > 10) {
      ASSERT_EQ(outcome.record->removed_lease_ids_size(), 1);
      EXPECT_EQ(outcome.record->removed_lease_ids(0), absl::StrCat("reboot-node-a-", token - 10));
    }
  }
  EXPECT_EQ(state.ReleasedLeases().size(), 10u);
  EXPECT_EQ(state.FindLease("reboot-node-a-5"), nullptr);
  EXPECT_NE(state.FindLease("reboot-node-a-6"), nullptr);
}

// An operator's reason or a gate's reason naming a 50 KB alert name cannot grow the log.
TEST(TransactionTest, AnOversizedEventMessageIsClipped) {
  FleetState state(10);
  Transaction txn(state, kNow);
  const std::string huge(50 * 1024, 'A');
  txn.AddEvent(tended::v1::EVENT_TYPE_HALTED, nullptr, "", huge);
  Transaction::Outcome outcome = txn.Finish();
  ASSERT_TRUE(outcome.record.has_value());
  ASSERT_EQ(outcome.record->events_size(), 1);
  const std::string& message = outcome.record->events(0).message();
  EXPECT_LE(message.size(), kMaxEventMessageBytes + 32);
  EXPECT_EQ(message.substr(0, kMaxEventMessageBytes), huge.substr(0, kMaxEventMessageBytes));
  EXPECT_NE(message.find("...(51200 bytes)"), std::string::npos) << message.substr(4090);
}

TEST(StateImageTest, ReplayingTheRecordsRebuildsTheState) {
  FleetState state(10);
  StateImage image(10);
  uint64_t sequence = 0;
  auto commit = [&](Transaction& txn) {
    Transaction::Outcome outcome = txn.Finish();
    ASSERT_TRUE(outcome.record.has_value());
    outcome.record->set_sequence(++sequence);
    ASSERT_TRUE(image.Apply(*outcome.record).ok());
  };
  {
    Transaction txn(state, kNow);
    txn.SetIdentity("state-1", kNow);
    tended::state::v1::KnownNode node;
    node.set_node_name("node-a");
    txn.PutNode(node);
    tended::state::v1::PendingRequest request;
    request.set_node_name("node-a");
    request.set_kind(tended::v1::LEASE_KIND_REBOOT);
    txn.PutRequest(request);
    commit(txn);
  }
  {
    Transaction txn(state, kNow);
    txn.RemoveRequest("node-a", tended::v1::LEASE_KIND_REBOOT);
    txn.PutLease(MakeLease("node-a", txn.NextFencingToken()));
    tended::v1::HaltState halt;
    halt.set_halted(true);
    txn.SetHalt(halt);
    tended::v1::K8sRollout rollout;
    rollout.set_id("k8s-1");
    rollout.set_target_version("1.31.4");
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_RUNNING);
    txn.PutK8sRollout(rollout);
    commit(txn);
  }
  {
    Transaction txn(state, kNow);
    tended::v1::K8sRollout rollout = *state.FindK8sRollout("k8s-1");
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
    txn.PutK8sRollout(rollout);
    commit(txn);
  }
  EXPECT_EQ(state.ActiveK8sRollout(), nullptr);
  ASSERT_EQ(state.k8s_rollouts().size(), 1u);
  CoordinatorState replayed = image.ToProto();
  CoordinatorState direct = state.ToProto();
  replayed.clear_ledger_sequence();
  direct.clear_ledger_sequence();
  replayed.clear_format_version();
  direct.clear_format_version();
  EXPECT_EQ(replayed.SerializeAsString(), direct.SerializeAsString());
  ASSERT_EQ(replayed.k8s_rollouts_size(), 1);
  EXPECT_EQ(replayed.k8s_rollouts(0).state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
  // A record out of order is refused.
  LedgerRecord skipped;
  skipped.set_sequence(sequence + 2);
  EXPECT_TRUE(absl::IsDataLoss(image.Apply(skipped)));
}

class EmbeddedLedgerTest : public ::testing::Test {
 protected:
  EmbeddedLedger::Options Options() {
    EmbeddedLedger::Options options;
    options.dir = dir_.Path("state");
    options.synchronous = true;
    return options;
  }
  testing::TempDir dir_;
};

TEST_F(EmbeddedLedgerTest, RecoversWhatWasDurableAndCompacts) {
  {
    EmbeddedLedger::Options options = Options();
    options.compact_after_bytes = 2000;
    auto ledger = EmbeddedLedger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_TRUE((*ledger)->recovered_empty());
    EXPECT_FALSE((*ledger)->previously_used());
    for (int i = 1; i <= 100; ++i) {
      LedgerRecord record;
      *record.add_leases() = MakeLease(absl::StrCat("node-", i), static_cast<uint64_t>(i));
      record.set_last_fencing_token(static_cast<uint64_t>(i));
      const uint64_t sequence = (*ledger)->Append(record);
      ASSERT_EQ(sequence, static_cast<uint64_t>(i));
      ASSERT_TRUE((*ledger)->WaitDurable(sequence).ok());
    }
    EXPECT_GT((*ledger)->stats().snapshots, 0u);
  }
  auto reopened = EmbeddedLedger::Open(Options());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_FALSE((*reopened)->recovered_empty());
  EXPECT_TRUE((*reopened)->previously_used());
  EXPECT_EQ((*reopened)->recovered().leases_size(), 100);
  EXPECT_EQ((*reopened)->recovered().last_fencing_token(), 100u);
  EXPECT_EQ((*reopened)->last_sequence(), 100u);
}

TEST_F(EmbeddedLedgerTest, ASecondOpenOfTheSameFolderIsRefusedNamingTheHolder) {
  EmbeddedLedger::Options options = Options();
  options.holder_description = "serving on 127.0.0.1:7443";
  auto first = EmbeddedLedger::Open(options);
  ASSERT_TRUE(first.ok());
  auto second = EmbeddedLedger::Open(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
  EXPECT_NE(second.status().message().find("serving on 127.0.0.1:7443"), std::string::npos)
      << second.status();
}

TEST_F(EmbeddedLedgerTest, ImportsAStateFileOfThePreviousFormatOnce) {
  CoordinatorState legacy;
  legacy.set_last_fencing_token(41);
  *legacy.add_leases() = MakeLease("node-a", 41, tended::v1::LEASE_PHASE_DISRUPTING);
  std::filesystem::create_directories(dir_.Path("state"));
  ASSERT_TRUE(WriteProtoJsonFile(dir_.Path("state/state.json"), legacy).ok());
  EmbeddedLedger::Options options = Options();
  options.legacy_state_file = dir_.Path("state/state.json");
  {
    auto ledger = EmbeddedLedger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_FALSE((*ledger)->recovered_empty());
    ASSERT_EQ((*ledger)->recovered().leases_size(), 1);
    EXPECT_EQ((*ledger)->recovered().last_fencing_token(), 41u);
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.Path("state/state.json")));
  EXPECT_TRUE(std::filesystem::exists(dir_.Path("state/state.json.imported")));
  auto reopened = EmbeddedLedger::Open(options);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->recovered().leases_size(), 1);
}

TEST_F(EmbeddedLedgerTest, AnEmptyPreviousStateFileIsAnEmptyState) {
  std::filesystem::create_directories(dir_.Path("state"));
  ASSERT_TRUE(WriteProtoJsonFile(dir_.Path("state/state.json"), CoordinatorState()).ok());
  EmbeddedLedger::Options options = Options();
  options.legacy_state_file = dir_.Path("state/state.json");
  auto ledger = EmbeddedLedger::Open(options);
  ASSERT_TRUE(ledger.ok());
  EXPECT_TRUE((*ledger)->recovered_empty());
}

TEST_F(EmbeddedLedgerTest, AFailedWriteStopsTheLedgerForGood) {
  EmbeddedLedger::Options options = Options();
  bool fail = false;
  int failures_seen = 0;
  options.fault_injector = [&](absl::string_view operation) {
    return fail && operation == "fsync" ? absl::InternalError("injected: EIO")
                                        : absl::OkStatus();
  };
  options.on_failure = [&](const absl::Status&) { ++failures_seen; };
  auto ledger = EmbeddedLedger::Open(options);
  ASSERT_TRUE(ledger.ok());
  LedgerRecord record;
  record.set_last_fencing_token(1);
  ASSERT_TRUE((*ledger)->WaitDurable((*ledger)->Append(record)).ok());
  fail = true;
  bool ran = false;
  const uint64_t sequence = (*ledger)->Append(record);
  (*ledger)->AfterDurable(sequence, [&] { ran = true; });
  EXPECT_FALSE((*ledger)->WaitDurable(sequence).ok());
  EXPECT_FALSE((*ledger)->health().ok());
  EXPECT_FALSE(ran);
  EXPECT_EQ(failures_seen, 1);
  fail = false;
  EXPECT_EQ((*ledger)->Append(record), 0u);
}

}  // namespace
}  // namespace tended::coordinator::state
