#include "tests/fakes/wire_agent.h"

#include <algorithm>
#include <utility>

#include "tests/fakes/coordinator_process.h"

namespace tended::testing {

using tended::v1::Lease;

WireAgent::WireAgent(std::string node_name, std::string instance_id, std::string boot_id)
    : node_name_(std::move(node_name)), instance_id_(std::move(instance_id)) {
  facts_.set_node_name(node_name_);
  facts_.set_boot_id(std::move(boot_id));
  facts_.set_kernel_release("6.1.0-28-amd64");
  facts_.set_agent_version("wire-agent");
}

void WireAgent::SetChannel(std::shared_ptr<grpc::Channel> channel) {
  std::shared_ptr<tended::v1::NodeService::Stub> stub = tended::v1::NodeService::NewStub(channel);
  absl::MutexLock lock(&mutex_);
  stub_ = std::move(stub);
}

std::shared_ptr<tended::v1::NodeService::Stub> WireAgent::stub() const {
  absl::MutexLock lock(&mutex_);
  return stub_;
}

void WireAgent::SetBootId(std::string boot_id) {
  absl::MutexLock lock(&mutex_);
  facts_.set_boot_id(std::move(boot_id));
}

std::string WireAgent::boot_id() const {
  absl::MutexLock lock(&mutex_);
  return facts_.boot_id();
}

void WireAgent::SetRebootRequired(bool required, std::vector<std::string> reasons) {
  absl::MutexLock lock(&mutex_);
  facts_.set_reboot_required(required);
  facts_.clear_reboot_required_reasons();
  if (required && reasons.empty()) reasons.push_back("linux-image-6.1.0-28-amd64");
  for (std::string& reason : reasons) facts_.add_reboot_required_reasons(std::move(reason));
}

void WireAgent::SetOsUpgrade(tended::v1::OsUpgradeFacts os) {
  absl::MutexLock lock(&mutex_);
  *facts_.mutable_os_upgrade() = std::move(os);
}

std::optional<Lease> WireAgent::held_lease() const {
  absl::MutexLock lock(&mutex_);
  return held_;
}

uint64_t WireAgent::max_fencing_token_seen() const {
  absl::MutexLock lock(&mutex_);
  return max_token_;
}

std::string WireAgent::coordinator_state_id() const {
  absl::MutexLock lock(&mutex_);
  return state_id_;
}

void WireAgent::ForgetLease() {
  absl::MutexLock lock(&mutex_);
  held_.reset();
}

void WireAgent::Took(const Lease& lease) {
  absl::MutexLock lock(&mutex_);
  held_ = lease;
  max_token_ = std::max(max_token_, lease.fencing_token());
}

tended::v1::ReportFactsRequest WireAgent::FactsRequest() const {
  absl::MutexLock lock(&mutex_);
  tended::v1::ReportFactsRequest request;
  *request.mutable_facts() = facts_;
  request.set_agent_instance_id(instance_id_);
  if (held_.has_value()) *request.mutable_held_lease() = *held_;
  request.set_max_fencing_token_seen(max_token_);
  request.set_coordinator_state_id(state_id_);
  return request;
}

grpc::Status WireAgent::Report(absl::Duration timeout) {
  return SendFacts(FactsRequest(), timeout);
}

grpc::Status WireAgent::SendFacts(const tended::v1::ReportFactsRequest& request,
                                  absl::Duration timeout) {
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::ReportFactsResponse response;
  grpc::Status status = stub->ReportFacts(CallContext(timeout).get(), request, &response);
  if (status.ok() && !response.state_id().empty() && request.agent_instance_id() == instance_id_) {
    absl::MutexLock lock(&mutex_);
    state_id_ = response.state_id();
  }
  return status;
}

grpc::Status WireAgent::Acquire(tended::v1::LeaseKind kind, const std::string& reason,
                                tended::v1::AcquireLeaseResponse* response) {
  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(node_name_);
  request.set_kind(kind);
  request.set_reason(reason);
  request.set_agent_instance_id(instance_id_);
  return SendAcquire(request, response);
}

grpc::Status WireAgent::SendAcquire(const tended::v1::AcquireLeaseRequest& request,
                                    tended::v1::AcquireLeaseResponse* response) {
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::AcquireLeaseResponse local;
  tended::v1::AcquireLeaseResponse* out = response != nullptr ? response : &local;
  grpc::Status status = stub->AcquireLease(CallContext().get(), request, out);
  if (status.ok() && out->has_lease() && !out->lease().id().empty() &&
      request.agent_instance_id() == instance_id_) {
    Took(out->lease());
  }
  return status;
}

grpc::Status WireAgent::Begin(const std::string& step,
                              const std::vector<tended::v1::PackageChange>& packages,
                              uint64_t token, tended::v1::BeginDisruptionResponse* response) {
  std::optional<Lease> held = held_lease();
  if (!held.has_value()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the wire agent holds no lease");
  }
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::BeginDisruptionRequest request;
  request.set_lease_id(held->id());
  request.set_fencing_token(token != 0 ? token : held->fencing_token());
  request.set_step(step);
  request.set_agent_instance_id(instance_id_);
  for (const auto& change : packages) *request.add_packages() = change;
  tended::v1::BeginDisruptionResponse local;
  tended::v1::BeginDisruptionResponse* out = response != nullptr ? response : &local;
  grpc::Status status = stub->BeginDisruption(CallContext().get(), request, out);
  if (status.ok() && token == 0 && out->lease().id() == held->id()) Took(out->lease());
  return status;
}

grpc::Status WireAgent::Renew(tended::v1::RenewLeaseResponse* response) {
  std::optional<Lease> held = held_lease();
  if (!held.has_value()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the wire agent holds no lease");
  }
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::RenewLeaseRequest request;
  request.set_lease_id(held->id());
  request.set_fencing_token(held->fencing_token());
  request.set_agent_instance_id(instance_id_);
  tended::v1::RenewLeaseResponse local;
  tended::v1::RenewLeaseResponse* out = response != nullptr ? response : &local;
  grpc::Status status = stub->RenewLease(CallContext().get(), request, out);
  if (status.ok() && out->lease().id() == held->id()) Took(out->lease());
  return status;
}

grpc::Status WireAgent::Release(const std::string& reason) {
  std::optional<Lease> held = held_lease();
  if (!held.has_value()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the wire agent holds no lease");
  }
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::ReleaseLeaseRequest request;
  request.set_lease_id(held->id());
  request.set_fencing_token(held->fencing_token());
  request.set_reason(reason);
  request.set_agent_instance_id(instance_id_);
  tended::v1::ReleaseLeaseResponse response;
  grpc::Status status = stub->ReleaseLease(CallContext().get(), request, &response);
  if (status.ok()) ForgetLease();
  return status;
}

grpc::Status WireAgent::ReportStep(const tended::v1::StepReport& report,
                                   tended::v1::ReportStepResponse* response) {
  std::optional<Lease> held = held_lease();
  if (!held.has_value()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the wire agent holds no lease");
  }
  auto stub = this->stub();
  if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no coordinator");
  tended::v1::ReportStepRequest request;
  request.set_lease_id(held->id());
  request.set_fencing_token(held->fencing_token());
  *request.mutable_report() = report;
  request.mutable_report()->set_lease_id(held->id());
  request.set_agent_instance_id(instance_id_);
  tended::v1::ReportStepResponse local;
  tended::v1::ReportStepResponse* out = response != nullptr ? response : &local;
  return stub->ReportStep(CallContext().get(), request, out);
}

FleetHeartbeat::FleetHeartbeat(absl::Duration interval)
    : interval_(interval), thread_([this] { Run(); }) {}

FleetHeartbeat::~FleetHeartbeat() {
  {
    absl::MutexLock lock(&mutex_);
    stop_ = true;
  }
  thread_.join();
}

void FleetHeartbeat::Add(WireAgent* agent) {
  absl::MutexLock lock(&mutex_);
  agents_.push_back(agent);
}

void FleetHeartbeat::Run() {
  while (true) {
    std::vector<WireAgent*> agents;
    {
      absl::MutexLock lock(&mutex_);
      if (stop_) return;
      agents = agents_;
    }
    for (WireAgent* agent : agents) {
      if (agent->reporting()) (void)agent->Report(absl::Seconds(10));
    }
    absl::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
    if (stop_) return;
  }
}

}  // namespace tended::testing
