#include "coordinator/api/grpc_services.h"

#include <optional>
#include <string>
#include <utility>

#include "common/grpc_status.h"

namespace tended::coordinator {
namespace {

const grpc::Status kOverloaded(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "the coordinator has too many calls queued; try again shortly");

// Runs `call` on the pool and finishes the call with its result.
template <typename Request, typename Response, typename Call>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, WorkPool& pool,
                                const Request* request, Response* response, Call call) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued = pool.Submit([context, reactor, request, response, call] {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"));
      return;
    }
    absl::StatusOr<Response> result = call(*request);
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    *response = *std::move(result);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) reactor->Finish(kOverloaded);
  return reactor;
}

// One WatchDirectives stream. The hub's ready callback may run on any thread, also after
// the stream ended: it reaches the reactor only through `Link`, which outlives it.
class DirectiveStream final : public grpc::ServerWriteReactor<tended::v1::Directive> {
 public:
  struct Link {
    absl::Mutex mutex;
    DirectiveStream* stream ABSL_GUARDED_BY(mutex) = nullptr;
  };

  DirectiveStream(Coordinator& coordinator, const tended::v1::WatchDirectivesRequest& request,
                  const std::atomic<bool>& stopping)
      : coordinator_(coordinator), node_(request.node_name()), stopping_(stopping),
        link_(std::make_shared<Link>()) {
    auto subscription = coordinator_.SubscribeDirectives(request);
    if (!subscription.ok()) {
      Finish(ToGrpcStatus(subscription.status()));
      finished_ = true;
      return;
    }
    subscription_ = *std::move(subscription);
    {
      absl::MutexLock lock(&link_->mutex);
      link_->stream = this;
    }
    subscription_->SetReadyCallback([link = link_] {
      absl::MutexLock lock(&link->mutex);
      if (link->stream != nullptr) link->stream->PumpLocked();
    });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&link_->mutex);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::OK);
      return;
    }
    PumpLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&link_->mutex);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the agent went away"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&link_->mutex);
      link_->stream = nullptr;
    }
    if (subscription_ != nullptr) coordinator_.UnsubscribeDirectives(node_, subscription_);
    delete this;
  }

  // Writes the next directive unless one is in flight; ends the stream once the hub closed it.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mutex) {
    if (finished_ || writing_) return;
    std::optional<tended::v1::Directive> next = subscription_->TryNext();
    if (!next.has_value()) {
      if (subscription_->closed()) {
        FinishLocked(stopping_.load()
                         ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator stopping")
                         : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "the stream fell behind; reconnect"));
      }
      return;
    }
    current_ = *std::move(next);
    writing_ = true;
    StartWrite(&current_);
  }

 private:
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mutex) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  Coordinator& coordinator_;
  const std::string node_;
  const std::atomic<bool>& stopping_;
  std::shared_ptr<Link> link_;
  std::shared_ptr<DirectiveHub::Subscription> subscription_;
  tended::v1::Directive current_;
  bool writing_ = false;
  bool finished_ = false;
};

// A stream refused before it started.
template <typename Message>
class RefusedStream final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit RefusedStream(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

bool IsOurService(const std::string& service) {
  return service.empty() || service == tended::v1::NodeService::service_full_name() ||
         service == tended::v1::OperatorService::service_full_name();
}

}  // namespace

std::string NodeServiceImpl::LeaseNode(const std::string& lease_id) const {
  if (!access_.enforcing()) return "";
  return coordinator_.LeaseNodeName(lease_id).value_or("");
}

// `node` is an expression over `request` naming the node the call acts for.
#define TENDED_NODE_CALL(Method, Request, Response, node)                                         \
  grpc::ServerUnaryReactor* NodeServiceImpl::Method(grpc::CallbackServerContext* context,         \
                                                    const Request* request, Response* response) { \
    if (grpc::Status allowed = access_.CheckNode(*context, #Method, node); !allowed.ok()) {       \
      return Refuse(context, std::move(allowed));                                                 \
    }                                                                                             \
    return Unary(context, pool_, request, response,                                               \
                 [this](const Request& r) { return coordinator_.Method(r); });                    \
  }

// A heartbeat is answered on gRPC's own thread when the state can be read without waiting
// (most reports): no hop to the pool. Anything else goes through the pool.
grpc::ServerUnaryReactor* NodeServiceImpl::ReportFacts(grpc::CallbackServerContext* context,
                                                       const tended::v1::ReportFactsRequest* request,
                                                       tended::v1::ReportFactsResponse* response) {
  if (grpc::Status allowed =
          access_.CheckNode(*context, "ReportFacts", request->facts().node_name());
      !allowed.ok()) {
    return Refuse(context, std::move(allowed));
  }
  // A held lease offered for adoption must be the node's own.
  if (request->has_held_lease() && !request->held_lease().node_name().empty()) {
    if (grpc::Status allowed =
            access_.CheckNode(*context, "ReportFacts", request->held_lease().node_name());
        !allowed.ok()) {
      return Refuse(context, std::move(allowed));
    }
  }
  if (auto heartbeat = coordinator_.TryHeartbeat(*request); heartbeat.has_value()) {
    *response = *std::move(heartbeat);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  return Unary(context, pool_, request, response, [this](const tended::v1::ReportFactsRequest& r) {
    return coordinator_.ReportFacts(r);
  });
}
TENDED_NODE_CALL(AcquireLease, tended::v1::AcquireLeaseRequest, tended::v1::AcquireLeaseResponse,
                 request->node_name())
TENDED_NODE_CALL(RenewLease, tended::v1::RenewLeaseRequest, tended::v1::RenewLeaseResponse,
                 LeaseNode(request->lease_id()))
TENDED_NODE_CALL(BeginDisruption, tended::v1::BeginDisruptionRequest,
                 tended::v1::BeginDisruptionResponse, LeaseNode(request->lease_id()))
TENDED_NODE_CALL(ReleaseLease, tended::v1::ReleaseLeaseRequest, tended::v1::ReleaseLeaseResponse,
                 LeaseNode(request->lease_id()))
TENDED_NODE_CALL(CancelLeaseRequest, tended::v1::CancelLeaseRequestRequest,
                 tended::v1::CancelLeaseRequestResponse, request->node_name())
TENDED_NODE_CALL(ReportStep, tended::v1::ReportStepRequest, tended::v1::ReportStepResponse,
                 LeaseNode(request->lease_id()))
#undef TENDED_NODE_CALL

grpc::ServerWriteReactor<tended::v1::Directive>* NodeServiceImpl::WatchDirectives(
    grpc::CallbackServerContext* context, const tended::v1::WatchDirectivesRequest* request) {
  if (grpc::Status allowed = access_.CheckNode(*context, "WatchDirectives", request->node_name());
      !allowed.ok()) {
    return new RefusedStream<tended::v1::Directive>(std::move(allowed));
  }
  return new DirectiveStream(coordinator_, *request, stopping_);
}

#define TENDED_OPERATOR_CALL(Method, Request, Response, role, Body)                          \
  grpc::ServerUnaryReactor* OperatorServiceImpl::Method(                                     \
      grpc::CallbackServerContext* context, const Request* request, Response* response) {    \
    if (grpc::Status allowed = access_.CheckOperator(*context, #Method, OperatorRole::role); \
        !allowed.ok()) {                                                                     \
      return Refuse(context, std::move(allowed));                                            \
    }                                                                                        \
    return Unary(context, pool_, request, response,                                          \
                 [this](const Request& r) -> absl::StatusOr<Response> { Body; });            \
  }

TENDED_OPERATOR_CALL(ListNodes, tended::v1::ListNodesRequest, tended::v1::ListNodesResponse, kRead,
                     (void)r;
                     return coordinator_.ListNodes())
TENDED_OPERATOR_CALL(ListLeases, tended::v1::ListLeasesRequest, tended::v1::ListLeasesResponse,
                     kRead, return coordinator_.ListLeases(r))
TENDED_OPERATOR_CALL(ExplainGates, tended::v1::ExplainGatesRequest,
                     tended::v1::ExplainGatesResponse, kRead, return coordinator_.ExplainGates(r))
TENDED_OPERATOR_CALL(Halt, tended::v1::HaltRequest, tended::v1::HaltResponse, kAdmin,
                     return coordinator_.Halt(r))
TENDED_OPERATOR_CALL(Resume, tended::v1::ResumeRequest, tended::v1::ResumeResponse, kAdmin, (void)r;
                     return coordinator_.Resume())
TENDED_OPERATOR_CALL(ForceReleaseLease, tended::v1::ForceReleaseLeaseRequest,
                     tended::v1::ForceReleaseLeaseResponse, kAdmin,
                     return coordinator_.ForceReleaseLease(r))
TENDED_OPERATOR_CALL(ListEvents, tended::v1::ListEventsRequest, tended::v1::ListEventsResponse,
                     kRead, return coordinator_.ListEvents(r))
TENDED_OPERATOR_CALL(RemoveNode, tended::v1::RemoveNodeRequest, tended::v1::RemoveNodeResponse,
                     kAdmin, return coordinator_.RemoveNode(r))
TENDED_OPERATOR_CALL(ResumeRollout, tended::v1::ResumeRolloutRequest,
                     tended::v1::ResumeRolloutResponse, kAdmin,
                     return coordinator_.ResumeRollout(r))
TENDED_OPERATOR_CALL(StartK8sRollout, tended::v1::StartK8sRolloutRequest,
                     tended::v1::StartK8sRolloutResponse, kAdmin,
                     return coordinator_.StartK8sRollout(r))
TENDED_OPERATOR_CALL(GetK8sRollout, tended::v1::GetK8sRolloutRequest,
                     tended::v1::GetK8sRolloutResponse, kRead, return coordinator_.GetK8sRollout(r))
TENDED_OPERATOR_CALL(ListK8sRollouts, tended::v1::ListK8sRolloutsRequest,
                     tended::v1::ListK8sRolloutsResponse, kRead,
                     return coordinator_.ListK8sRollouts(r))
TENDED_OPERATOR_CALL(CancelK8sRollout, tended::v1::CancelK8sRolloutRequest,
                     tended::v1::CancelK8sRolloutResponse, kAdmin,
                     return coordinator_.CancelK8sRollout(r))
#undef TENDED_OPERATOR_CALL

grpc::ServerUnaryReactor* HealthServiceImpl::Check(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::health::v1::HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!IsOurService(request->service())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service \"" + request->service() + "\""));
    return reactor;
  }
  response->set_status(stopping_.load() ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                                        : grpc::health::v1::HealthCheckResponse::SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

class HealthServiceImpl::Watcher final
    : public grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse> {
 public:
  Watcher(HealthServiceImpl& service, const std::string& name)
      : service_(service), link_(std::make_shared<WatcherLink>()) {
    ours_ = IsOurService(name);
    current_.set_status(!ours_ ? grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN
                        : service_.stopping_.load()
                            ? grpc::health::v1::HealthCheckResponse::NOT_SERVING
                            : grpc::health::v1::HealthCheckResponse::SERVING);
    absl::MutexLock lock(&link_->mutex);
    link_->watcher = this;
    {
      absl::MutexLock registry(&service_.mutex_);
      service_.watchers_.insert(link_);
    }
    writing_ = true;
    StartWrite(&current_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&link_->mutex);
    writing_ = false;
    if (!ok) {
      FinishLocked();
      return;
    }
    // A stop that came while a write was in flight still owes the watcher NOT_SERVING.
    if (stop_after_write_) WriteStopLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&link_->mutex);
    FinishLocked();
  }
  void OnDone() override {
    {
      absl::MutexLock lock(&link_->mutex);
      link_->watcher = nullptr;
    }
    {
      absl::MutexLock registry(&service_.mutex_);
      service_.watchers_.erase(link_);
    }
    delete this;
  }
  // Shutting down: NOT_SERVING, then the end of the stream.
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mutex) {
    if (finished_) return;
    stop_after_write_ = true;
    if (writing_) return;  // OnWriteDone goes on.
    WriteStopLocked();
  }

 private:
  // NOT_SERVING once, then the end of the stream.
  void WriteStopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mutex) {
    if (!ours_ || current_.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
      FinishLocked();
      return;
    }
    current_.set_status(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(link_->mutex) {
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  HealthServiceImpl& service_;
  std::shared_ptr<WatcherLink> link_;
  grpc::health::v1::HealthCheckResponse current_;
  bool ours_ = false;
  bool writing_ = false;
  bool stop_after_write_ = false;
  bool finished_ = false;
};

grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* HealthServiceImpl::Watch(
    grpc::CallbackServerContext*, const grpc::health::v1::HealthCheckRequest* request) {
  return new Watcher(*this, request->service());
}

void HealthServiceImpl::Shutdown() {
  std::set<std::shared_ptr<WatcherLink>> links;
  {
    absl::MutexLock lock(&mutex_);
    links = watchers_;
  }
  for (const auto& link : links) {
    absl::MutexLock lock(&link->mutex);
    if (link->watcher != nullptr) link->watcher->StopLocked();
  }
}

}  // namespace tended::coordinator
