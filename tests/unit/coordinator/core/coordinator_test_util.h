// A coordinator on a real ledger with a small fleet that the tests drive by hand: nodes
// report, ask, begin and come back; the clock moves only when told.
#ifndef TENDED_TESTS_UNIT_COORDINATOR_CORE_COORDINATOR_TEST_UTIL_H_
#define TENDED_TESTS_UNIT_COORDINATOR_CORE_COORDINATOR_TEST_UTIL_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "coordinator/config/config.h"
#include "coordinator/core/coordinator.h"
#include "gtest/gtest.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"

namespace tended::testing {

inline coordinator::CoordinatorConfig SmallFleetConfig() {
  coordinator::CoordinatorConfig config;
  config.fleet.report_deadline = absl::Minutes(2);
  config.fleet.report_interval = absl::Seconds(30);
  config.fleet.return_backoff = absl::Minutes(5);
  config.fleet.return_backoff_max = absl::Hours(1);
  config.history_limit = 200;
  coordinator::LeasePolicy reboot;
  reboot.concurrency = 1;
  reboot.soak = absl::Minutes(10);
  reboot.expected_duration = absl::Minutes(5);
  reboot.renew_deadline = absl::Minutes(5);
  reboot.return_deadline = absl::Minutes(15);
  reboot.begin_wait = absl::Minutes(10);
  config.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
  return config;
}

class FleetFixture : public ::testing::Test {
 protected:
  explicit FleetFixture(coordinator::CoordinatorConfig config = SmallFleetConfig())
      : harness_(std::move(config)) {}

  void SetUp() override { ASSERT_TRUE(harness_.Start().ok()); }

  coordinator::Coordinator& coordinator() { return harness_.coordinator(); }
  FakeClock& clock() { return harness_.clock(); }

  std::string& BootOf(const std::string& node) {
    std::string& boot = boots_[node];
    if (boot.empty()) boot = absl::StrCat("boot-", node, "-1");
    return boot;
  }

  absl::StatusOr<tended::v1::ReportFactsResponse> Report(const std::string& node,
                                                         bool reboot_required = false,
                                                         const std::string& instance = "") {
    tended::v1::ReportFactsRequest request =
        FactsReport(node, BootOf(node), reboot_required, instance);
    return coordinator().ReportFacts(request);
  }

  // The node reboots: a new boot id, reported without the need.
  void Reboot(const std::string& node) {
    std::string& boot = BootOf(node);
    boot = absl::StrCat(boot, "+");
  }

  // Every node reports, then the first-start recovery period passes.
  void BringUp(const std::vector<std::string>& nodes) {
    for (const std::string& node : nodes) ASSERT_TRUE(Report(node).ok()) << node;
    clock().Advance(harness_.config().fleet.report_deadline + absl::Seconds(1));
    for (const std::string& node : nodes) ASSERT_TRUE(Report(node).ok()) << node;
    coordinator().Tick();
  }

  absl::StatusOr<tended::v1::AcquireLeaseResponse> Ask(
      const std::string& node, tended::v1::LeaseKind kind = tended::v1::LEASE_KIND_REBOOT) {
    return coordinator().AcquireLease(LeaseRequest(node, kind, "a test wants it"));
  }

  std::vector<tended::v1::Lease> Active() {
    tended::v1::ListLeasesResponse leases = coordinator().ListLeases({});
    return {leases.leases().begin(), leases.leases().end()};
  }

  std::vector<tended::v1::Event> Events() {
    tended::v1::ListEventsRequest request;
    request.set_limit(1000);
    auto events = coordinator().ListEvents(request);
    if (!events.ok()) return {};
    return {events->events().begin(), events->events().end()};
  }

  int CountEvents(tended::v1::EventType type) {
    int count = 0;
    for (const auto& event : Events()) count += event.type() == type ? 1 : 0;
    return count;
  }

  std::string GateReason(tended::v1::LeaseKind kind, const std::string& gate) {
    tended::v1::ExplainGatesRequest request;
    request.set_kind(kind);
    auto explained = coordinator().ExplainGates(request);
    if (!explained.ok() || explained->explanations_size() != 1) return "(no explanation)";
    for (const auto& result : explained->explanations(0).gates()) {
      if (result.gate() == gate) {
        return absl::StrCat(tended::v1::GateVerdict_Name(result.verdict()), ": ",
                            result.reason());
      }
    }
    return "(no such gate)";
  }

  CoordinatorHarness harness_;
  std::map<std::string, std::string> boots_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_UNIT_COORDINATOR_CORE_COORDINATOR_TEST_UTIL_H_
