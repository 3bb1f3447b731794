// An agent's CoordinatorClient that calls a Coordinator in the same process, for the fleet
// simulation: no gRPC and no threads. The coordinator lives behind a CoordinatorEndpoint
// that the simulation can empty (the coordinator is down: every call fails with
// UNAVAILABLE and open streams end) and refill with a new instance (a restart), and each
// client can be cut off on its own (a partitioned node). The directive stream is driven
// by the caller: Pump() hands what the coordinator queued to the agent's callbacks, on
// the caller's thread. A fault injector can fail single calls, before they reach the
// coordinator or after it acted (the answer lost on the way back). Thread-compatible.
#ifndef TENDED_TESTS_FAKES_IN_PROCESS_COORDINATOR_CLIENT_H_
#define TENDED_TESTS_FAKES_IN_PROCESS_COORDINATOR_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/coordinator_client.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/directive_hub.h"

namespace tended::testing {

// Where in-process clients find the coordinator: the running instance, or none while it
// is down. Every change ends the directive streams opened before it, as a restart does.
class CoordinatorEndpoint {
 public:
  coordinator::Coordinator* coordinator() const { return coordinator_; }
  // nullptr takes the coordinator away. Call before destroying the instance it held.
  void Set(coordinator::Coordinator* coordinator) {
    coordinator_ = coordinator;
    ++generation_;
  }
  uint64_t generation() const { return generation_; }

 private:
  coordinator::Coordinator* coordinator_ = nullptr;
  uint64_t generation_ = 0;
};

class InProcessCoordinatorClient final : public agent::CoordinatorClient {
 public:
  enum class Fault {
    kNone,
    // UNAVAILABLE without reaching the coordinator.
    kUnreachable,
    // The coordinator handles the call; the caller gets UNAVAILABLE instead of the answer.
    kLoseResponse,
  };

  // `endpoint` must outlive the client.
  explicit InProcessCoordinatorClient(CoordinatorEndpoint* endpoint);
  ~InProcessCoordinatorClient() override;

  // Cuts this client off from the coordinator (or reconnects it).
  void SetReachable(bool reachable) { reachable_ = reachable; }
  bool reachable() const { return reachable_; }

  // Asked once per unary call with the method's name ("ReportFacts", ...). Null: no faults.
  void SetFaultInjector(std::function<Fault(const char* method)> injector) {
    fault_injector_ = std::move(injector);
  }

  // Delivers the open stream's queued directives to on_directive, in order; ends the
  // stream through on_end (UNAVAILABLE) when the coordinator went away or was replaced
  // since it opened, or this client is cut off. Returns how many callbacks it made.
  int Pump();
  bool stream_open() const { return stream_.has_value(); }

  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request) override;
  absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest& request) override;
  absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest& request) override;
  absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest& request) override;
  absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest& request) override;
  absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest& request) override;
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request) override;

  // Like the gRPC client: opening replaces the previous stream, and closing ends it with
  // CANCELLED through on_end.
  void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest& request,
                           std::function<void(const tended::v1::Directive&)> on_directive,
                           std::function<void(const absl::Status&)> on_end) override;
  void CloseDirectiveStream() override;

 private:
  struct Stream {
    std::string node;
    uint64_t generation = 0;
    // Null when the stream could not subscribe: it ends at the next Pump().
    std::shared_ptr<coordinator::DirectiveHub::Subscription> subscription;
    absl::Status subscribe_error;
    std::function<void(const tended::v1::Directive&)> on_directive;
    std::function<void(const absl::Status&)> on_end;
  };

  // The coordinator a call reaches now, or UNAVAILABLE.
  absl::StatusOr<coordinator::Coordinator*> Reach() const;
  // Runs `call` on the coordinator unless unreachable, applying the injected fault.
  template <typename Response>
  absl::StatusOr<Response> Call(
      const char* method,
      const std::function<absl::StatusOr<Response>(coordinator::Coordinator&)>& call);
  // Why the open stream is broken, or OK while it still works.
  absl::Status StreamProblem() const;
  // Forgets the stream (unsubscribing while its coordinator still runs) and reports `why`.
  void EndStream(const absl::Status& why);

  CoordinatorEndpoint* endpoint_;
  bool reachable_ = true;
  std::function<Fault(const char* method)> fault_injector_;
  std::optional<Stream> stream_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_IN_PROCESS_COORDINATOR_CLIENT_H_
