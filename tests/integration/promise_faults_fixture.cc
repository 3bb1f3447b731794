// The promise_faults tests' shared calls and fixture (see promise_faults_fixture.h).
#include "tests/integration/promise_faults_fixture.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"

namespace tended::promise_faults {

using tended::testing::CallContext;
using tended::testing::ChildProcess;
using tended::testing::CoordinatorProcess;
using tended::testing::ProgramPath;
using tended::testing::WireAgent;
using tended::v1::Lease;
using tended::v1::LeaseKind;
using tended::v1::OperatorService;

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

absl::StatusOr<std::vector<Lease>> ListLeases(OperatorService::Stub& ops, bool include_released) {
  tended::v1::ListLeasesRequest request;
  request.set_include_released(include_released);
  tended::v1::ListLeasesResponse response;
  grpc::Status status = ops.ListLeases(CallContext().get(), request, &response);
  if (!status.ok()) return absl::UnavailableError(absl::StrCat("ListLeases: ", Describe(status)));
  return std::vector<Lease>(response.leases().begin(), response.leases().end());
}

absl::StatusOr<std::vector<Lease>> ActiveLeases(OperatorService::Stub& ops,
                                                const std::string& node) {
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

absl::StatusOr<Lease> WaitForGrant(WireAgent& agent, LeaseKind kind, absl::Duration timeout) {
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

std::optional<Lease> GrantDuring(const std::vector<WireAgent*>& askers, const std::string& node,
                                 LeaseKind kind, OperatorService::Stub& ops,
                                 absl::Duration duration, std::string* transcript) {
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

absl::Status WaitNoActiveLease(OperatorService::Stub& ops, const std::string& node,
                               absl::Duration timeout) {
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

void PromiseFaultsTest::SetUp() {
  binary_ =
      ProgramPath("TENDED_COORDINATOR_BINARY", TENDED_BINARY_DIR "/coordinator/tended-coordinator");
  ASSERT_EQ(::access(binary_.c_str(), X_OK), 0)
      << binary_ << " is not an executable (set TENDED_COORDINATOR_BINARY)";
  std::filesystem::create_directories(StateDir());
}

void PromiseFaultsTest::WriteConfig(const std::string& leases, const std::string& extra,
                                    const std::string& report_deadline) {
  config_ = dir_.Path("coordinator.yaml");
  ASSERT_TRUE(WriteFile(
      config_, absl::StrCat("listen: \"127.0.0.1:0\"\n", "state_file: ", StateDir(),
                            "/state.json\n", "fleet:\n", "  report_deadline: ", report_deadline,
                            "\n", "  report_interval: 1s\n", "leases:\n", leases, extra)));
}

std::string PromiseFaultsTest::NextLog(const std::string& what) {
  return dir_.Path(absl::StrCat(what, "-", ++logs_, ".log"));
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> PromiseFaultsTest::StartCoordinator(
    const std::vector<std::string>& args) {
  return CoordinatorProcess::Start(binary_, config_, NextLog(), args, kStartTimeout);
}

absl::StatusOr<std::unique_ptr<CoordinatorProcess>> PromiseFaultsTest::LaunchCoordinator(
    const std::vector<std::string>& args) {
  return CoordinatorProcess::Launch(binary_, config_, NextLog(), args);
}

}  // namespace tended::promise_faults
