// Shared by the promise_faults_*_test.cc files, which check the one promise under the
// faults of issue 8, section 1, from outside: the real tended-coordinator program
// ($TENDED_COORDINATOR_BINARY, else this build's) on a configuration each test writes, on
// 127.0.0.1 ports it picks itself, with the tests playing the agents over gRPC
// (tests/fakes/wire_agent.h). Each test asserts the promise (who may be disrupted when), not
// how the coordinator keeps it. Here: the lease configurations, the operator calls and
// waits the tests share, and the fixture that writes the configuration and starts
// coordinators. Nothing here links the coordinator's code, so the same tests run against
// any build of it.
#ifndef TENDED_TESTS_INTEGRATION_PROMISE_FAULTS_FIXTURE_H_
#define TENDED_TESTS_INTEGRATION_PROMISE_FAULTS_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended::promise_faults {

inline constexpr v1::LeaseKind kReboot = v1::LEASE_KIND_REBOOT;
inline constexpr v1::LeaseKind kOsUpgrade = v1::LEASE_KIND_OS_UPGRADE;

// Generous: the machine may be loaded. A coordinator on an empty state may wait a report
// deadline (and, after a lost state, a return deadline) before its first grant.
inline constexpr absl::Duration kStartTimeout = absl::Seconds(90);
inline constexpr absl::Duration kExitTimeout = absl::Seconds(45);
inline constexpr absl::Duration kGrantTimeout = absl::Seconds(150);
inline constexpr absl::Duration kReleaseTimeout = absl::Seconds(120);

inline constexpr char kRebootLease[] = R"yaml(  reboot:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
)yaml";

inline constexpr char kOsUpgradeLeaseWithCanary[] = R"yaml(  os_upgrade:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
    canary: canary
    canary_soak: 0s
)yaml";

inline constexpr char kK8sUpgradeLease[] = R"yaml(  k8s_upgrade:
    concurrency: 1
    soak: 0s
    expected_duration: 5s
    renew_deadline: 2m
    return_deadline: 15s
)yaml";

std::string Describe(const grpc::Status& status);
std::string Describe(const v1::Lease& lease);
bool IsActive(const v1::Lease& lease);
std::string GatesText(const google::protobuf::RepeatedPtrField<v1::GateResult>& gates);

absl::StatusOr<std::vector<v1::Lease>> ListLeases(v1::OperatorService::Stub& ops,
                                                  bool include_released = false);
// The active leases of `node` (every node's when empty).
absl::StatusOr<std::vector<v1::Lease>> ActiveLeases(v1::OperatorService::Stub& ops,
                                                    const std::string& node = "");
absl::StatusOr<std::vector<v1::Event>> ListAllEvents(v1::OperatorService::Stub& ops);
absl::StatusOr<v1::Node> FindNode(v1::OperatorService::Stub& ops, const std::string& name);
std::string ExplainText(v1::OperatorService::Stub& ops, v1::LeaseKind kind);

// Asks as the agent does (every 500 ms) until a lease of `kind` is granted to it.
absl::StatusOr<v1::Lease> WaitForGrant(testing::WireAgent& agent, v1::LeaseKind kind,
                                       absl::Duration timeout = kGrantTimeout);

// Each of `askers` asks for `kind` about every second for `duration`, as agents that need
// it would; returns what was granted to `node` meanwhile (by an answer or in the lease
// list), if anything.
std::optional<v1::Lease> GrantDuring(const std::vector<testing::WireAgent*>& askers,
                                     const std::string& node, v1::LeaseKind kind,
                                     v1::OperatorService::Stub& ops, absl::Duration duration,
                                     std::string* transcript = nullptr);

// Polls until `node` holds no active lease.
absl::Status WaitNoActiveLease(v1::OperatorService::Stub& ops, const std::string& node,
                               absl::Duration timeout = kReleaseTimeout);

uint64_t FolderBytes(const std::string& path);
bool WriteFile(const std::string& path, const std::string& text);
// Runs tendedctl against the coordinator; its exit code (-1 when it did not end in time).
int RunCtl(const std::string& log_path, int port, const std::vector<std::string>& command);
std::string ReadText(const std::string& path);

class PromiseFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::string StateDir() const { return dir_.Path("state"); }

  // The configuration both the previous and the current coordinator read: `state_file`
  // (the current one takes its folder as state_dir), the leases given, `extra` keys.
  void WriteConfig(const std::string& leases, const std::string& extra = "",
                   const std::string& report_deadline = "6s");

  std::string NextLog(const std::string& what = "coordinator");

  absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> StartCoordinator(
      const std::vector<std::string>& args = {});

  absl::StatusOr<std::unique_ptr<testing::CoordinatorProcess>> LaunchCoordinator(
      const std::vector<std::string>& args = {});

  testing::TempDir dir_;
  std::string binary_;
  std::string config_;
  int logs_ = 0;
};

}  // namespace tended::promise_faults

#endif  // TENDED_TESTS_INTEGRATION_PROMISE_FAULTS_FIXTURE_H_
