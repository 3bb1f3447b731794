// The one promise under the faults of issue 8, section 1, checked from outside: the real
// tended-coordinator program ($TENDED_COORDINATOR_BINARY, else this build's) on a
// configuration each test writes, on 127.0.0.1 ports it picks itself, with the tests
// playing the agents over gRPC (tests/fakes/wire_agent.h). Nothing here links the
// coordinator's code, so the same tests run against any build of it. Each test asserts
// the promise (who may be disrupted when), not how the coordinator keeps it.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended::promise_faults {
namespace {

using tended::testing::CallContext;
using tended::testing::ChildProcess;
using tended::testing::CoordinatorProcess;
using tended::testing::FleetHeartbeat;
using tended::testing::ProgramPath;
using tended::testing::TempDir;
using tended::testing::WireAgent;
using tended::v1::Lease;
using tended::v1::LeaseKind;
using tended::v1::OperatorService;
using ::testing::HasSubstr;

constexpr LeaseKind kReboot = tended::v1::LEASE_KIND_REBOOT;
constexpr LeaseKind kOsUpgrade = tended::v1::LEASE_KIND_OS_UPGRADE;

// Generous: the machine may be loaded. A coordinator on an empty state may wait a report
// deadline (and, after a lost state, a return deadline) before its first grant.
constexpr absl::Duration kStartTimeout = absl::Seconds(90);
constexpr absl::Duration kExitTimeout = absl::Seconds(45);
constexpr absl::Duration kGrantTimeout = absl::Seconds(150);
constexpr absl::Duration kReleaseTimeout = absl::Seconds(120);

constexpr char kRebootLease[] = R"yaml(  reboot:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
)yaml";

constexpr char kOsUpgradeLeaseWithCanary[] = R"yaml(  os_upgrade:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
    canary: canary
    canary_soak: 0s
)yaml";

constexpr char kK8sUpgradeLease[] = R"yaml(  k8s_upgrade:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
)yaml";

std::string Describe(const grpc::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat("code ", static_cast<int>(status.error_code()), ": ",
                      status.error_message().substr(0, 300));
}

std::string Describe(const Lease& lease) {
  return absl::StrCat(lease.id(), " (", lease.node_name(), ", token ", lease.fencing_token(), ", ",
                      tended::v1::LeasePhase_Name(lease.phase()), ")");
}

bool IsActive(const Lease& lease) {
  return lease.phase() != tended::v1::LEASE_PHASE_RELEASED &&
         lease.phase() != tended::v1::LEASE_PHASE_UNSPECIFIED;
}

std::string GatesText(const google::protobuf::RepeatedPtrField<tended::v1::GateResult>& gates) {
  std::vector<std::string> parts;
  for (const auto& gate : gates) {
    parts.push_back(absl::StrCat(gate.gate(), "=",
                                 gate.verdict() == tended::v1::GATE_VERDICT_PASS ? "pass" : "BLOCK",
                                 gate.verdict() == tended::v1::GATE_VERDICT_PASS
                                     ? ""
                                     : absl::StrCat(" (", gate.reason().substr(0, 300), ")")));
  }
  return absl::StrJoin(parts, "; ");
}

absl::StatusOr<std::vector<Lease>> ListLeases(OperatorService::Stub& ops,
                                              bool include_released = false) {
  tended::v1::ListLeasesRequest request;
  request.set_include_released(include_released);
  tended::v1::ListLeasesResponse response;
  grpc::Status status = ops.ListLeases(CallContext().get(), request, &response);
  if (!status.ok()) return absl::UnavailableError(absl::StrCat("ListLeases: ", Describe(status)));
  return std::vector<Lease>(response.leases().begin(), response.leases().end());
}

// The active leases of `node` (every node's when empty).
absl::StatusOr<std::vector<Lease>> ActiveLeases(OperatorService::Stub& ops,
                                                const std::string& node = "") {
  absl::StatusOr<std::vector<Lease>> all = ListLeases(ops);
  if (!all.ok()) return all.status();
  std::vector<Lease> active;
  for (const Lease& lease : *all) {
    if (IsActive(lease) && (node.empty() || lease.node_name() == node)) active.push_back(lease);
  }
  return active;
}

absl::StatusOr<std::vector<tended::v1::Event>> ListAllEvents(OperatorService::Stub& ops) {
  std::vector<tended::v1::Event> events;
  uint64_t after = 0;
  for (int page = 0; page < 10000; ++page) {
    tended::v1::ListEventsRequest request;
    request.set_after_sequence(after);
    request.set_limit(1000);
    tended::v1::ListEventsResponse response;
    grpc::Status status = ops.ListEvents(CallContext().get(), request, &response);
    if (!status.ok()) return absl::UnavailableError(absl::StrCat("ListEvents: ", Describe(status)));
    if (response.events().empty()) break;
    for (const auto& event : response.events()) events.push_back(event);
    after = response.events().rbegin()->sequence();
  }
  return events;
}

absl::StatusOr<tended::v1::Node> FindNode(OperatorService::Stub& ops, const std::string& name) {
  tended::v1::ListNodesResponse response;
  grpc::Status status =
      ops.ListNodes(CallContext().get(), tended::v1::ListNodesRequest(), &response);
  if (!status.ok()) return absl::UnavailableError(absl::StrCat("ListNodes: ", Describe(status)));
  for (const auto& node : response.nodes()) {
    if (node.facts().node_name() == name) return node;
  }
  return absl::NotFoundError(absl::StrCat(name, " is not listed"));
}

std::string ExplainText(OperatorService::Stub& ops, LeaseKind kind) {
  tended::v1::ExplainGatesRequest request;
  request.set_kind(kind);
  tended::v1::ExplainGatesResponse response;
  grpc::Status status = ops.ExplainGates(CallContext().get(), request, &response);
  if (!status.ok()) return absl::StrCat("ExplainGates: ", Describe(status));
  std::vector<std::string> parts;
  for (const auto& explanation : response.explanations()) {
    parts.push_back(absl::StrCat(tended::v1::LeaseKind_Name(explanation.kind()), ": ",
                                 GatesText(explanation.gates())));
  }
  return absl::StrJoin(parts, " | ");
}

// Asks as the agent does (every 500 ms) until a lease of `kind` is granted to it.
absl::StatusOr<Lease> WaitForGrant(WireAgent& agent, LeaseKind kind,
                                   absl::Duration timeout = kGrantTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (true) {
    tended::v1::AcquireLeaseResponse response;
    grpc::Status status = agent.Acquire(kind, "wire agent: needed", &response);
    if (status.ok() && response.has_lease() && !response.lease().id().empty()) {
      return response.lease();
    }
    last = status.ok() ? absl::StrCat("waiting, queue position ", response.queue_position(), ": ",
                                      GatesText(response.gates()))
                       : Describe(status);
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(agent.node_name(), " was not granted a ", tended::v1::LeaseKind_Name(kind),
                       " within ", absl::FormatDuration(timeout), "; last: ", last));
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

// Each of `askers` asks for `kind` about every second for `duration`, as agents that need
// it would; returns what was granted to `node` meanwhile (by an answer or in the lease
// list), if anything.
std::optional<Lease> GrantDuring(const std::vector<WireAgent*>& askers, const std::string& node,
                                 LeaseKind kind, OperatorService::Stub& ops,
                                 absl::Duration duration, std::string* transcript = nullptr) {
  const absl::Time end = absl::Now() + duration;
  do {
    for (WireAgent* agent : askers) {
      tended::v1::AcquireLeaseResponse response;
      grpc::Status status = agent->Acquire(kind, "wire agent: needed", &response);
      if (status.ok() && response.has_lease() && !response.lease().id().empty()) {
        return response.lease();
      }
      if (transcript != nullptr) {
        *transcript = status.ok() ? GatesText(response.gates()) : Describe(status);
      }
    }
    absl::StatusOr<std::vector<Lease>> active = ActiveLeases(ops, node);
    if (active.ok()) {
      for (const Lease& lease : *active) {
        if (lease.kind() == kind) return lease;
      }
    }
    absl::SleepFor(absl::Seconds(1));
  } while (absl::Now() < end);
  return std::nullopt;
}

// Polls until `node` holds no active lease.
absl::Status WaitNoActiveLease(OperatorService::Stub& ops, const std::string& node,
                               absl::Duration timeout = kReleaseTimeout) {
  std::string last;
  return tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        absl::StatusOr<std::vector<Lease>> active = ActiveLeases(ops, node);
        if (!active.ok()) return absl::UnavailableError(active.status().ToString());
        if (active->empty()) return true;
        return absl::UnavailableError(absl::StrCat("still held: ", Describe(active->front()), " ",
                                                   active->front().status_message()));
      },
      timeout, absl::StrCat(node, " to hold no lease"), nullptr, absl::Milliseconds(250));
}

uint64_t FolderBytes(const std::string& path) {
  uint64_t total = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(path, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) total += it->file_size(error);
  }
  return total;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
  out.close();
  return out.good();
}

// Runs tendedctl against the coordinator; its exit code (-1 when it did not end in time).
int RunCtl(const std::string& log_path, int port, const std::vector<std::string>& command) {
  std::vector<std::string> argv = {
      ProgramPath("TENDED_CTL_BINARY", TENDED_BINARY_DIR "/coordinator/ctl/tendedctl"), "--address",
      absl::StrCat("127.0.0.1:", port), "--insecure"};
  argv.insert(argv.end(), command.begin(), command.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> ctl = ChildProcess::Start(argv, log_path);
  if (!ctl.ok()) return -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while ((*ctl)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  if ((*ctl)->Running()) return -1;
  const int status = (*ctl)->Stop();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class PromiseFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = ProgramPath("TENDED_COORDINATOR_BINARY",
                          TENDED_BINARY_DIR "/coordinator/tended-coordinator");
    ASSERT_EQ(::access(binary_.c_str(), X_OK), 0)
        << binary_ << " is not an executable (set TENDED_COORDINATOR_BINARY)";
    std::filesystem::create_directories(StateDir());
  }

  std::string StateDir() const { return dir_.Path("state"); }

  // The configuration both the previous and the current coordinator read: `state_file`
  // (the current one takes its folder as state_dir), the leases given, `extra` keys.
  void WriteConfig(const std::string& leases, const std::string& extra = "",
                   const std::string& report_deadline = "6s") {
    config_ = dir_.Path("coordinator.yaml");
    ASSERT_TRUE(WriteFile(
        config_, absl::StrCat("listen: \"127.0.0.1:0\"\n", "state_file: ", StateDir(),
                              "/state.json\n", "fleet:\n", "  report_deadline: ", report_deadline,
                              "\n", "  report_interval: 1s\n", "leases:\n", leases, extra)));
  }

  std::string NextLog(const std::string& what = "coordinator") {
    return dir_.Path(absl::StrCat(what, "-", ++logs_, ".log"));
  }

  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> StartCoordinator(
      const std::vector<std::string>& args = {}) {
    return CoordinatorProcess::Start(binary_, config_, NextLog(), args, kStartTimeout);
  }

  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> LaunchCoordinator(
      const std::vector<std::string>& args = {}) {
    return CoordinatorProcess::Launch(binary_, config_, NextLog(), args);
  }

  TempDir dir_;
  std::string binary_;
  std::string config_;
  int logs_ = 0;
};

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

// Fault 3: gates are re-checked before the act. A halt after the grant stops the reboot.
TEST_F(PromiseFaultsTest, HaltAfterTheGrantStopsTheDisruption) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  a.SetChannel((*coordinator)->channel());
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&a);
  absl::StatusOr<Lease> held = WaitForGrant(a, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();

  tended::v1::HaltRequest halt;
  halt.set_reason("promise_faults_test: an operator stops everything");
  tended::v1::HaltResponse halted;
  ASSERT_TRUE((*coordinator)->ops().Halt(CallContext().get(), halt, &halted).ok());

  grpc::Status began = a.Begin("reboot");
  EXPECT_FALSE(began.ok()) << "BeginDisruption under a halt answered OK: the reboot would start";
  EXPECT_EQ(began.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a gate blocking the act means wait (UNAVAILABLE), keeping the lease: " << Describe(began);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->size(), 1u) << "the lease should be kept while the act waits";
  EXPECT_EQ(active->front().phase(), tended::v1::LEASE_PHASE_GRANTED)
      << "disrupting under a halt: " << Describe(active->front());

  // Once resumed, the act may start.
  tended::v1::ResumeResponse resumed;
  ASSERT_TRUE((*coordinator)
                  ->ops()
                  .Resume(CallContext().get(), tended::v1::ResumeRequest(), &resumed)
                  .ok());
  absl::Status begins = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        grpc::Status status = a.Begin("reboot");
        if (status.ok()) return true;
        return absl::UnavailableError(Describe(status));
      },
      absl::Seconds(60), "BeginDisruption after Resume", nullptr, absl::Seconds(1));
  EXPECT_TRUE(begins.ok()) << begins;
}

// A real Prometheus (Debian's /usr/bin/prometheus) whose rules the test changes.
class Prometheus {
 public:
  explicit Prometheus(const std::string& dir) : dir_(dir) {}

  absl::Status Start() {
    if (!WriteRules("") ||
        !WriteFile(dir_ + "/prometheus.yml",
                   absl::StrCat("global:\n  scrape_interval: 1m\n  evaluation_interval: 1s\n"
                                "rule_files:\n  - ",
                                dir_, "/rules.yml\n"))) {
      return absl::InternalError("cannot write the Prometheus configuration");
    }
    absl::Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::StatusOr<int> port = tended::testing::PickFreeLoopbackPort();
      if (!port.ok()) return port.status();
      port_ = *port;
      absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
          {"/usr/bin/prometheus", absl::StrCat("--config.file=", dir_, "/prometheus.yml"),
           absl::StrCat("--storage.tsdb.path=", dir_, "/data"),
           absl::StrCat("--web.listen-address=127.0.0.1:", port_), "--web.enable-lifecycle"},
          absl::StrCat(dir_, "/prometheus-", attempt, ".log"));
      if (!process.ok()) return process.status();
      process_ = *std::move(process);
      last =
          tended::testing::WaitForHttpReady(port_, "/-/ready", absl::Seconds(90), process_.get());
      if (last.ok()) return last;
      process_->Stop();
      if (!absl::IsFailedPrecondition(last)) break;
    }
    return last;
  }

  // Replaces the rules ("" for none) and reloads them.
  absl::Status SetRules(const std::string& rules) {
    if (!WriteRules(rules)) return absl::InternalError("cannot write the rules");
    absl::StatusOr<tended::testing::HttpProbeResponse> response =
        tended::testing::HttpRequestLoopback(port_, "POST", "/-/reload", absl::Seconds(20));
    if (!response.ok()) return response.status();
    if (response->status != 200) return absl::InternalError(response->body);
    return absl::OkStatus();
  }

  int port() const { return port_; }

 private:
  bool WriteRules(const std::string& rules) {
    return WriteFile(dir_ + "/rules.yml",
                     absl::StrCat("groups:\n  - name: promise-faults\n    interval: 1s\n    rules:",
                                  rules.empty() ? " []\n" : rules));
  }

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Waits until ExplainGates shows the `alerts` gate for reboots with `verdict`.
absl::Status WaitAlertsGate(OperatorService::Stub& ops, tended::v1::GateVerdict verdict) {
  return tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        tended::v1::ExplainGatesRequest request;
        request.set_kind(kReboot);
        tended::v1::ExplainGatesResponse response;
        grpc::Status status = ops.ExplainGates(CallContext().get(), request, &response);
        if (!status.ok()) return absl::UnavailableError(Describe(status));
        for (const auto& explanation : response.explanations()) {
          for (const auto& gate : explanation.gates()) {
            if (gate.gate() == "alerts" && gate.verdict() == verdict) return true;
          }
        }
        return absl::UnavailableError(ExplainText(ops, kReboot));
      },
      absl::Seconds(90), "the alerts gate to change", nullptr, absl::Milliseconds(500));
}

// Fault 3 again: an alert that starts firing after the grant stops the reboot.
TEST_F(PromiseFaultsTest, AlertFiringAfterTheGrantStopsTheDisruption) {
  if (::access("/usr/bin/prometheus", X_OK) != 0) {
    GTEST_SKIP() << "/usr/bin/prometheus is not installed (Debian package prometheus)";
  }
  std::filesystem::create_directories(dir_.Path("prometheus"));
  Prometheus prometheus(dir_.Path("prometheus"));
  ASSERT_TRUE(prometheus.Start().ok());
  WriteConfig(kRebootLease,
              absl::StrCat("alerts:\n  prometheus_url: http://127.0.0.1:", prometheus.port(),
                           "\n  firing_only: true\n  timeout: 5s\n"));
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  a.SetChannel((*coordinator)->channel());
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&a);
  absl::StatusOr<Lease> held = WaitForGrant(a, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();

  ASSERT_TRUE(prometheus
                  .SetRules(R"yaml(
      - alert: PromiseFaultsFiring
        expr: vector(1)
        for: 0s
        labels:
          severity: critical
)yaml")
                  .ok());
  absl::Status seen = WaitAlertsGate((*coordinator)->ops(), tended::v1::GATE_VERDICT_BLOCK);
  ASSERT_TRUE(seen.ok()) << seen;

  grpc::Status began = a.Begin("reboot");
  EXPECT_FALSE(began.ok()) << "BeginDisruption while an alert fires answered OK";
  EXPECT_EQ(began.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(began);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->size(), 1u) << "the lease should be kept while the act waits";
  EXPECT_EQ(active->front().phase(), tended::v1::LEASE_PHASE_GRANTED)
      << "disrupting while an alert fires: " << Describe(active->front());

  ASSERT_TRUE(prometheus.SetRules("").ok());
  ASSERT_TRUE(WaitAlertsGate((*coordinator)->ops(), tended::v1::GATE_VERDICT_PASS).ok());
  absl::Status begins = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        grpc::Status status = a.Begin("reboot");
        if (status.ok()) return true;
        return absl::UnavailableError(Describe(status));
      },
      absl::Seconds(60), "BeginDisruption once the alert stopped", nullptr, absl::Seconds(1));
  EXPECT_TRUE(begins.ok()) << begins;
}

tended::v1::OsUpgradeFacts Plan(const std::string& version) {
  tended::v1::OsUpgradeFacts os;
  os.set_upgrades_available(1);
  os.set_plan_digest(absl::StrCat("digest-demo-libssl-", version));
  tended::v1::PackageVersion* planned = os.add_planned_upgrades();
  planned->set_name("demo-libssl");
  planned->set_version(version);
  *os.mutable_plan_time() = ToProtoTimestamp(absl::Now());
  return os;
}

tended::v1::PackageChange Change(const std::string& to_version) {
  tended::v1::PackageChange change;
  change.set_name("demo-libssl");
  change.set_from_version("0.9");
  change.set_to_version(to_version);
  return change;
}

// Fault 4: the canary vets what is installed, not only what was planned at the grant.
TEST_F(PromiseFaultsTest, CanaryVetsTheVersionsTheStepInstalls) {
  WriteConfig(kOsUpgradeLeaseWithCanary);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent canary("canary", "agent-canary", "boot-c1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  for (WireAgent* agent : {&canary, &b}) {
    agent->SetChannel((*coordinator)->channel());
    agent->SetOsUpgrade(Plan("1"));
    ASSERT_TRUE(agent->Report().ok());
  }
  FleetHeartbeat heartbeat;
  heartbeat.Add(&canary);
  heartbeat.Add(&b);

  // The canary installs demo-libssl 1 and is verified.
  absl::StatusOr<Lease> canary_lease = WaitForGrant(canary, kOsUpgrade);
  ASSERT_TRUE(canary_lease.ok()) << canary_lease.status();
  grpc::Status began = canary.Begin("dpkg", {Change("1")});
  ASSERT_TRUE(began.ok()) << Describe(began);
  tended::v1::StepReport step;
  step.set_step("dpkg");
  step.set_state(tended::v1::STEP_STATE_SUCCEEDED);
  *step.add_packages() = Change("1");
  *step.mutable_start_time() = ToProtoTimestamp(absl::Now() - absl::Seconds(2));
  *step.mutable_end_time() = ToProtoTimestamp(absl::Now());
  ASSERT_TRUE(canary.ReportStep(step).ok());
  tended::v1::OsUpgradeFacts done;
  *done.mutable_plan_time() = ToProtoTimestamp(absl::Now());
  *done.mutable_last_step() = step;
  done.mutable_last_step()->set_lease_id(canary_lease->id());
  canary.SetOsUpgrade(done);
  ASSERT_TRUE(canary.Report().ok());
  absl::Status verified = WaitNoActiveLease((*coordinator)->ops(), "canary");
  ASSERT_TRUE(verified.ok()) << verified;
  canary.ForgetLease();

  // B planned demo-libssl 1 and is granted; at the act it names version 2.
  absl::StatusOr<Lease> lease_b = WaitForGrant(b, kOsUpgrade);
  ASSERT_TRUE(lease_b.ok()) << lease_b.status();
  grpc::Status unvetted = b.Begin("dpkg", {Change("2")});
  EXPECT_FALSE(unvetted.ok())
      << "node-b may install demo-libssl 2, which the canary never installed: "
      << Describe(unvetted);
  absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-b");
  ASSERT_TRUE(active.ok()) << active.status();
  for (const Lease& lease : *active) {
    EXPECT_NE(lease.phase(), tended::v1::LEASE_PHASE_DISRUPTING)
        << "disrupting with an unvetted version: " << Describe(lease);
  }
  absl::Status returned = WaitNoActiveLease((*coordinator)->ops(), "node-b", absl::Seconds(30));
  EXPECT_TRUE(returned.ok()) << "the lease should be returned: " << returned;
}

// Fault 5: after a restart, a node counts as reporting only once it reported to this process.
TEST_F(PromiseFaultsTest, RestartedCoordinatorWaitsForEveryNodeToReport) {
  WriteConfig(kRebootLease, "", /*report_deadline=*/"30s");
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  WireAgent c("node-c", "agent-c", "boot-c1");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b, &c}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  for (WireAgent* agent : {&a, &b, &c}) agent->SetReporting(false);
  absl::SleepFor(absl::Seconds(2));  // A report in flight lands on the old process.
  (*coordinator)->Stop();
  coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  for (WireAgent* agent : {&a, &b, &c}) agent->SetChannel((*coordinator)->channel());

  // B and C (down, or their agents slow) have not reported to this process.
  a.SetRebootRequired(true);
  a.SetReporting(true);
  ASSERT_TRUE(a.Report().ok());
  std::optional<Lease> early =
      GrantDuring({&a}, "node-a", kReboot, (*coordinator)->ops(), absl::Seconds(8));
  ASSERT_FALSE(early.has_value()) << "granted " << Describe(*early)
                                  << " before node-b and node-c reported to the restarted "
                                     "coordinator";

  b.SetReporting(true);
  c.SetReporting(true);
  absl::StatusOr<Lease> granted = WaitForGrant(a, kReboot);
  EXPECT_TRUE(granted.ok()) << granted.status();
}

// Fault 6: one node, one agent. A second agent instance under the node's name blocks it.
TEST_F(PromiseFaultsTest, SecondAgentInstanceBlocksTheNode) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent x("node-a", "instance-x", "boot-a1");
  WireAgent y("node-a", "instance-y", "boot-a9");
  for (WireAgent* agent : {&x, &y}) {
    agent->SetChannel((*coordinator)->channel());
    agent->SetRebootRequired(true);
  }
  ASSERT_TRUE(x.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&x);
  grpc::Status from_y = y.Report();
  heartbeat.Add(&y);
  absl::StatusOr<tended::v1::Node> node = FindNode((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(!from_y.ok() || node->state() == tended::v1::NODE_STATE_CONFLICT)
      << "a report from a second agent instance was accepted and node-a is shown as "
      << tended::v1::NodeState_Name(node->state());

  std::optional<Lease> granted =
      GrantDuring({&x, &y}, "node-a", kReboot, (*coordinator)->ops(), absl::Seconds(15));
  EXPECT_FALSE(granted.has_value())
      << "granted " << Describe(*granted) << " although two agent instances report as node-a";
  node = FindNode((*coordinator)->ops(), "node-a");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->state(), tended::v1::NODE_STATE_CONFLICT)
      << tended::v1::NodeState_Name(node->state());
}

// Fault 6 again: a report from another instance never verifies the holder's reboot.
TEST_F(PromiseFaultsTest, ReportFromAnotherInstanceNeverVerifiesAReboot) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent x("node-a", "instance-x", "boot-a1");
  x.SetChannel((*coordinator)->channel());
  x.SetRebootRequired(true);
  ASSERT_TRUE(x.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&x);
  absl::StatusOr<Lease> held = WaitForGrant(x, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();
  grpc::Status began = x.Begin("reboot");
  ASSERT_TRUE(began.ok()) << Describe(began);
  x.SetReporting(false);  // Rebooting.

  // Another instance claims node-a came back with a new boot, no reboot needed.
  WireAgent y("node-a", "instance-y", "boot-a2");
  y.SetChannel((*coordinator)->channel());
  const absl::Time end = absl::Now() + absl::Seconds(12);
  while (absl::Now() < end) {
    (void)y.Report();
    absl::StatusOr<std::vector<Lease>> active = ActiveLeases((*coordinator)->ops(), "node-a");
    ASSERT_TRUE(active.ok()) << active.status();
    ASSERT_EQ(active->size(), 1u) << "lease " << held->id()
                                  << " was released on a report from instance-y: node-a may "
                                     "still be rebooting";
    absl::SleepFor(absl::Seconds(1));
  }

  // The holder's own agent comes back on its new boot: that verifies.
  x.SetBootId("boot-a2");
  x.SetRebootRequired(false);
  x.SetReporting(true);
  absl::Status released = WaitNoActiveLease((*coordinator)->ops(), "node-a");
  EXPECT_TRUE(released.ok()) << released;
}

// Fault 7: a pod matching a blocking-pod selector is a gate, not a grant-and-return loop.
TEST_F(PromiseFaultsTest, BlockingPodIsAGateBeforeTheGrant) {
  const std::string fake = ProgramPath("TENDED_FAKE_KUBE_APISERVER_BINARY",
                                       TENDED_BINARY_DIR "/tests/fake-kube-apiserver");
  const std::string kubeconfig = dir_.Path("kubeconfig");
  absl::StatusOr<std::unique_ptr<ChildProcess>> kube =
      ChildProcess::Start({fake, "--nodes", "node-a,node-b", "--kubeconfig_out", kubeconfig,
                           "--labeled_pods", "node-a/backup-0/app=backup"},
                          dir_.Path("kube.log"));
  ASSERT_TRUE(kube.ok()) << kube.status();
  absl::Status ready = tended::testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        if (ReadText(kubeconfig).empty()) return absl::UnavailableError("no kubeconfig yet");
        return true;
      },
      absl::Seconds(30), "the fake API server's kubeconfig", kube->get());
  ASSERT_TRUE(ready.ok()) << ready;
  WriteConfig(kRebootLease, absl::StrCat("kubernetes:\n  enabled: true\n  kubeconfig: ", kubeconfig,
                                         "\n  drain:\n    timeout: 60s\n"
                                         "  poll_interval: 1s\n  facts_max_age: 10s\n"
                                         "  blocking_pod_selector: \"app=backup\"\n"));
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-node-a");
  WireAgent b("node-b", "agent-b", "boot-node-b");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  absl::SleepFor(absl::Seconds(8));  // A report deadline: the fleet is known.

  // Five check cycles of the agent, each asking once.
  std::vector<std::string> grants;
  std::string last;
  for (int cycle = 0; cycle < 5; ++cycle) {
    tended::v1::AcquireLeaseResponse response;
    grpc::Status status = a.Acquire(kReboot, "wire agent: reboot-required", &response);
    if (status.ok() && response.has_lease() && !response.lease().id().empty()) {
      grants.push_back(Describe(response.lease()));
      // Returned once the drain fails on the blocking pod; the agent asks again.
      absl::Status returned = WaitNoActiveLease((*coordinator)->ops(), "node-a", absl::Seconds(90));
      ASSERT_TRUE(returned.ok()) << returned;
      a.ForgetLease();
    } else {
      last = status.ok() ? GatesText(response.gates()) : Describe(status);
    }
    absl::SleepFor(absl::Seconds(2));
  }
  absl::StatusOr<std::vector<tended::v1::Event>> events = ListAllEvents((*coordinator)->ops());
  ASSERT_TRUE(events.ok()) << events.status();
  int granted_events = 0;
  for (const auto& event : *events) {
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED && event.node_name() == "node-a") {
      ++granted_events;
    }
  }
  EXPECT_TRUE(grants.empty()) << grants.size() << " grants in 5 check cycles although a "
                              << "blocking pod runs on node-a: " << absl::StrJoin(grants, ", ");
  EXPECT_EQ(granted_events, 0);
  EXPECT_THAT(last, HasSubstr("BLOCK")) << "the answer should say what blocks";
}

// Fault 8: only leases some flow carries out are granted; a K8S_UPGRADE lease is not.
TEST_F(PromiseFaultsTest, KubernetesUpgradeLeaseIsRefused) {
  WriteConfig(absl::StrCat(kRebootLease, kK8sUpgradeLease));
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  WireAgent b("node-b", "agent-b", "boot-b1");
  FleetHeartbeat heartbeat;
  for (WireAgent* agent : {&a, &b}) {
    agent->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(agent->Report().ok());
    heartbeat.Add(agent);
  }
  std::optional<Lease> granted = GrantDuring({&a}, "node-a", tended::v1::LEASE_KIND_K8S_UPGRADE,
                                             (*coordinator)->ops(), absl::Seconds(10));
  EXPECT_FALSE(granted.has_value())
      << "granted " << Describe(*granted) << ", which no flow carries out and which blocks reboots";

  // A Kubernetes-upgrade request never keeps a reboot from being granted.
  b.SetRebootRequired(true);
  absl::StatusOr<Lease> reboot = WaitForGrant(b, kReboot, absl::Seconds(90));
  EXPECT_TRUE(reboot.ok()) << reboot.status();
}

// Fault 11: bounded input. Oversized requests are refused and leave the state as it was.
TEST_F(PromiseFaultsTest, OversizedRequestsAreRefusedAndTheStateDoesNotGrow) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  std::vector<std::unique_ptr<WireAgent>> fleet;
  FleetHeartbeat heartbeat;
  for (int i = 1; i <= 5; ++i) {
    fleet.push_back(std::make_unique<WireAgent>(absl::StrCat("node-", i), absl::StrCat("agent-", i),
                                                absl::StrCat("boot-", i)));
    fleet.back()->SetChannel((*coordinator)->channel());
    ASSERT_TRUE(fleet.back()->Report().ok());
    heartbeat.Add(fleet.back().get());
  }
  absl::SleepFor(absl::Seconds(3));
  const uint64_t before = FolderBytes(StateDir());
  const std::string megabyte(1 << 20, 'x');

  for (int i = 1; i <= 5; ++i) {
    WireAgent big(absl::StrCat("big-", i), absl::StrCat("agent-big-", i),
                  absl::StrCat("boot-big-", i));
    big.SetChannel((*coordinator)->channel());
    big.SetRebootRequired(true, {megabyte});
    grpc::Status status = big.Report();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "ReportFacts with a 1 MB reboot reason: " << Describe(status);
  }
  for (const auto& agent : fleet) {
    grpc::Status status = agent->Acquire(kReboot, megabyte);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "AcquireLease with a 1 MB reason: " << Describe(status);
  }
  WireAgent many("many-packages", "agent-many", "boot-many");
  many.SetChannel((*coordinator)->channel());
  tended::v1::ReportFactsRequest request = many.FactsRequest();
  for (int i = 0; i < 100000; ++i) {
    tended::v1::PackageVersion* package = request.mutable_facts()->add_package_versions();
    package->set_name(absl::StrCat("pkg-", i));
    package->set_version("1.0-1");
  }
  grpc::Status status = many.SendFacts(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "ReportFacts with 100,000 packages: " << Describe(status);

  absl::SleepFor(absl::Seconds(3));
  const uint64_t after = FolderBytes(StateDir());
  EXPECT_LT(after, before + (256 << 10))
      << "refused requests grew the state from " << before << " to " << after << " bytes";
  EXPECT_EQ(RunCtl(NextLog("ctl-audit"), (*coordinator)->port(), {"audit"}), 0)
      << ReadText(dir_.Path(absl::StrCat("ctl-audit-", logs_, ".log"))).substr(0, 2000);
}

// Fault 11 again: a flood of stale fencing tokens does not push the grant out of the log.
TEST_F(PromiseFaultsTest, StaleTokenFloodKeepsTheGrantInTheEventLog) {
  WriteConfig(kRebootLease);
  absl::StatusOr<std::unique_ptr<CoordinatorProcess>> coordinator = StartCoordinator();
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WireAgent a("node-a", "agent-a", "boot-a1");
  a.SetChannel((*coordinator)->channel());
  a.SetRebootRequired(true);
  ASSERT_TRUE(a.Report().ok());
  FleetHeartbeat heartbeat;
  heartbeat.Add(&a);
  absl::StatusOr<Lease> held = WaitForGrant(a, kReboot);
  ASSERT_TRUE(held.ok()) << held.status();

  int accepted = 0;
  for (int i = 0; i < 1100; ++i) {
    grpc::Status status = a.Begin("reboot", {}, held->fencing_token() + 1);
    if (status.ok()) ++accepted;
  }
  EXPECT_EQ(accepted, 0) << "BeginDisruption accepted a token that is not the lease's";
  absl::SleepFor(absl::Seconds(3));

  absl::StatusOr<std::vector<tended::v1::Event>> events = ListAllEvents((*coordinator)->ops());
  ASSERT_TRUE(events.ok()) << events.status();
  bool grant_listed = false;
  for (const auto& event : *events) {
    grant_listed |=
        event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED && event.lease_id() == held->id();
  }
  EXPECT_TRUE(grant_listed) << "the grant of " << held->id() << " is no longer in the event log ("
                            << events->size() << " events, first "
                            << (events->empty() ? 0 : events->front().sequence()) << ")";
  EXPECT_EQ(RunCtl(NextLog("ctl-audit"), (*coordinator)->port(), {"audit"}), 0)
      << ReadText(dir_.Path(absl::StrCat("ctl-audit-", logs_, ".log"))).substr(0, 2000);
}

}  // namespace
}  // namespace tended::promise_faults
