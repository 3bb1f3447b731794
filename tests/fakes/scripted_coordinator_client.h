// A CoordinatorClient for the Agent's unit tests, with no coordinator behind it: it records
// every request and answers each method from a script the test writes (OK answers,
// UNAVAILABLE, FAILED_PRECONDITION, ... one per call), falling back to a per-method
// function, else to OK with an empty response. The directive stream is driven by the test
// (SendDirective, EndStream). Thread-compatible: the agent's calls come from RunOnce on the
// test's thread.
#ifndef TENDED_TESTS_FAKES_SCRIPTED_COORDINATOR_CLIENT_H_
#define TENDED_TESTS_FAKES_SCRIPTED_COORDINATOR_CLIENT_H_

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/coordinator_client.h"
#include "tended/v1/node_service.pb.h"

namespace tended::testing {

class ScriptedCoordinatorClient final : public agent::CoordinatorClient {
 public:
  template <typename Request, typename Response>
  struct Method {
    // Every call, in order.
    std::vector<Request> requests;
    // The next answers, front first.
    std::deque<absl::StatusOr<Response>> script;
    // Answers once the script ran out; OK with an empty response when null.
    std::function<absl::StatusOr<Response>(const Request&)> otherwise;

    int calls() const { return static_cast<int>(requests.size()); }
    const Request& last() const { return requests.back(); }
    absl::StatusOr<Response> Answer(const Request& request) {
      requests.push_back(request);
      if (!script.empty()) {
        absl::StatusOr<Response> next = std::move(script.front());
        script.pop_front();
        return next;
      }
      if (otherwise) return otherwise(request);
      return Response();
    }
  };

  Method<tended::v1::ReportFactsRequest, tended::v1::ReportFactsResponse> report_facts;
  Method<tended::v1::AcquireLeaseRequest, tended::v1::AcquireLeaseResponse> acquire_lease;
  Method<tended::v1::RenewLeaseRequest, tended::v1::RenewLeaseResponse> renew_lease;
  Method<tended::v1::BeginDisruptionRequest, tended::v1::BeginDisruptionResponse> begin_disruption;
  Method<tended::v1::ReleaseLeaseRequest, tended::v1::ReleaseLeaseResponse> release_lease;
  Method<tended::v1::CancelLeaseRequestRequest, tended::v1::CancelLeaseRequestResponse>
      cancel_lease_request;
  Method<tended::v1::ReportStepRequest, tended::v1::ReportStepResponse> report_step;
  // Every WatchDirectives the agent opened.
  std::vector<tended::v1::WatchDirectivesRequest> watches;
  // The methods called, in order ("ReportFacts", "WatchDirectives", ...).
  std::vector<std::string> calls;

  bool stream_open() const { return stream_open_; }
  // Hands `directive` to the open stream's callback; false when no stream is open.
  bool SendDirective(const tended::v1::Directive& directive);
  // Ends the open stream with `why`.
  void EndStream(const absl::Status& why);

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
  void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest& request,
                           std::function<void(const tended::v1::Directive&)> on_directive,
                           std::function<void(const absl::Status&)> on_end) override;
  void CloseDirectiveStream() override;

 private:
  bool stream_open_ = false;
  std::function<void(const tended::v1::Directive&)> on_directive_;
  std::function<void(const absl::Status&)> on_end_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_SCRIPTED_COORDINATOR_CLIENT_H_
