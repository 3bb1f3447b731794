#include "tests/fakes/scripted_coordinator_client.h"

#include <utility>

namespace tended::testing {

bool ScriptedCoordinatorClient::SendDirective(const tended::v1::Directive& directive) {
  if (!stream_open_) return false;
  if (on_directive_) on_directive_(directive);
  return true;
}

void ScriptedCoordinatorClient::EndStream(const absl::Status& why) {
  if (!stream_open_) return;
  stream_open_ = false;
  auto on_end = std::move(on_end_);
  on_directive_ = nullptr;
  on_end_ = nullptr;
  if (on_end) on_end(why);
}

absl::StatusOr<tended::v1::ReportFactsResponse> ScriptedCoordinatorClient::ReportFacts(
    const tended::v1::ReportFactsRequest& request) {
  calls.push_back("ReportFacts");
  return report_facts.Answer(request);
}

absl::StatusOr<tended::v1::AcquireLeaseResponse> ScriptedCoordinatorClient::AcquireLease(
    const tended::v1::AcquireLeaseRequest& request) {
  calls.push_back("AcquireLease");
  return acquire_lease.Answer(request);
}

absl::StatusOr<tended::v1::RenewLeaseResponse> ScriptedCoordinatorClient::RenewLease(
    const tended::v1::RenewLeaseRequest& request) {
  calls.push_back("RenewLease");
  return renew_lease.Answer(request);
}

absl::StatusOr<tended::v1::BeginDisruptionResponse> ScriptedCoordinatorClient::BeginDisruption(
    const tended::v1::BeginDisruptionRequest& request) {
  calls.push_back("BeginDisruption");
  return begin_disruption.Answer(request);
}

absl::StatusOr<tended::v1::ReleaseLeaseResponse> ScriptedCoordinatorClient::ReleaseLease(
    const tended::v1::ReleaseLeaseRequest& request) {
  calls.push_back("ReleaseLease");
  return release_lease.Answer(request);
}

absl::StatusOr<tended::v1::CancelLeaseRequestResponse>
ScriptedCoordinatorClient::CancelLeaseRequest(
    const tended::v1::CancelLeaseRequestRequest& request) {
  calls.push_back("CancelLeaseRequest");
  return cancel_lease_request.Answer(request);
}

absl::StatusOr<tended::v1::ReportStepResponse> ScriptedCoordinatorClient::ReportStep(
    const tended::v1::ReportStepRequest& request) {
  calls.push_back("ReportStep");
  return report_step.Answer(request);
}

void ScriptedCoordinatorClient::OpenDirectiveStream(
    const tended::v1::WatchDirectivesRequest& request,
    std::function<void(const tended::v1::Directive&)> on_directive,
    std::function<void(const absl::Status&)> on_end) {
  CloseDirectiveStream();
  calls.push_back("WatchDirectives");
  watches.push_back(request);
  stream_open_ = true;
  on_directive_ = std::move(on_directive);
  on_end_ = std::move(on_end);
}

void ScriptedCoordinatorClient::CloseDirectiveStream() {
  EndStream(absl::CancelledError("the client closed the stream"));
}

}  // namespace tended::testing
