// The one promise under the faults of issue 8, section 1 (promise_faults_fixture.h): one
// owner per state (fault 1), and a lost state never loses a lease (fault 2).
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/wire_agent.h"
#include "tests/integration/promise_faults_fixture.h"

namespace tended::promise_faults {
namespace {

using tended::testing::CallContext;
using tended::testing::CoordinatorProcess;
using tended::testing::FleetHeartbeat;
using tended::testing::WireAgent;
using tended::v1::Lease;
using ::testing::HasSubstr;

// Fault 1: one owner per state. A second coordinator on the same state must not start.
class OneOwnerTest : public PromiseFaultsTest {
 protected:
  void Run(bool same_port) {
    WriteConfig(kRebootLease);
    absl::StatusOr<std::unique_ptr<CoordinatorProcess>> first = StartCoordinator();
    ASSERT_TRUE(first.ok()) << first.status();
    WireAgent a("node-a", "agent-a", "boot-a1");
    a.SetChannel((*first)->channel());
    ASSERT_TRUE(a.Report().ok());
    // A's agent keeps reporting, as agents do: a coordinator that started on an empty
    // state grants nothing before a report deadline has passed, and then only while every
    // node reports.
    FleetHeartbeat heartbeat;
    heartbeat.Add(&a);

    const std::string listen =
        same_port ? absl::StrCat("127.0.0.1:", (*first)->port()) : "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<CoordinatorProcess>> second =
        LaunchCoordinator({"--listen", listen});
    ASSERT_TRUE(second.ok()) << second.status();
    if ((*second)->WaitExit(kExitTimeout)) {
      EXPECT_NE((*second)->ExitCode(), 0) << (*second)->LogTail();
      EXPECT_THAT((*second)->Log(), HasSubstr(absl::StrCat((*first)->pid())))
          << "the refusal should name the holder (pid " << (*first)->pid() << ")";
    } else {
      ADD_FAILURE() << "a second coordinator on the same state (" << listen << ") still runs after "
                    << kExitTimeout << "; its log:\n"
                    << (*second)->LogTail();
      if (!same_port && (*second)->WaitServing(kStartTimeout).ok()) {
        // What two owners of one state mean: each grants, with the same fencing token.
        WireAgent b("node-b", "agent-b", "boot-b1");
        b.SetChannel((*second)->channel());
        a.SetRebootRequired(true);
        b.SetRebootRequired(true);
        ASSERT_TRUE(a.Report().ok());
        ASSERT_TRUE(b.Report().ok());
        absl::StatusOr<Lease> on_first = WaitForGrant(a, kReboot, absl::Seconds(60));
        absl::StatusOr<Lease> on_second = WaitForGrant(b, kReboot, absl::Seconds(60));
        if (on_first.ok() && on_second.ok()) {
          ADD_FAILURE() << "concurrency 1, yet both coordinators granted: " << Describe(*on_first)
                        << " and " << Describe(*on_second);
          EXPECT_NE(on_first->fencing_token(), on_second->fencing_token())
              << "and with the same fencing token";
        }
      }
      (*second)->Stop();
    }

    // The first keeps serving, and still grants.
    EXPECT_TRUE((*first)->Running()) << (*first)->LogTail();
    EXPECT_TRUE(a.Report().ok());
    EXPECT_TRUE(FindNode((*first)->ops(), "node-a").ok());
    a.SetRebootRequired(true);
    absl::StatusOr<Lease> granted = WaitForGrant(a, kReboot);
    EXPECT_TRUE(granted.ok()) << granted.status() << "\n" << (*first)->LogTail();
  }
};

TEST_F(OneOwnerTest, SecondCoordinatorOnAnotherPortRefusesToStart) { Run(/*same_port=*/false); }

TEST_F(OneOwnerTest, SecondCoordinatorOnTheSamePortRefusesToStart) { Run(/*same_port=*/true); }

// Fault 2: losing the state never loses a lease. How the state is lost: the folder keeps
// only its lock file (a coordinator used it) and a state file of `{}` or of nothing; the
// folder is emptied (a new volume); the folder is gone (a changed path).
enum class Loss { kEmptyJson, kEmptyFile, kEmptiedFolder, kMissingFolder };

std::string LossName(const ::testing::TestParamInfo<Loss>& info) {
  switch (info.param) {
    case Loss::kEmptyJson:
      return "EmptyJsonStateFile";
    case Loss::kEmptyFile:
      return "EmptyStateFile";
    case Loss::kEmptiedFolder:
      return "EmptiedStateFolder";
    case Loss::kMissingFolder:
      return "MissingStateFolder";
  }
  return "Unknown";
}

void LoseState(const std::string& dir, Loss loss) {
  if (loss == Loss::kMissingFolder) {
    std::filesystem::remove_all(dir);
    return;
  }
  const bool keep_lock = loss == Loss::kEmptyJson || loss == Loss::kEmptyFile;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (keep_lock && entry.path().filename() == "LOCK") continue;
    std::filesystem::remove_all(entry.path());
  }
  if (loss == Loss::kEmptyJson) WriteFile(dir + "/state.json", "{}");
  if (loss == Loss::kEmptyFile) WriteFile(dir + "/state.json", "");
}

class LostStateTest : public PromiseFaultsTest, public ::testing::WithParamInterface<Loss> {
 protected:
  // A coordinator that learns from an agent's report that its state was lost comes up
  // halted, since a halt set before may have been lost with the state. An operator checks,
  // then resumes, as the halt's reason asks: from then on only the coordinator's hold on
  // what the agents report stands between B and a second grant. Waits (bounded) until A's
  // report has been taken in: A's lease is listed, or a halt names the lost state.
  void ResumeASelfHaltAfterTheLostState(CoordinatorProcess& coordinator) {
    std::string explained;
    (void)tended::testing::PollUntil(
        [&]() -> absl::StatusOr<bool> {
          explained = ExplainText(coordinator.ops(), kReboot);
          absl::StatusOr<std::vector<Lease>> held = ActiveLeases(coordinator.ops(), "node-a");
          if (absl::StrContains(explained, "state was lost") || (held.ok() && !held->empty())) {
            return true;
          }
          return absl::UnavailableError(explained);
        },
        absl::Seconds(20), "node-a's report to be taken in", nullptr, absl::Milliseconds(250));
    if (!absl::StrContains(explained, "halt=BLOCK") ||
        !absl::StrContains(explained, "state was lost")) {
      return;
    }
    tended::v1::ResumeResponse resumed;
    grpc::Status status =
        coordinator.ops().Resume(CallContext().get(), tended::v1::ResumeRequest(), &resumed);
    EXPECT_TRUE(status.ok()) << Describe(status);
  }
};

TEST_P(LostStateTest, NoSecondGrantWhileAHolderIsMidReboot) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  a.SetChannel((*coordinator)->channel());
  b.SetChannel((*coordinator)->channel());
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  ASSERT_TRUE(b.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&a);
  heartbeat.Add(&b);
  absl::StatusOr<Lease> held = WaitForGrant(a, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();
  grpc::Status began = a.Begin("reboot");
  ASSERT_TRUE(began.ok()) << Describe(began);
  const uint64_t token_a = held->fencing_token();

  // The coordinator stops; its state is lost; it starts again.
  (*coordinator)->Stop();
  LoseState(StateDir(), GetParam());
  bool recover_flag = false;
  coordinator = LaunchCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  if (absl::Status serving = (*coordinator)->WaitServing(kStartTimeout); !serving.ok()) {
    ASSERT_FALSE((*coordinator)->Running()) << serving;
    // It refused to start on an empty state in a folder it knows was used: that must be a
    // failure exit that says how to go on.
    EXPECT_NE((*coordinator)->ExitCode(), 0);
    EXPECT_THAT((*coordinator)->Log(), HasSubstr("recover-state"))
        << "the refusal should say how to rebuild the state";
    coordinator = StartCoordinator({"--recover-state"});
    ASSERT_TRUE(coordinator.ok()) << "with --recover-state: " << coordinator.status();
    recover_flag = true;
  }
  a.SetChannel((*coordinator)->channel());
  b.SetChannel((*coordinator)->channel());
  ResumeASelfHaltAfterTheLostState(**coordinator);

  // A is still mid-reboot and its agent reports its lease; B needs a reboot and asks,
  // past every deadline a recovery might wait for.
  b.SetRebootRequired(true);
  std::string transcript;
  std::optional<Lease> second =
      GrantDuring({&b}, "node-b", kReboot, (*coordinator)->ops(), absl::Seconds(25), &transcript);
  ASSERT_FALSE(second.has_value())
      << "node-b was granted " << Describe(*second) << " while node-a still holds lease "
      << held->id() << " (token " << token_a << ", DISRUPTING) from before the state was lost";

  // A's reboot ends: its new boot verifies the lease it reported.
  a.SetBootId("boot-a2");
  a.SetRebootRequired(false);
  absl::Status released = WaitNoActiveLease((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(released.ok()) << released << "\n" << (*coordinator)->LogTail();
  a.ForgetLease();

  // Then B may go, above every token handed out before. A coordinator that asks the operator
  // to confirm the lost state is restarted with --recover-state first, as an operator would.
  if (!recover_flag &&
      absl::StrContains(ExplainText((*coordinator)->ops(), kReboot), "recover-state")) {
    (*coordinator)->Stop();
    coordinator = StartCoordinator({"--recover-state"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    a.SetChannel((*coordinator)->channel());
    b.SetChannel((*coordinator)->channel());
    recover_flag = true;
  }
  absl::StatusOr<Lease> later = WaitForGrant(b, kReboot, absl::Seconds(60));
  if (!later.ok() && !recover_flag &&
      absl::StrContains(
          absl::StrCat(later.status().message(), ExplainText((*coordinator)->ops(), kReboot)),
          "recover-state")) {
    // The coordinator asks the operator to confirm the lost state: as an operator would.
    (*coordinator)->Stop();
    coordinator = StartCoordinator({"--recover-state"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    a.SetChannel((*coordinator)->channel());
    b.SetChannel((*coordinator)->channel());
    later = WaitForGrant(b, kReboot);
  }
  ASSERT_TRUE(later.ok()) << later.status() << "\n" << (*coordinator)->LogTail();
  EXPECT_GT(later->fencing_token(), token_a)
      << "a grant after the lost state reuses a fencing token: " << Describe(*later);
}

INSTANTIATE_TEST_SUITE_P(Losses, LostStateTest,
                         ::testing::Values(Loss::kEmptyJson, Loss::kEmptyFile, Loss::kEmptiedFolder,
                                           Loss::kMissingFolder),
                         LossName);

}  // namespace
}  // namespace tended::promise_faults
