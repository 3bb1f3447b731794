// Answers and durability on the asynchronous ledger the program runs: a lease is never handed
// out before its record would survive a crash, and an answer that reveals no lease does not
// wait for other changes' fsyncs.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/state/embedded_ledger.h"
#include "gtest/gtest.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/coordinator/core/coordinator_test_util.h"

namespace tended::testing {
namespace {

// Every wait ends as soon as its event happens; this only bounds a broken build.
constexpr absl::Duration kBound = absl::Seconds(60);
// How long an answer that must wait for a held fsync is given to (wrongly) arrive.
constexpr absl::Duration kMustStillWait = absl::Milliseconds(300);

// Holds every fsync while armed.
class FsyncGate {
 public:
  std::function<absl::Status(absl::string_view)> Injector() {
    return [this](absl::string_view operation) {
      absl::MutexLock lock(&mu_);
      if (operation != "fsync" || !holding_) return absl::OkStatus();
      ++held_;
      mu_.Await(absl::Condition(
          +[](bool* holding) { return !*holding; }, &holding_));
      --held_;
      return absl::OkStatus();
    };
  }
  void Hold() {
    absl::MutexLock lock(&mu_);
    holding_ = true;
  }
  bool WaitUntilHeld() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(+[](int* held) { return *held > 0; }, &held_), kBound);
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    holding_ = false;
  }

 private:
  absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
};

class DurableAnswersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = SmallFleetConfig();
    config_.leases[tended::v1::LEASE_KIND_REBOOT].soak = absl::ZeroDuration();
    config_.state_dir = dir_.Path("state");
    coordinator::state::EmbeddedLedger::Options options;
    options.dir = config_.state_dir;
    options.holder_description = "a test's coordinator";
    options.synchronous = false;
    options.fault_injector = gate_.Injector();
    auto ledger = coordinator::state::EmbeddedLedger::Open(std::move(options));
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    auto created = coordinator::Coordinator::Create(config_, clock_, ledger_.get(), {});
    ASSERT_TRUE(created.ok()) << created.status();
    coordinator_ = *std::move(created);
  }

  void TearDown() override {
    gate_.Release();
    coordinator_.reset();
    ledger_.reset();
  }

  absl::Status Report(const std::string& node, bool reboot_required) {
    return coordinator_->ReportFacts(FactsReport(node, "boot-" + node, reboot_required)).status();
  }

  // Every node reports, then the first-start recovery period passes.
  void BringUp(const std::vector<std::string>& nodes) {
    for (const std::string& node : nodes) ASSERT_TRUE(Report(node, true).ok()) << node;
    clock_.Advance(config_.fleet.report_deadline + absl::Seconds(1));
    for (const std::string& node : nodes) ASSERT_TRUE(Report(node, true).ok()) << node;
    coordinator_->Tick();
  }

  absl::StatusOr<tended::v1::AcquireLeaseResponse> Ask(const std::string& node) {
    return coordinator_->AcquireLease(LeaseRequest(node, tended::v1::LEASE_KIND_REBOOT, "test"));
  }

  coordinator::CoordinatorConfig config_;
  TempDir dir_;
  FakeClock clock_;
  FsyncGate gate_;
  std::unique_ptr<coordinator::state::EmbeddedLedger> ledger_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
};

TEST_F(DurableAnswersTest, ALeaseIsAnsweredOnlyOnceItsGrantIsDurable) {
  BringUp({"node-a", "node-b", "node-c"});
  auto first = Ask("node-a");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_lease());
  const tended::v1::Lease lease_a = first->lease();
  ASSERT_TRUE(Ask("node-b").ok());
  ASSERT_TRUE(Ask("node-c").ok());

  // node-a gives its lease back; the same change grants node-b, and its fsync is held.
  gate_.Hold();
  absl::Notification released;
  std::thread releaser([&] {
    EXPECT_TRUE(coordinator_->ReleaseLease(ReleaseRequest(lease_a, "not needed")).ok());
    released.Notify();
  });
  ASSERT_TRUE(gate_.WaitUntilHeld());

  // node-c still waits: its repeated ask changes nothing and reveals no lease, so it is
  // answered while the other change's fsync is held.
  absl::Notification c_answered;
  std::thread asker_c([&] {
    auto again = Ask("node-c");
    EXPECT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again.ok() && again->has_lease());
    c_answered.Notify();
  });
  EXPECT_TRUE(c_answered.WaitForNotificationWithTimeout(kBound))
      << "a repeated ask that changed nothing waited for another change's fsync";

  // node-b's ask would reveal a lease whose grant is not durable yet: it waits.
  absl::Notification b_answered;
  tended::v1::AcquireLeaseResponse b_answer;
  std::thread asker_b([&] {
    auto again = Ask("node-b");
    EXPECT_TRUE(again.ok()) << again.status();
    if (again.ok()) b_answer = *again;
    b_answered.Notify();
  });
  EXPECT_FALSE(b_answered.WaitForNotificationWithTimeout(kMustStillWait))
      << "a lease was handed out before its grant was durable";
  EXPECT_FALSE(released.HasBeenNotified());

  gate_.Release();
  EXPECT_TRUE(b_answered.WaitForNotificationWithTimeout(kBound));
  EXPECT_TRUE(released.WaitForNotificationWithTimeout(kBound));
  releaser.join();
  asker_b.join();
  asker_c.join();
  ASSERT_TRUE(b_answer.has_lease());
  EXPECT_EQ(b_answer.lease().node_name(), "node-b");
  EXPECT_GT(b_answer.lease().fencing_token(), lease_a.fencing_token());
}

}  // namespace
}  // namespace tended::testing
