// The helpers every gate uses: pass and block, the verdict over a list, the earliest time a
// blocking list could pass, capped lists of names, the wire form.
#include "coordinator/gates/gate.h"

#include <string>
#include <vector>

#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tended::coordinator {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

TEST(AllPassTest, EmptyListDoesNotPass) { EXPECT_FALSE(AllPass({})); }

TEST(AllPassTest, EveryOutcomeMustPass) {
  EXPECT_TRUE(AllPass({PassGate("halt", "not halted"), PassGate("soak", "ok")}));
  EXPECT_FALSE(AllPass({PassGate("halt", "not halted"), BlockGate("soak", "soaking")}));
}

TEST(EarliestPassTest, TheEarliestOfTheBlockingOnes) {
  EXPECT_EQ(EarliestPass({}), absl::InfiniteFuture());
  EXPECT_EQ(EarliestPass({BlockGate("halt", "halted")}), absl::InfiniteFuture());
  // A passing outcome's time is not a reason to wake.
  GateOutcome passing = PassGate("window", "open");
  passing.earliest_pass = kNow + absl::Minutes(1);
  EXPECT_EQ(EarliestPass({passing, BlockGate("soak", "s", kNow + absl::Hours(2)),
                          BlockGate("window", "w", kNow + absl::Hours(1)), BlockGate("halt", "h")}),
            kNow + absl::Hours(1));
}

TEST(DescribeBlockingTest, NamesOnlyTheBlockingGates) {
  EXPECT_EQ(DescribeBlocking({PassGate("state", "fine"), BlockGate("halt", "an operator halted"),
                              BlockGate("alerts", "NodeDown fires")}),
            "halt: an operator halted; alerts: NodeDown fires");
  EXPECT_EQ(DescribeBlocking({PassGate("state", "fine")}), "");
}

TEST(JoinCappedTest, AtMostFiveNamesThenHowManyMore) {
  EXPECT_EQ(JoinCapped({}), "");
  EXPECT_EQ(JoinCapped({"a", "b", "c", "d", "e"}), "a, b, c, d, e");
  EXPECT_EQ(JoinCapped({"a", "b", "c", "d", "e", "f", "g", "h"}), "a, b, c, d, e and 3 more");
}

TEST(PluralTest, OneOrMany) {
  EXPECT_EQ(Plural(0, "node", "nodes"), "0 nodes");
  EXPECT_EQ(Plural(1, "node", "nodes"), "1 node");
  EXPECT_EQ(Plural(2, "node has", "nodes have"), "2 nodes have");
}

TEST(ToProtoTest, VerdictReasonAndEarliestPass) {
  tended::v1::GateResult blocked = ToProto(BlockGate("soak", "soaking", kNow));
  EXPECT_EQ(blocked.gate(), "soak");
  EXPECT_EQ(blocked.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_EQ(blocked.reason(), "soaking");
  EXPECT_EQ(FromProtoTimestamp(blocked.earliest_pass_time()), kNow);
  tended::v1::GateResult passed = ToProto(PassGate("halt", "not halted"));
  EXPECT_EQ(passed.verdict(), tended::v1::GATE_VERDICT_PASS);
  EXPECT_FALSE(passed.has_earliest_pass_time());
}

}  // namespace
}  // namespace tended::coordinator
