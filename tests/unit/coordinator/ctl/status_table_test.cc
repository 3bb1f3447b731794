#include "coordinator/ctl/status_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"

namespace tended::ctl {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

absl::Time At(int hour, int minute) {
  return absl::FromCivil(absl::CivilMinute(2026, 12, 6, hour, minute), absl::UTCTimeZone());
}

tended::v1::Node* AddNode(tended::v1::ListNodesResponse* nodes, const std::string& name,
                          tended::v1::NodeState state) {
  tended::v1::Node* node = nodes->add_nodes();
  node->mutable_facts()->set_node_name(name);
  node->set_state(state);
  return node;
}

tended::v1::GateResult* AddGate(tended::v1::GateExplanation* explanation, const std::string& gate,
                                bool pass, const std::string& reason) {
  tended::v1::GateResult* result = explanation->add_gates();
  result->set_gate(gate);
  result->set_verdict(pass ? tended::v1::GATE_VERDICT_PASS : tended::v1::GATE_VERDICT_BLOCK);
  result->set_reason(reason);
  return result;
}

// The row of `node` in the table.
std::string Row(const std::string& table, const std::string& node) {
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    if (absl::StartsWith(line, node + " ")) return std::string(line);
  }
  return "";
}

class StatusTableTest : public ::testing::Test {
 protected:
  StatusTableTest() {
    AddNode(&nodes_, "idle-1", tended::v1::NODE_STATE_IDLE);
    tended::v1::Node* held = AddNode(&nodes_, "held-2", tended::v1::NODE_STATE_DISRUPTED);
    held->set_lease_id("reboot-held-2-7");
    tended::v1::Lease* lease = leases_.add_leases();
    lease->set_id("reboot-held-2-7");
    lease->set_node_name("held-2");
    lease->set_kind(tended::v1::LEASE_KIND_REBOOT);
    lease->set_phase(tended::v1::LEASE_PHASE_VERIFYING);
    lease->set_status_message("waiting for a new boot id");
    *lease->mutable_expire_time() = ToProtoTimestamp(At(21, 30));
    tended::v1::Node* waiting = AddNode(&nodes_, "wait-3", tended::v1::NODE_STATE_WAITING);
    waiting->set_waiting_for(tended::v1::LEASE_KIND_REBOOT);
    reboot_ = gates_.add_explanations();
    reboot_->set_kind(tended::v1::LEASE_KIND_REBOOT);
    reboot_->add_waiting_nodes("wait-3");
    AddGate(reboot_, "halt", true, "not halted");
    AddGate(reboot_, "concurrency", false, "1 of 1 held");
    *AddGate(reboot_, "window", false, "outside 02:00-05:00")->mutable_earliest_pass_time() =
        ToProtoTimestamp(At(2, 0));
  }

  std::string Table() { return FormatStatus(nodes_, leases_, gates_, absl::UTCTimeZone()); }

  tended::v1::ListNodesResponse nodes_;
  tended::v1::ListLeasesResponse leases_;
  tended::v1::ExplainGatesResponse gates_;
  tended::v1::GateExplanation* reboot_;
};

TEST_F(StatusTableTest, OneRowPerNodeWithLeaseAndWait) {
  std::string table = Table();
  EXPECT_THAT(table, HasSubstr("fleet: running, 3 nodes, 1 disrupted, 1 waiting"));
  EXPECT_THAT(Row(table, "idle-1"), HasSubstr("IDLE"));
  EXPECT_THAT(
      Row(table, "held-2"),
      AllOf(HasSubstr("DISRUPTED"), HasSubstr("reboot-held-2-7 verifying"),
            HasSubstr("waiting for a new boot id"), HasSubstr("renew by 2026-12-06 21:30:00")));
  // Blocked by concurrency (no known time) and the window: the time is unknown.
  EXPECT_THAT(Row(table, "wait-3"),
              AllOf(HasSubstr("WAITING"), HasSubstr("reboot: concurrency, window"),
                    HasSubstr("unknown"), Not(HasSubstr("halt"))));
}

TEST_F(StatusTableTest, UntilIsTheLatestKnownPassTime) {
  reboot_->mutable_gates(1)->set_verdict(tended::v1::GATE_VERDICT_PASS);
  EXPECT_THAT(Row(Table(), "wait-3"),
              AllOf(HasSubstr("reboot: window"), HasSubstr("2026-12-06 02:00:00")));
}

TEST_F(StatusTableTest, BackoffCountsAsAWait) {
  reboot_->mutable_gates(1)->set_verdict(tended::v1::GATE_VERDICT_PASS);
  reboot_->mutable_gates(2)->set_verdict(tended::v1::GATE_VERDICT_PASS);
  *nodes_.mutable_nodes(2)->mutable_backoff_until() = ToProtoTimestamp(At(22, 15));
  EXPECT_THAT(Row(Table(), "wait-3"),
              AllOf(HasSubstr("gates pass (backoff)"), HasSubstr("2026-12-06 22:15:00")));
}

TEST_F(StatusTableTest, HaltIsOnTheFirstLine) {
  reboot_->mutable_gates(0)->set_verdict(tended::v1::GATE_VERDICT_BLOCK);
  reboot_->mutable_gates(0)->set_reason("halted: storage incident");
  EXPECT_THAT(Table(), HasSubstr("fleet: HALTED (halted: storage incident)"));
}

TEST(ExplainTest, EveryGateWithVerdictAndReason) {
  tended::v1::ExplainGatesResponse gates;
  tended::v1::GateExplanation* os = gates.add_explanations();
  os->set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
  AddGate(os, "alerts", false, "TendedNodeDown firing");
  *AddGate(os, "soak", false, "canary soaking")->mutable_earliest_pass_time() =
      ToProtoTimestamp(At(23, 0));
  AddGate(os, "window", true, "inside the window");
  std::string text = FormatExplain(gates, absl::UTCTimeZone());
  EXPECT_THAT(text, HasSubstr("os_upgrade: blocked, nobody waiting"));
  EXPECT_THAT(text, HasSubstr("BLOCK alerts        TendedNodeDown firing (no known time"));
  EXPECT_THAT(text, HasSubstr("canary soaking (earliest 2026-12-06 23:00:00)"));
  EXPECT_THAT(text, HasSubstr("pass  window        inside the window"));
}

}  // namespace
}  // namespace tended::ctl
