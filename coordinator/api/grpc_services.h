// The gRPC face of the coordinator, on gRPC's callback API: NodeService, OperatorService
// and grpc.health.v1.Health. Every NodeService and OperatorService call first passes the
// AccessControl check (the caller's certificate against the node or role it needs); health
// is open. Unary handlers only unpack, run the Coordinator call on the
// bounded work pool (it may wait for durability) and convert the status. WatchDirectives
// is a reactor that pushes each directive as it is queued: no thread per stream and no
// polling.
#ifndef TENDED_COORDINATOR_API_GRPC_SERVICES_H_
#define TENDED_COORDINATOR_API_GRPC_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <set>

#include "absl/synchronization/mutex.h"
#include "coordinator/api/access_control.h"
#include "coordinator/api/work_pool.h"
#include "coordinator/core/coordinator.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"

namespace tended::coordinator {

class NodeServiceImpl final : public tended::v1::NodeService::CallbackService {
 public:
  NodeServiceImpl(Coordinator& coordinator, WorkPool& pool, const std::atomic<bool>& stopping,
                  const AccessControl& access)
      : coordinator_(coordinator), pool_(pool), stopping_(stopping), access_(access) {}

  grpc::ServerUnaryReactor* ReportFacts(grpc::CallbackServerContext* context,
                                        const tended::v1::ReportFactsRequest* request,
                                        tended::v1::ReportFactsResponse* response) override;
  grpc::ServerWriteReactor<tended::v1::Directive>* WatchDirectives(
      grpc::CallbackServerContext* context,
      const tended::v1::WatchDirectivesRequest* request) override;
  grpc::ServerUnaryReactor* AcquireLease(grpc::CallbackServerContext* context,
                                         const tended::v1::AcquireLeaseRequest* request,
                                         tended::v1::AcquireLeaseResponse* response) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* context,
                                       const tended::v1::RenewLeaseRequest* request,
                                       tended::v1::RenewLeaseResponse* response) override;
  grpc::ServerUnaryReactor* BeginDisruption(grpc::CallbackServerContext* context,
                                            const tended::v1::BeginDisruptionRequest* request,
                                            tended::v1::BeginDisruptionResponse* response) override;
  grpc::ServerUnaryReactor* ReleaseLease(grpc::CallbackServerContext* context,
                                         const tended::v1::ReleaseLeaseRequest* request,
                                         tended::v1::ReleaseLeaseResponse* response) override;
  grpc::ServerUnaryReactor* CancelLeaseRequest(
      grpc::CallbackServerContext* context, const tended::v1::CancelLeaseRequestRequest* request,
      tended::v1::CancelLeaseRequestResponse* response) override;
  grpc::ServerUnaryReactor* ReportStep(grpc::CallbackServerContext* context,
                                       const tended::v1::ReportStepRequest* request,
                                       tended::v1::ReportStepResponse* response) override;

 private:
  // The node the lease belongs to, "" for an unknown lease.
  std::string LeaseNode(const std::string& lease_id) const;

  Coordinator& coordinator_;
  WorkPool& pool_;
  const std::atomic<bool>& stopping_;
  const AccessControl& access_;
};

class OperatorServiceImpl final : public tended::v1::OperatorService::CallbackService {
 public:
  OperatorServiceImpl(Coordinator& coordinator, WorkPool& pool, const AccessControl& access)
      : coordinator_(coordinator), pool_(pool), access_(access) {}

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const tended::v1::ListNodesRequest* request,
                                      tended::v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* ListLeases(grpc::CallbackServerContext* context,
                                       const tended::v1::ListLeasesRequest* request,
                                       tended::v1::ListLeasesResponse* response) override;
  grpc::ServerUnaryReactor* ExplainGates(grpc::CallbackServerContext* context,
                                         const tended::v1::ExplainGatesRequest* request,
                                         tended::v1::ExplainGatesResponse* response) override;
  grpc::ServerUnaryReactor* Halt(grpc::CallbackServerContext* context,
                                 const tended::v1::HaltRequest* request,
                                 tended::v1::HaltResponse* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const tended::v1::ResumeRequest* request,
                                   tended::v1::ResumeResponse* response) override;
  grpc::ServerUnaryReactor* ForceReleaseLease(
      grpc::CallbackServerContext* context, const tended::v1::ForceReleaseLeaseRequest* request,
      tended::v1::ForceReleaseLeaseResponse* response) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* context,
                                       const tended::v1::ListEventsRequest* request,
                                       tended::v1::ListEventsResponse* response) override;
  grpc::ServerUnaryReactor* RemoveNode(grpc::CallbackServerContext* context,
                                       const tended::v1::RemoveNodeRequest* request,
                                       tended::v1::RemoveNodeResponse* response) override;
  grpc::ServerUnaryReactor* ResumeRollout(grpc::CallbackServerContext* context,
                                          const tended::v1::ResumeRolloutRequest* request,
                                          tended::v1::ResumeRolloutResponse* response) override;
  grpc::ServerUnaryReactor* StartK8sRollout(grpc::CallbackServerContext* context,
                                     const tended::v1::StartK8sRolloutRequest* request,
                                     tended::v1::StartK8sRolloutResponse* response) override;
  grpc::ServerUnaryReactor* GetK8sRollout(grpc::CallbackServerContext* context,
                                     const tended::v1::GetK8sRolloutRequest* request,
                                     tended::v1::GetK8sRolloutResponse* response) override;
  grpc::ServerUnaryReactor* ListK8sRollouts(grpc::CallbackServerContext* context,
                                     const tended::v1::ListK8sRolloutsRequest* request,
                                     tended::v1::ListK8sRolloutsResponse* response) override;
  grpc::ServerUnaryReactor* CancelK8sRollout(grpc::CallbackServerContext* context,
                                     const tended::v1::CancelK8sRolloutRequest* request,
                                     tended::v1::CancelK8sRolloutResponse* response) override;

 private:
  Coordinator& coordinator_;
  WorkPool& pool_;
  const AccessControl& access_;
};

// SERVING for "" and both tended services while running, NOT_SERVING once shutting down
// (watchers are told), NOT_FOUND (SERVICE_UNKNOWN for Watch) for any other service name.
class HealthServiceImpl final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthServiceImpl(const std::atomic<bool>& stopping) : stopping_(stopping) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

  // Tells every watcher NOT_SERVING and ends its stream.
  void Shutdown();

  class Watcher;
  // What Shutdown reaches a watcher through; it outlives the watcher.
  struct WatcherLink {
    absl::Mutex mutex;
    Watcher* watcher ABSL_GUARDED_BY(mutex) = nullptr;
  };

 private:
  friend class Watcher;
  const std::atomic<bool>& stopping_;
  absl::Mutex mutex_;
  std::set<std::shared_ptr<WatcherLink>> watchers_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_API_GRPC_SERVICES_H_
