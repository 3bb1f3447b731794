// The gates of one waiting node ("identity", "backoff", "blocking_pods") and the
// "waiting_node" summary over the queue.
#include "coordinator/gates/node_gates.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01 00:00 UTC

std::vector<std::string> Names(const std::vector<GateOutcome>& outcomes) {
  std::vector<std::string> names;
  for (const GateOutcome& outcome : outcomes) names.push_back(outcome.gate);
  return names;
}

NodeGateFacts Quiet(const std::string& node) {
  NodeGateFacts facts;
  facts.node = node;
  return facts;
}

TEST(BlockingNodeGatesTest, ANodeWithNothingAgainstItMayGo) {
  EXPECT_THAT(BlockingNodeGates(Quiet("node-a"), kNow), IsEmpty());
  // A backoff that ended, or selectors with no pod on the node, do not block.
  NodeGateFacts facts = Quiet("node-a");
  facts.backoff_until = kNow;
  facts.consecutive_returns = 2;
  facts.blocking_pods = std::vector<std::string>();
  EXPECT_THAT(BlockingNodeGates(facts, kNow), IsEmpty());
}

TEST(BlockingNodeGatesTest, ASecondAgentBlocksTheNode) {
  NodeGateFacts facts = Quiet("node-a");
  facts.conflict = "agent instance agent-1 is registered and instance cloned-vm also reports";
  std::vector<GateOutcome> blocking = BlockingNodeGates(facts, kNow);
  ASSERT_THAT(Names(blocking), ElementsAre("identity"));
  EXPECT_FALSE(blocking[0].pass);
  EXPECT_THAT(blocking[0].reason,
              AllOf(HasSubstr("two agents report as node-a"), HasSubstr("cloned-vm"),
                    HasSubstr("until one of them goes away")));
  EXPECT_FALSE(blocking[0].earliest_pass.has_value());
}

TEST(BlockingNodeGatesTest, BackoffBlocksUntilItsEnd) {
  NodeGateFacts facts = Quiet("node-a");
  facts.backoff_until = kNow + absl::Minutes(20);
  facts.consecutive_returns = 3;
  std::vector<GateOutcome> blocking = BlockingNodeGates(facts, kNow);
  ASSERT_THAT(Names(blocking), ElementsAre("backoff"));
  EXPECT_THAT(blocking[0].reason,
              AllOf(HasSubstr("node-a gave back 3 leases in a row without a disruption"),
                    HasSubstr("2026-01-01 00:20 UTC"), HasSubstr("(in 20m)")));
  EXPECT_THAT(blocking[0].earliest_pass, Optional(kNow + absl::Minutes(20)));
  EXPECT_THAT(Names(BlockingNodeGates(facts, kNow + absl::Minutes(20) - absl::Seconds(1))),
              ElementsAre("backoff"));
  EXPECT_THAT(BlockingNodeGates(facts, kNow + absl::Minutes(20)), IsEmpty());
  facts.consecutive_returns = 1;
  EXPECT_THAT(BlockingNodeGates(facts, kNow)[0].reason, HasSubstr("gave back 1 lease in a row"));
}

TEST(BlockingNodeGatesTest, MatchingPodsBlockNamingThem) {
  NodeGateFacts facts = Quiet("node-a");
  facts.blocking_pods = std::vector<std::string>{"db/postgres-0"};
  std::vector<GateOutcome> blocking = BlockingNodeGates(facts, kNow);
  ASSERT_THAT(Names(blocking), ElementsAre("blocking_pods"));
  EXPECT_EQ(blocking[0].reason,
            "1 pod matching a blocking-pod selector runs on node-a: db/postgres-0");
  EXPECT_FALSE(blocking[0].earliest_pass.has_value());

  std::vector<std::string> many;
  for (int i = 0; i < 7; ++i) many.push_back(absl::StrCat("db/replica-", i));
  facts.blocking_pods = many;
  EXPECT_THAT(BlockingNodeGates(facts, kNow)[0].reason,
              AllOf(HasSubstr("7 pods matching a blocking-pod selector run on node-a"),
                    HasSubstr("db/replica-4 and 2 more"), Not(HasSubstr("db/replica-5"))));
}

TEST(BlockingNodeGatesTest, EveryBlockingGateInAFixedOrder) {
  NodeGateFacts facts = Quiet("node-a");
  facts.blocking_pods = std::vector<std::string>{"db/postgres-0"};
  facts.backoff_until = kNow + absl::Minutes(5);
  facts.consecutive_returns = 1;
  facts.conflict = "two instances";
  EXPECT_THAT(Names(BlockingNodeGates(facts, kNow)),
              ElementsAre("identity", "backoff", "blocking_pods"));
}

TEST(WaitingNodeGateTest, NobodyWaiting) {
  GateOutcome outcome = WaitingNodeGate({});
  EXPECT_EQ(outcome.gate, "waiting_node");
  EXPECT_TRUE(outcome.pass);
  EXPECT_EQ(outcome.reason, "no node waits");
}

TEST(WaitingNodeGateTest, PassesNamingTheFirstNodeThatMayGo) {
  NodeGateFacts backing_off = Quiet("node-a");
  backing_off.backoff_until = kNow + absl::Minutes(5);
  backing_off.consecutive_returns = 1;
  GateOutcome outcome = WaitingNodeGate(
      {{"node-a", BlockingNodeGates(backing_off, kNow)}, {"node-b", {}}, {"node-c", {}}});
  EXPECT_TRUE(outcome.pass);
  EXPECT_EQ(outcome.reason, "node-b may go (the oldest request that may)");
}

TEST(WaitingNodeGateTest, OneBlockedNodeSaysWhy) {
  NodeGateFacts facts = Quiet("node-a");
  facts.blocking_pods = std::vector<std::string>{"db/postgres-0"};
  GateOutcome outcome = WaitingNodeGate({{"node-a", BlockingNodeGates(facts, kNow)}});
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(outcome.reason, AllOf(HasSubstr("the waiting node may not go yet: node-a ("),
                                    HasSubstr("blocking_pods: 1 pod matching")));
  EXPECT_FALSE(outcome.earliest_pass.has_value());
}

TEST(WaitingNodeGateTest, NoneMayGoWithTheEarliestTimeOneCould) {
  std::vector<WaitingNodeVerdict> verdicts;
  for (int i = 0; i < 7; ++i) {
    NodeGateFacts facts = Quiet(absl::StrCat("node-", i));
    facts.backoff_until = kNow + absl::Minutes(10 + i);
    facts.consecutive_returns = 1;
    if (i == 3) facts.backoff_until = kNow + absl::Minutes(2);
    verdicts.push_back({facts.node, BlockingNodeGates(facts, kNow)});
  }
  GateOutcome outcome = WaitingNodeGate(verdicts);
  EXPECT_FALSE(outcome.pass);
  EXPECT_THAT(
      outcome.reason,
      AllOf(HasSubstr("none of the 7 waiting nodes may go yet: node-0 (backoff: "),
            HasSubstr("node-4 (backoff"), Not(HasSubstr("node-5 (")), HasSubstr(" and 2 more")));
  EXPECT_THAT(outcome.earliest_pass, Optional(kNow + absl::Minutes(2)));
}

}  // namespace
}  // namespace tended::coordinator
