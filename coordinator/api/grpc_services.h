// The gRPC face of the coordinator: NodeService, OperatorService and grpc.health.v1.Health.
// Handlers only unpack, call the Coordinator and convert the status.
#ifndef TENDED_COORDINATOR_GRPC_SERVICES_H_
#define TENDED_COORDINATOR_GRPC_SERVICES_H_

#include <atomic>

#include "coordinator/core/coordinator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"

namespace tended::coordinator {

class NodeServiceImpl final : public tended::v1::NodeService::Service {
 public:
  explicit NodeServiceImpl(Coordinator& coordinator, const std::atomic<bool>& stopping)
      : coordinator_(coordinator), stopping_(stopping) {}

  grpc::Status ReportFacts(grpc::ServerContext* context,
                           const tended::v1::ReportFactsRequest* request,
                           tended::v1::ReportFactsResponse* response) override;
  grpc::Status WatchDirectives(grpc::ServerContext* context,
                               const tended::v1::WatchDirectivesRequest* request,
                               grpc::ServerWriter<tended::v1::Directive>* writer) override;
  grpc::Status AcquireLease(grpc::ServerContext* context,
                            const tended::v1::AcquireLeaseRequest* request,
                            tended::v1::AcquireLeaseResponse* response) override;
  grpc::Status RenewLease(grpc::ServerContext* context,
                          const tended::v1::RenewLeaseRequest* request,
                          tended::v1::RenewLeaseResponse* response) override;
  grpc::Status BeginDisruption(grpc::ServerContext* context,
                               const tended::v1::BeginDisruptionRequest* request,
                               tended::v1::BeginDisruptionResponse* response) override;
  grpc::Status ReleaseLease(grpc::ServerContext* context,
                            const tended::v1::ReleaseLeaseRequest* request,
                            tended::v1::ReleaseLeaseResponse* response) override;
  grpc::Status CancelLeaseRequest(grpc::ServerContext* context,
                                  const tended::v1::CancelLeaseRequestRequest* request,
                                  tended::v1::CancelLeaseRequestResponse* response) override;
  grpc::Status ReportStep(grpc::ServerContext* context,
                          const tended::v1::ReportStepRequest* request,
                          tended::v1::ReportStepResponse* response) override;

 private:
  Coordinator& coordinator_;
  const std::atomic<bool>& stopping_;
};

class OperatorServiceImpl final : public tended::v1::OperatorService::Service {
 public:
  explicit OperatorServiceImpl(Coordinator& coordinator) : coordinator_(coordinator) {}

  grpc::Status ListNodes(grpc::ServerContext* context, const tended::v1::ListNodesRequest* request,
                         tended::v1::ListNodesResponse* response) override;
  grpc::Status ListLeases(grpc::ServerContext* context,
                          const tended::v1::ListLeasesRequest* request,
                          tended::v1::ListLeasesResponse* response) override;
  grpc::Status ExplainGates(grpc::ServerContext* context,
                            const tended::v1::ExplainGatesRequest* request,
                            tended::v1::ExplainGatesResponse* response) override;
  grpc::Status Halt(grpc::ServerContext* context, const tended::v1::HaltRequest* request,
                    tended::v1::HaltResponse* response) override;
  grpc::Status Resume(grpc::ServerContext* context, const tended::v1::ResumeRequest* request,
                      tended::v1::ResumeResponse* response) override;
  grpc::Status ForceReleaseLease(grpc::ServerContext* context,
                                 const tended::v1::ForceReleaseLeaseRequest* request,
                                 tended::v1::ForceReleaseLeaseResponse* response) override;
  grpc::Status ListEvents(grpc::ServerContext* context,
                          const tended::v1::ListEventsRequest* request,
                          tended::v1::ListEventsResponse* response) override;
  grpc::Status RemoveNode(grpc::ServerContext* context,
                          const tended::v1::RemoveNodeRequest* request,
                          tended::v1::RemoveNodeResponse* response) override;
  grpc::Status ResumeRollout(grpc::ServerContext* context,
                             const tended::v1::ResumeRolloutRequest* request,
                             tended::v1::ResumeRolloutResponse* response) override;

 private:
  Coordinator& coordinator_;
};

// SERVING for "" and both tended services while running, NOT_SERVING once shutting down,
// NOT_FOUND for any other service name.
class HealthServiceImpl final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthServiceImpl(const std::atomic<bool>& stopping) : stopping_(stopping) {}

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  const std::atomic<bool>& stopping_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GRPC_SERVICES_H_
