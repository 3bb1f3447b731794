#include "coordinator/alerts/alert_poller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

// An AlertSource answering from a script (quiet when it runs out), whose Fetch blocks
// while the latch is closed: until Open(), CancelFetches() or 30 s. Thread-safe.
class ScriptedLatchSource final : public AlertSource {
 public:
  ScriptedLatchSource() = default;

  AlertSnapshot Fetch() override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++fetches_;
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(30), [this] { return open_ || cancelled_; });
    AlertSnapshot snapshot;
    // The poller stamps its own time; this one must not count.
    snapshot.fetched_at = absl::InfinitePast();
    if (cancelled_) {
      snapshot.status = absl::CancelledError("cancelled");
    } else if (!script_.empty()) {
      snapshot.status = script_.front().status;
      snapshot.alerts = script_.front().alerts;
      script_.erase(script_.begin());
    }
    return snapshot;
  }
  void CancelFetches() override {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
    changed_.notify_all();
  }

  void Then(absl::Status status, std::vector<Alert> alerts = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    AlertSnapshot next;
    next.status = std::move(status);
    next.alerts = std::move(alerts);
    script_.push_back(std::move(next));
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits (at most ten seconds) until `count` fetches have begun.
  bool WaitForFetches(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return fetches_ >= count; });
  }
  int fetches() {
    std::lock_guard<std::mutex> lock(mutex_);
    return fetches_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<AlertSnapshot> script_;
  bool open_ = true;
  bool cancelled_ = false;
  int fetches_ = 0;
};

Alert Firing(const std::string& name) { return Alert{name, "firing", {{"alertname", name}}}; }

template <typename T>
bool ReadyWithin(std::future<T>& future, std::chrono::milliseconds limit) {
  return future.wait_for(limit) == std::future_status::ready;
}

class AlertPollerTest : public ::testing::Test {
 protected:
  AlertPollerTest() {
    auto source = std::make_unique<ScriptedLatchSource>();
    source_ = source.get();
    poller_ = std::make_unique<AlertPoller>(std::move(source), clock_, absl::Milliseconds(20));
  }

  testing::FakeClock clock_;
  ScriptedLatchSource* source_;
  std::unique_ptr<AlertPoller> poller_;
};

TEST_F(AlertPollerTest, NothingBeforeTheFirstPollThenTheLastAnswerStampedByTheClock) {
  EXPECT_EQ(poller_->Current(), std::nullopt);
  source_->Then(absl::OkStatus(), {Firing("NodeDown")});
  AlertSnapshot polled = poller_->PollOnce();
  EXPECT_TRUE(polled.status.ok());
  EXPECT_EQ(polled.fetched_at, clock_.Now());
  std::optional<AlertSnapshot> current = poller_->Current();
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->fetched_at, clock_.Now());
  ASSERT_EQ(current->alerts.size(), 1u);
  EXPECT_EQ(current->alerts[0].name, "NodeDown");

  // A later answer replaces it, with its own time.
  clock_.Advance(absl::Seconds(15));
  poller_->PollOnce();
  EXPECT_THAT(poller_->Current()->alerts, IsEmpty());
  EXPECT_EQ(poller_->Current()->fetched_at, clock_.Now());
}

TEST_F(AlertPollerTest, AFailedFetchReplacesAGoodAnswer) {
  poller_->PollOnce();
  ASSERT_TRUE(poller_->Current()->status.ok());
  source_->Then(absl::UnavailableError("connection refused"));
  clock_.Advance(absl::Seconds(15));
  poller_->PollOnce();
  std::optional<AlertSnapshot> current = poller_->Current();
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(current->fetched_at, clock_.Now());
}

TEST_F(AlertPollerTest, BackgroundThreadPollsAtOnceAndThenAgain) {
  poller_->Start();
  ASSERT_TRUE(source_->WaitForFetches(3));
  poller_->Stop();
  EXPECT_TRUE(poller_->Current().has_value());
  const int fetches = source_->fetches();
  poller_->Start();  // Stopped for good.
  EXPECT_EQ(source_->fetches(), fetches);
}

TEST_F(AlertPollerTest, CurrentNeverWaitsForAHangingFetchAndStopEndsIt) {
  source_->Close();
  poller_->Start();
  ASSERT_TRUE(source_->WaitForFetches(1));
  auto current = std::async(std::launch::async, [&] { return poller_->Current(); });
  ASSERT_TRUE(ReadyWithin(current, std::chrono::milliseconds(2000)));
  EXPECT_EQ(current.get(), std::nullopt);

  const absl::Time start = absl::Now();
  poller_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // The cancelled fetch counts as a failed one.
  EXPECT_THAT(poller_->Current(), Optional(::testing::Field(&AlertSnapshot::status,
                                                            absl::CancelledError("cancelled"))));
}

// ---- The coordinator reads the poller's snapshot and never fetches itself ----

class CoordinatorAlertsTest : public ::testing::Test {
 protected:
  static CoordinatorConfig Config() {
    CoordinatorConfig config;
    config.fleet.report_deadline = absl::Hours(100);
    config.fleet.report_interval = absl::Seconds(30);
    config.alerts.prometheus_url = "http://prometheus.example:9090";
    LeasePolicy reboot;
    reboot.soak = absl::ZeroDuration();
    config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    return config;
  }

  CoordinatorAlertsTest() : harness_(Config()) {}

  void SetUp() override {
    auto source = std::make_unique<ScriptedLatchSource>();
    source_ = source.get();
    // The background thread waits an hour between polls: tests poll with PollOnce.
    poller_ = std::make_unique<AlertPoller>(std::move(source), harness_.clock(), absl::Hours(1));
    // As the program wires it: the coordinator reads the poller's last answer.
    harness_.SetAlertSource([poller = poller_.get()] { return poller->Current(); });
    ASSERT_TRUE(harness_.Start().ok());
    coordinator_ = harness_.get();
    ASSERT_TRUE(coordinator_->ReportFacts(testing::FactsReport("node-a", "boot-1", true)).ok());
    // A first start waits one report deadline for every agent to report.
    harness_.clock().Advance(Config().fleet.report_deadline + absl::Seconds(1));
    ASSERT_TRUE(coordinator_->ReportFacts(testing::FactsReport("node-a", "boot-1", true)).ok());
  }
  void TearDown() override {
    source_->Open();
    poller_->Stop();
    harness_.Stop();
  }

  // The alerts gate's verdict for reboot leases, as ExplainGates gives it.
  tended::v1::GateResult AlertsGateNow() {
    auto explained = coordinator_->ExplainGates({});
    EXPECT_TRUE(explained.ok()) << explained.status();
    for (const auto& explanation : explained->explanations()) {
      if (explanation.kind() != tended::v1::LEASE_KIND_REBOOT) continue;
      for (const auto& gate : explanation.gates()) {
        if (gate.gate() == "alerts") return gate;
      }
    }
    ADD_FAILURE() << "no alerts gate";
    return {};
  }
  bool Passes() { return AlertsGateNow().verdict() == tended::v1::GATE_VERDICT_PASS; }

  std::unique_ptr<AlertPoller> poller_;  // Outlives the coordinator the harness owns.
  testing::CoordinatorHarness harness_;
  ScriptedLatchSource* source_ = nullptr;
  Coordinator* coordinator_ = nullptr;
};

// Before, the coordinator fetched on the calling thread (FreshAlerts), so a Prometheus
// that did not answer held every node call for up to the alerts timeout.
TEST_F(CoordinatorAlertsTest, NodeCallsDoNotWaitForAHangingPrometheus) {
  source_->Close();
  poller_->Start();
  ASSERT_TRUE(source_->WaitForFetches(1));  // Hanging from now on.
  constexpr std::chrono::milliseconds kPrompt(2000);

  auto acquire = std::async(std::launch::async, [&] {
    return coordinator_->AcquireLease(testing::RebootLeaseRequest("node-a", "kernel"));
  });
  ASSERT_TRUE(ReadyWithin(acquire, kPrompt)) << "AcquireLease waited for Prometheus";
  auto acquired = acquire.get();
  ASSERT_TRUE(acquired.ok()) << acquired.status();
  EXPECT_FALSE(acquired->has_lease());  // Nothing read yet: the alerts gate blocks.

  auto report = std::async(std::launch::async, [&] {
    return coordinator_->ReportFacts(testing::FactsReport("node-a", "boot-1", true));
  });
  ASSERT_TRUE(ReadyWithin(report, kPrompt)) << "ReportFacts waited for Prometheus";
  EXPECT_TRUE(report.get().ok());

  auto explain = std::async(std::launch::async, [&] { return AlertsGateNow(); });
  ASSERT_TRUE(ReadyWithin(explain, kPrompt)) << "ExplainGates waited for Prometheus";
  tended::v1::GateResult gate = explain.get();
  EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(gate.reason(), HasSubstr("no alerts have been read"));

  auto tick = std::async(std::launch::async, [&] { return coordinator_->Tick(); });
  ASSERT_TRUE(ReadyWithin(tick, kPrompt)) << "Tick waited for Prometheus";
  EXPECT_EQ(source_->fetches(), 1);
}

TEST_F(CoordinatorAlertsTest, FreshAnswerPassesAndGrants) {
  poller_->PollOnce();
  EXPECT_TRUE(Passes()) << AlertsGateNow().reason();
  auto acquired = coordinator_->AcquireLease(testing::RebootLeaseRequest("node-a", "kernel"));
  ASSERT_TRUE(acquired.ok()) << acquired.status();
  EXPECT_TRUE(acquired->has_lease());
}

TEST_F(CoordinatorAlertsTest, StaleAnswerBlocks) {
  poller_->PollOnce();
  harness_.clock().Advance(harness_.config().alerts.max_age);
  EXPECT_TRUE(Passes()) << AlertsGateNow().reason();
  harness_.clock().Advance(absl::Seconds(1));
  tended::v1::GateResult gate = AlertsGateNow();
  EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(gate.reason(), HasSubstr("alerts were last read 1m1s ago (more than max_age 1m)"));
  auto acquired = coordinator_->AcquireLease(testing::RebootLeaseRequest("node-a", "kernel"));
  ASSERT_TRUE(acquired.ok()) << acquired.status();
  EXPECT_FALSE(acquired->has_lease());

  poller_->PollOnce();  // Read again: the waiting request is granted at the next tick.
  coordinator_->Tick();
  EXPECT_EQ(coordinator_->ListLeases({}).leases_size(), 1);
}

TEST_F(CoordinatorAlertsTest, FailedFetchBlocks) {
  source_->Then(absl::DeadlineExceededError("no complete answer within 10s"));
  poller_->PollOnce();
  tended::v1::GateResult gate = AlertsGateNow();
  EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(gate.reason(), HasSubstr("no complete answer within 10s"));
}

TEST_F(CoordinatorAlertsTest, FiringAlertBlocks) {
  source_->Then(absl::OkStatus(), {Firing("NodeDown")});
  poller_->PollOnce();
  tended::v1::GateResult gate = AlertsGateNow();
  EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(gate.reason(), HasSubstr("NodeDown"));
}

}  // namespace
}  // namespace tended::coordinator
