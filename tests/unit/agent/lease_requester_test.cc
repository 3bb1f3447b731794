#include "agent/lease_requester.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/scripted_coordinator_client.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;
using Result = LeaseRequester::Answer::Result;

class LeaseRequesterTest : public ::testing::Test {
 protected:
  LeaseRequesterTest() : requester_(&client_, clock_, Options()) {}

  static LeaseRequester::Options Options() {
    LeaseRequester::Options options;
    options.node_name = "node-a";
    options.agent_instance_id = "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e";
    options.kind = tended::v1::LEASE_KIND_REBOOT;
    options.what = "a reboot lease";
    options.check_period = absl::Minutes(5);
    return options;
  }

  LeaseRequester::Answer Ask() {
    return requester_.Ask([this] {
      ++reasons_computed_;
      return std::string("reboot-required: linux-image-6.1.0-28-amd64");
    });
  }

  testing::FakeClock clock_;
  testing::ScriptedCoordinatorClient client_;
  LeaseRequester requester_;
  int reasons_computed_ = 0;
};

TEST_F(LeaseRequesterTest, WaitsAtTheQueueAndAsksAgainEveryCheckPeriod) {
  tended::v1::AcquireLeaseResponse queued;
  queued.set_queue_position(3);
  tended::v1::GateResult* gate = queued.add_gates();
  gate->set_gate("window");
  gate->set_verdict(tended::v1::GATE_VERDICT_BLOCK);
  gate->set_reason("outside 02:00-05:00 UTC");
  client_.acquire_lease.otherwise = [&](const tended::v1::AcquireLeaseRequest&) {
    return absl::StatusOr<tended::v1::AcquireLeaseResponse>(queued);
  };
  LeaseRequester::Answer answer = Ask();
  EXPECT_EQ(answer.result, Result::kWaiting);
  EXPECT_EQ(answer.next, clock_.Now() + absl::Minutes(5));
  EXPECT_THAT(answer.status, HasSubstr("waiting for a reboot lease (queue position 3)"));
  EXPECT_THAT(answer.status, HasSubstr("window: outside 02:00-05:00 UTC"));
  EXPECT_TRUE(requester_.waiting());
  ASSERT_EQ(client_.acquire_lease.calls(), 1);
  const tended::v1::AcquireLeaseRequest& sent = client_.acquire_lease.last();
  EXPECT_EQ(sent.node_name(), "node-a");
  EXPECT_EQ(sent.kind(), tended::v1::LEASE_KIND_REBOOT);
  EXPECT_EQ(sent.agent_instance_id(), "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e");
  EXPECT_EQ(sent.reason(), "reboot-required: linux-image-6.1.0-28-amd64");

  clock_.Advance(absl::Minutes(4));
  answer = Ask();
  EXPECT_EQ(answer.result, Result::kWaiting);
  EXPECT_EQ(client_.acquire_lease.calls(), 1);
  EXPECT_EQ(reasons_computed_, 1);
  clock_.Advance(absl::Minutes(1));
  Ask();
  EXPECT_EQ(client_.acquire_lease.calls(), 2);

  // Reset() asks at once.
  requester_.Reset();
  Ask();
  EXPECT_EQ(client_.acquire_lease.calls(), 3);
}

TEST_F(LeaseRequesterTest, GrantsRefusalsAndUnreachableCoordinators) {
  tended::v1::AcquireLeaseResponse granted;
  granted.mutable_lease()->set_id("lease-1");
  client_.acquire_lease.script.push_back(
      absl::FailedPreconditionError("reboot leases are not enabled on this coordinator"));
  client_.acquire_lease.script.push_back(absl::UnavailableError("connection refused"));
  client_.acquire_lease.script.push_back(granted);

  LeaseRequester::Answer answer = Ask();
  EXPECT_EQ(answer.result, Result::kWaiting);
  EXPECT_THAT(answer.status, HasSubstr("a reboot lease refused: reboot leases are not enabled"));
  EXPECT_EQ(answer.next, clock_.Now() + absl::Minutes(5));

  clock_.Advance(absl::Minutes(5));
  answer = Ask();
  EXPECT_EQ(answer.result, Result::kUnreachable);
  EXPECT_TRUE(absl::IsUnavailable(answer.error));

  answer = Ask();
  EXPECT_EQ(answer.result, Result::kGranted);
  EXPECT_EQ(answer.lease.id(), "lease-1");
  EXPECT_FALSE(requester_.waiting());
}

TEST_F(LeaseRequesterTest, CancelsOnlyAPendingRequest) {
  EXPECT_TRUE(requester_.Cancel().ok());
  EXPECT_EQ(client_.cancel_lease_request.calls(), 0);

  Ask();  // Queued (an empty answer).
  ASSERT_TRUE(requester_.waiting());
  client_.cancel_lease_request.script.push_back(absl::UnavailableError("connection refused"));
  EXPECT_FALSE(requester_.Cancel().ok());
  EXPECT_TRUE(requester_.waiting());
  EXPECT_TRUE(requester_.Cancel().ok());
  EXPECT_FALSE(requester_.waiting());
  ASSERT_EQ(client_.cancel_lease_request.calls(), 2);
  EXPECT_EQ(client_.cancel_lease_request.last().kind(), tended::v1::LEASE_KIND_REBOOT);
  EXPECT_EQ(client_.cancel_lease_request.last().agent_instance_id(),
            "0b7c1d3e-5a2f-4c3b-9d1e-2f3a4b5c6d7e");
}

}  // namespace
}  // namespace tended::agent
