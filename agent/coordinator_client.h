// The agent's view of the coordinator: the NodeService calls and the directive stream.
// The real client speaks gRPC; the fleet simulation substitutes an in-process one.
#ifndef TENDED_AGENT_COORDINATOR_CLIENT_H_
#define TENDED_AGENT_COORDINATOR_CLIENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_tls.h"
#include "tended/v1/node_service.pb.h"

namespace tended::agent {

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;

  virtual absl::StatusOr<tended::v1::ReportFactsResponse> ReportFacts(
      const tended::v1::ReportFactsRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::AcquireLeaseResponse> AcquireLease(
      const tended::v1::AcquireLeaseRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::RenewLeaseResponse> RenewLease(
      const tended::v1::RenewLeaseRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::BeginDisruptionResponse> BeginDisruption(
      const tended::v1::BeginDisruptionRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::ReleaseLeaseResponse> ReleaseLease(
      const tended::v1::ReleaseLeaseRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::CancelLeaseRequestResponse> CancelLeaseRequest(
      const tended::v1::CancelLeaseRequestRequest& request) = 0;
  virtual absl::StatusOr<tended::v1::ReportStepResponse> ReportStep(
      const tended::v1::ReportStepRequest& request) = 0;

  // Opens the node's directive stream (WatchDirectives). Directives arrive on
  // `on_directive` and the end of the stream (with why) on `on_end`, both possibly on
  // another thread. At most one stream at a time; opening again replaces the previous one.
  virtual void OpenDirectiveStream(const tended::v1::WatchDirectivesRequest& request,
                                   std::function<void(const tended::v1::Directive&)> on_directive,
                                   std::function<void(const absl::Status&)> on_end) = 0;
  virtual void CloseDirectiveStream() = 0;
};

// A gRPC client for `address` (HOST:PORT) over mTLS with `tls` (re-read when the files
// change), plaintext when `tls` is nullopt. Every unary call has `call_timeout`.
absl::StatusOr<std::unique_ptr<CoordinatorClient>> MakeGrpcCoordinatorClient(
    const std::string& address, const std::optional<TlsFiles>& tls, absl::Duration call_timeout);

}  // namespace tended::agent

#endif  // TENDED_AGENT_COORDINATOR_CLIENT_H_
