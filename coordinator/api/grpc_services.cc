#include "coordinator/api/grpc_services.h"

#include "common/grpc_status.h"

namespace tended::coordinator {
namespace {

// Copies an OK result into the response, or converts the error.
template <typename Response>
grpc::Status Answer(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

constexpr absl::Duration kStreamPoll = absl::Milliseconds(500);

}  // namespace

grpc::Status NodeServiceImpl::ReportFacts(grpc::ServerContext*,
                                          const tended::v1::ReportFactsRequest* request,
                                          tended::v1::ReportFactsResponse* response) {
  return Answer(coordinator_.ReportFacts(*request), response);
}

grpc::Status NodeServiceImpl::WatchDirectives(grpc::ServerContext* context,
                                              const tended::v1::WatchDirectivesRequest* request,
                                              grpc::ServerWriter<tended::v1::Directive>* writer) {
  auto subscription = coordinator_.SubscribeDirectives(request->node_name());
  if (!subscription.ok()) return ToGrpcStatus(subscription.status());
  // Bounded by the client's lifetime: ends on cancel, a failed write or shutdown.
  while (!context->IsCancelled() && !stopping_.load()) {
    std::optional<tended::v1::Directive> directive = (*subscription)->Next(kStreamPoll);
    if ((*subscription)->closed()) break;
    if (directive.has_value() && !writer->Write(*directive)) break;
  }
  coordinator_.UnsubscribeDirectives(request->node_name(), *subscription);
  if (stopping_.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator stopping");
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::AcquireLease(grpc::ServerContext*,
                                           const tended::v1::AcquireLeaseRequest* request,
                                           tended::v1::AcquireLeaseResponse* response) {
  return Answer(coordinator_.AcquireLease(*request), response);
}

grpc::Status NodeServiceImpl::RenewLease(grpc::ServerContext*,
                                         const tended::v1::RenewLeaseRequest* request,
                                         tended::v1::RenewLeaseResponse* response) {
  return Answer(coordinator_.RenewLease(*request), response);
}

grpc::Status NodeServiceImpl::BeginDisruption(grpc::ServerContext*,
                                              const tended::v1::BeginDisruptionRequest* request,
                                              tended::v1::BeginDisruptionResponse* response) {
  return Answer(coordinator_.BeginDisruption(*request), response);
}

grpc::Status NodeServiceImpl::ReleaseLease(grpc::ServerContext*,
                                           const tended::v1::ReleaseLeaseRequest* request,
                                           tended::v1::ReleaseLeaseResponse* response) {
  return Answer(coordinator_.ReleaseLease(*request), response);
}

grpc::Status NodeServiceImpl::CancelLeaseRequest(
    grpc::ServerContext*, const tended::v1::CancelLeaseRequestRequest* request,
    tended::v1::CancelLeaseRequestResponse* response) {
  return Answer(coordinator_.CancelLeaseRequest(*request), response);
}

grpc::Status NodeServiceImpl::ReportStep(grpc::ServerContext*,
                                         const tended::v1::ReportStepRequest* request,
                                         tended::v1::ReportStepResponse* response) {
  return Answer(coordinator_.ReportStep(*request), response);
}

grpc::Status OperatorServiceImpl::ListNodes(grpc::ServerContext*,
                                            const tended::v1::ListNodesRequest*,
                                            tended::v1::ListNodesResponse* response) {
  *response = coordinator_.ListNodes();
  return grpc::Status::OK;
}

grpc::Status OperatorServiceImpl::ListLeases(grpc::ServerContext*,
                                             const tended::v1::ListLeasesRequest* request,
                                             tended::v1::ListLeasesResponse* response) {
  *response = coordinator_.ListLeases(*request);
  return grpc::Status::OK;
}

grpc::Status OperatorServiceImpl::ExplainGates(grpc::ServerContext*,
                                               const tended::v1::ExplainGatesRequest* request,
                                               tended::v1::ExplainGatesResponse* response) {
  return Answer(coordinator_.ExplainGates(*request), response);
}

grpc::Status OperatorServiceImpl::Halt(grpc::ServerContext*, const tended::v1::HaltRequest* request,
                                       tended::v1::HaltResponse* response) {
  return Answer(coordinator_.Halt(*request), response);
}

grpc::Status OperatorServiceImpl::Resume(grpc::ServerContext*, const tended::v1::ResumeRequest*,
                                         tended::v1::ResumeResponse* response) {
  return Answer(coordinator_.Resume(), response);
}

grpc::Status OperatorServiceImpl::ForceReleaseLease(
    grpc::ServerContext*, const tended::v1::ForceReleaseLeaseRequest* request,
    tended::v1::ForceReleaseLeaseResponse* response) {
  return Answer(coordinator_.ForceReleaseLease(*request), response);
}

grpc::Status OperatorServiceImpl::ListEvents(grpc::ServerContext*,
                                             const tended::v1::ListEventsRequest* request,
                                             tended::v1::ListEventsResponse* response) {
  return Answer(coordinator_.ListEvents(*request), response);
}

grpc::Status OperatorServiceImpl::RemoveNode(grpc::ServerContext*,
                                             const tended::v1::RemoveNodeRequest* request,
                                             tended::v1::RemoveNodeResponse* response) {
  return Answer(coordinator_.RemoveNode(*request), response);
}

grpc::Status OperatorServiceImpl::ResumeRollout(grpc::ServerContext*,
                                                const tended::v1::ResumeRolloutRequest* request,
                                                tended::v1::ResumeRolloutResponse* response) {
  return Answer(coordinator_.ResumeRollout(*request), response);
}

namespace {

bool IsOurService(const std::string& service) {
  return service.empty() || service == tended::v1::NodeService::service_full_name() ||
         service == tended::v1::OperatorService::service_full_name();
}

}  // namespace

grpc::Status HealthServiceImpl::Check(grpc::ServerContext*,
                                      const grpc::health::v1::HealthCheckRequest* request,
                                      grpc::health::v1::HealthCheckResponse* response) {
  if (!IsOurService(request->service())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "unknown service \"" + request->service() + "\"");
  }
  response->set_status(stopping_.load() ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                                        : grpc::health::v1::HealthCheckResponse::SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthServiceImpl::Watch(
    grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) {
  grpc::health::v1::HealthCheckResponse current;
  current.set_status(!IsOurService(request->service())
                         ? grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN
                         : grpc::health::v1::HealthCheckResponse::SERVING);
  if (!writer->Write(current)) return grpc::Status::OK;
  while (!context->IsCancelled() && !stopping_.load()) {
    absl::SleepFor(kStreamPoll);
  }
  if (stopping_.load() && IsOurService(request->service())) {
    current.set_status(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    writer->Write(current);
  }
  return grpc::Status::OK;
}

}  // namespace tended::coordinator
