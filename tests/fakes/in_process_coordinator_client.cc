#include "tests/fakes/in_process_coordinator_client.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tended::testing {

InProcessCoordinatorClient::InProcessCoordinatorClient(CoordinatorEndpoint* endpoint)
    : endpoint_(endpoint) {}

InProcessCoordinatorClient::~InProcessCoordinatorClient() {
  if (stream_.has_value()) {
    // Nobody is left to tell: drop the callbacks before ending the stream.
    stream_->on_end = nullptr;
    EndStream(absl::CancelledError("the client went away"));
  }
}

absl::StatusOr<coordinator::Coordinator*> InProcessCoordinatorClient::Reach() const {
  if (!reachable_) return absl::UnavailableError("this node is cut off from the coordinator");
  if (endpoint_->coordinator() == nullptr) {
    return absl::UnavailableError("the coordinator is down");
  }
  return endpoint_->coordinator();
}

template <typename Response>
absl::StatusOr<Response> InProcessCoordinatorClient::Call(
    const char* method,
    const std::function<absl::StatusOr<Response>(coordinator::Coordinator&)>& call) {
  absl::StatusOr<coordinator::Coordinator*> coordinator = Reach();
  if (!coordinator.ok()) return coordinator.status();
  const Fault fault = fault_injector_ ? fault_injector_(method) : Fault::kNone;
  if (fault == Fault::kUnreachable) {
    return absl::UnavailableError(absl::StrCat(method, ": injected: the call was lost"));
  }
  absl::StatusOr<Response> response = call(**coordinator);
  if (fault == Fault::kLoseResponse) {
    return absl::UnavailableError(absl::StrCat(method, ": injected: the answer was lost"));
  }
  return response;
}

absl::StatusOr<tended::v1::ReportFactsResponse> InProcessCoordinatorClient::ReportFacts(
    const tended::v1::ReportFactsRequest& request) {
  return Call<tended::v1::ReportFactsResponse>(
      "ReportFacts", [&](coordinator::Coordinator& c) { return c.ReportFacts(request); });
}

absl::StatusOr<tended::v1::AcquireLeaseResponse> InProcessCoordinatorClient::AcquireLease(
    const tended::v1::AcquireLeaseRequest& request) {
  return Call<tended::v1::AcquireLeaseResponse>(
      "AcquireLease", [&](coordinator::Coordinator& c) { return c.AcquireLease(request); });
}

absl::StatusOr<tended::v1::RenewLeaseResponse> InProcessCoordinatorClient::RenewLease(
    const tended::v1::RenewLeaseRequest& request) {
  return Call<tended::v1::RenewLeaseResponse>(
      "RenewLease", [&](coordinator::Coordinator& c) { return c.RenewLease(request); });
}

absl::StatusOr<tended::v1::BeginDisruptionResponse> InProcessCoordinatorClient::BeginDisruption(
    const tended::v1::BeginDisruptionRequest& request) {
  return Call<tended::v1::BeginDisruptionResponse>(
      "BeginDisruption", [&](coordinator::Coordinator& c) { return c.BeginDisruption(request); });
}

absl::StatusOr<tended::v1::ReleaseLeaseResponse> InProcessCoordinatorClient::ReleaseLease(
    const tended::v1::ReleaseLeaseRequest& request) {
  return Call<tended::v1::ReleaseLeaseResponse>(
      "ReleaseLease", [&](coordinator::Coordinator& c) { return c.ReleaseLease(request); });
}

absl::StatusOr<tended::v1::CancelLeaseRequestResponse>
InProcessCoordinatorClient::CancelLeaseRequest(
    const tended::v1::CancelLeaseRequestRequest& request) {
  return Call<tended::v1::CancelLeaseRequestResponse>(
      "CancelLeaseRequest",
      [&](coordinator::Coordinator& c) { return c.CancelLeaseRequest(request); });
}

absl::StatusOr<tended::v1::ReportStepResponse> InProcessCoordinatorClient::ReportStep(
    const tended::v1::ReportStepRequest& request) {
  return Call<tended::v1::ReportStepResponse>(
      "ReportStep", [&](coordinator::Coordinator& c) { return c.ReportStep(request); });
}

void InProcessCoordinatorClient::OpenDirectiveStream(
    const tended::v1::WatchDirectivesRequest& request,
    std::function<void(const tended::v1::Directive&)> on_directive,
    std::function<void(const absl::Status&)> on_end) {
  const std::string& node_name = request.node_name();
  CloseDirectiveStream();
  Stream stream;
  stream.node = node_name;
  stream.generation = endpoint_->generation();
  stream.on_directive = std::move(on_directive);
  stream.on_end = std::move(on_end);
  absl::StatusOr<coordinator::Coordinator*> coordinator = Reach();
  if (coordinator.ok()) {
    auto subscription = (*coordinator)->SubscribeDirectives(request);
    if (subscription.ok()) {
      stream.subscription = *std::move(subscription);
    } else {
      stream.subscribe_error = subscription.status();
    }
  } else {
    stream.subscribe_error = coordinator.status();
  }
  stream_ = std::move(stream);
}

void InProcessCoordinatorClient::CloseDirectiveStream() {
  if (stream_.has_value()) EndStream(absl::CancelledError("the client closed the stream"));
}

absl::Status InProcessCoordinatorClient::StreamProblem() const {
  if (!stream_->subscribe_error.ok()) return stream_->subscribe_error;
  if (!reachable_) return absl::UnavailableError("this node is cut off from the coordinator");
  if (stream_->generation != endpoint_->generation()) {
    return absl::UnavailableError("the coordinator went away");
  }
  if (stream_->subscription == nullptr || stream_->subscription->closed()) {
    return absl::UnavailableError("the coordinator ended the directive stream");
  }
  return absl::OkStatus();
}

void InProcessCoordinatorClient::EndStream(const absl::Status& why) {
  Stream stream = *std::move(stream_);
  stream_.reset();
  if (stream.subscription != nullptr && stream.generation == endpoint_->generation() &&
      endpoint_->coordinator() != nullptr) {
    endpoint_->coordinator()->UnsubscribeDirectives(stream.node, stream.subscription);
  }
  if (stream.on_end) stream.on_end(why);
}

int InProcessCoordinatorClient::Pump() {
  int callbacks = 0;
  // Bounded: a coordinator queues a handful of directives per call at most.
  for (int i = 0; i < 1000 && stream_.has_value(); ++i) {
    if (absl::Status problem = StreamProblem(); !problem.ok()) {
      EndStream(problem);
      return callbacks + 1;
    }
    std::optional<tended::v1::Directive> next = stream_->subscription->Next(absl::ZeroDuration());
    if (!next.has_value()) break;
    // Copied: the callback may close or replace the stream.
    auto on_directive = stream_->on_directive;
    ++callbacks;
    if (on_directive) on_directive(*next);
  }
  return callbacks;
}

}  // namespace tended::testing
