#include <grpcpp/grpcpp.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "agent/coordinator_client.h"
#include "common/grpc_status.h"
#include "tended/v1/node_service.grpc.pb.h"

namespace tended::agent {
namespace {

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel, absl::Duration call_timeout)
      : channel_(std::move(channel)),
        stub_(tended::v1::NodeService::NewStub(channel_)),
        call_timeout_(call_timeout) {}

  ~GrpcCoordinatorClient() override { CloseDirectiveStream(); }

  absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::ReportFacts, request);
  }
  absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::AcquireLease, request);
  }
  absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::RenewLease, request);
  }
  absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::BeginDisruption, request);
  }
  absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::ReleaseLease, request);
  }
  absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::CancelLeaseRequest, request);
  }
  absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request) override {
    return Call(&tended::v1::NodeService::Stub::ReportStep, request);
  }

  void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest& request,
                           std::function<void(const tended::v1::Directive&)> on_directive,
                           std::function<void(const absl::Status&)> on_end) override {
    CloseDirectiveStream();
    std::lock_guard<std::mutex> lock(stream_mutex_);
    auto context = std::make_shared<grpc::ClientContext>();
    stream_context_ = context;
    stream_thread_ = std::thread([this, context, request, on_directive = std::move(on_directive),
                                  on_end = std::move(on_end)] {
      auto reader = stub_->WatchDirectives(context.get(), request);
      tended::v1::Directive directive;
      while (reader->Read(&directive)) on_directive(directive);
      grpc::Status status = reader->Finish();
      on_end(status.ok() ? absl::UnavailableError("the coordinator ended the directive stream")
                         : FromGrpcStatus(status));
    });
  }

  void CloseDirectiveStream() override {
    std::thread finished;
    {
      std::lock_guard<std::mutex> lock(stream_mutex_);
      if (stream_context_ != nullptr) stream_context_->TryCancel();
      stream_context_.reset();
      finished = std::move(stream_thread_);
    }
    if (finished.joinable()) finished.join();
  }

 private:
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(grpc::Status (tended::v1::NodeService::Stub::*method)(
                                    grpc::ClientContext*, const Request&, Response*),
                                const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
    Response response;
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tended::v1::NodeService::Stub> stub_;
  absl::Duration call_timeout_;
  std::mutex stream_mutex_;
  std::shared_ptr<grpc::ClientContext> stream_context_;
  std::thread stream_thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorClient>> MakeGrpcCoordinatorClient(
    const std::string& address, const std::optional<TlsFiles>& tls, absl::Duration call_timeout) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls.has_value()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> made =
        MakeChannelTlsCredentials(*tls);
    if (!made.ok()) return made.status();
    credentials = *std::move(made);
  }
  grpc::ChannelArguments arguments;
  // Reconnect quickly after the coordinator restarts; the agent adds its own backoff.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  auto channel = grpc::CreateCustomChannel(address, credentials, arguments);
  return std::unique_ptr<CoordinatorClient>(
      new GrpcCoordinatorClient(std::move(channel), call_timeout));
}

}  // namespace tended::agent
