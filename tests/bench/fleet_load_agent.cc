#include "tests/bench/fleet_load_agent.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"

namespace tended::bench {

std::string CodeName(grpc::StatusCode code) {
  static const std::map<grpc::StatusCode, std::string> kNames = {
      {grpc::StatusCode::CANCELLED, "CANCELLED"},
      {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
      {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
      {grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
      {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
      {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
      {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
      {grpc::StatusCode::ABORTED, "ABORTED"},
      {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
      {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
      {grpc::StatusCode::INTERNAL, "INTERNAL"},
      {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
      {grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
      {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
  };
  auto it = kNames.find(code);
  return it == kNames.end() ? absl::StrCat("CODE_", static_cast<int>(code)) : it->second;
}

template <typename Response, typename Request, typename StartFn, typename DoneFn>
void SimulatedAgent::Call(Method method, const Request& request, StartFn start, DoneFn done) {
  struct Pending {
    grpc::ClientContext context;
    Request request;
    Response response;
    SteadyTime start;
  };
  auto pending = std::make_shared<Pending>();
  pending->request = request;
  pending->context.set_deadline(std::chrono::system_clock::now() +
                                absl::ToChronoNanoseconds(fleet_.options.call_timeout));
  pending->start = SteadyClock::now();
  ++fleet_.calls_in_flight;
  start(stub_.get(), &pending->context, &pending->request, &pending->response,
        [this, method, pending, done](grpc::Status status) {
          fleet_.stats.Record(method, MillisSince(pending->start), status.error_code());
          fleet_.loop.Post([this, pending, done, status] {
            --fleet_.calls_in_flight;
            done(status, pending->response);
          });
        });
}

void SimulatedAgent::Start() {
  grpc::ChannelArguments arguments;
  // Its own connection, as separate agents have.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  channel_ = grpc::CreateCustomChannel(fleet_.options.address, grpc::InsecureChannelCredentials(),
                                       arguments);
  stub_ = NodeService::NewStub(channel_);
  PeriodicReport();
}

void SimulatedAgent::SentinelAppears() {
  if (fleet_.stopping || step_ != Step::kNone) return;
  if (role_ == Role::kRebooter && fleet_.quiescing) return;
  sentinel_ = true;
  sentinel_time_ = SteadyClock::now();
  reaction_ms_.reset();
  grant_ms_.reset();
  SendReport([this](bool) { Acquire(); });
}

void SimulatedAgent::Quiesce() {
  if (step_ != Step::kWaiting && !(step_ == Step::kNone && sentinel_)) return;
  sentinel_ = false;
  step_ = Step::kNone;
  ++acquire_generation_;
  tended::v1::CancelLeaseRequestRequest cancel;
  cancel.set_node_name(identity_.node_name);
  cancel.set_kind(tended::v1::LEASE_KIND_REBOOT);
  cancel.set_agent_instance_id(identity_.instance_id);
  Call<tended::v1::CancelLeaseRequestResponse>(
      kCancelLeaseRequest, cancel,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->CancelLeaseRequest(context, request, response, std::move(done));
      },
      [](const grpc::Status&, tended::v1::CancelLeaseRequestResponse&) {});
  SendReport(nullptr);
}

void SimulatedAgent::OnDirective(const tended::v1::Directive& directive) {
  stream_backoff_ = absl::Seconds(1);
  if (directive.has_lease_granted()) {
    OnLease(directive.lease_granted());
  } else if (directive.has_lease_revoked()) {
    if (lease_.has_value() && lease_->id() == directive.lease_revoked().id()) {
      LeaseEnded();
    }
  } else if (directive.has_report_now()) {
    SendReport(nullptr);
  }
}

void SimulatedAgent::OnStreamDone(DirectiveStream* stream, const grpc::Status& status) {
  const bool lived_long = SteadyClock::now() - stream->started() > std::chrono::seconds(10);
  delete stream;
  stream_ = nullptr;
  --fleet_.streams_open;
  if (fleet_.stopping) return;
  fleet_.stats.Record(kWatchDirectives, 0, status.error_code());
  if (lived_long) stream_backoff_ = absl::Seconds(1);
  fleet_.loop.At(SteadyAfter(stream_backoff_), [this] { OpenStream(); });
  stream_backoff_ = std::min(stream_backoff_ * 2, absl::Seconds(30));
}

void SimulatedAgent::PeriodicReport() {
  if (fleet_.stopping) return;
  SendReport([this](bool ok) {
    absl::Duration next = report_interval();
    if (!ok) {
      next = report_backoff_;
      report_backoff_ = std::min(report_backoff_ * 2, absl::Seconds(30));
    } else {
      report_backoff_ = absl::Seconds(1);
      if (!registered_) {
        registered_ = true;
        ++fleet_.registered;
        OpenStream();
        // Spread the fleet's reports over the interval.
        next = report_interval() * fleet_.Uniform(0, 1);
        if (role_ == Role::kRebooter) {
          fleet_.loop.At(SteadyAfter(report_interval() * fleet_.Uniform(0, 1)),
                         [this] { SentinelAppears(); });
        }
      }
    }
    fleet_.loop.At(SteadyAfter(next), [this] { PeriodicReport(); });
  });
}

absl::Duration SimulatedAgent::report_interval() const {
  return coordinator_interval_ > absl::ZeroDuration()
             ? std::min(fleet_.options.report_interval, coordinator_interval_)
             : fleet_.options.report_interval;
}

void SimulatedAgent::SendReport(std::function<void(bool)> then) {
  if (fleet_.stopping) return;
  tended::v1::ReportFactsRequest request;
  tended::v1::NodeFacts* facts = request.mutable_facts();
  facts->set_node_name(identity_.node_name);
  facts->set_boot_id(identity_.boot_id);
  *facts->mutable_boot_time() = ToProtoTimestamp(absl::FromUnixSeconds(identity_.boot_time));
  facts->set_kernel_release("6.1.0-28-amd64");
  facts->set_reboot_required(sentinel_);
  if (sentinel_) facts->add_reboot_required_reasons("linux-image-6.1.0-28-amd64");
  facts->set_kubelet_version("v1.30.4");
  facts->set_agent_version("fleet-load");
  request.set_agent_instance_id(identity_.instance_id);
  if (lease_.has_value()) *request.mutable_held_lease() = *lease_;
  request.set_max_fencing_token_seen(identity_.max_fencing_token);
  request.set_coordinator_state_id(state_id_);
  Call<tended::v1::ReportFactsResponse>(
      kReportFacts, request,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->ReportFacts(context, request, response, std::move(done));
      },
      [this, then](const grpc::Status& status, tended::v1::ReportFactsResponse& response) {
        if (status.ok()) {
          if (!response.state_id().empty()) state_id_ = response.state_id();
          if (response.has_report_interval()) {
            coordinator_interval_ = FromProtoDuration(response.report_interval());
          }
        }
        if (then) then(status.ok());
      });
}

void SimulatedAgent::OpenStream() {
  if (fleet_.stopping || stream_ != nullptr) return;
  stream_ = new DirectiveStream(fleet_, this);
  ++fleet_.streams_open;
  tended::v1::WatchDirectivesRequest request;
  request.set_node_name(identity_.node_name);
  request.set_agent_instance_id(identity_.instance_id);
  stream_->Start(*stub_, std::move(request));
}

void SimulatedAgent::Acquire() {
  if (fleet_.stopping || !sentinel_ || step_ > Step::kWaiting) return;
  step_ = Step::kWaiting;
  const uint64_t generation = ++acquire_generation_;
  acquire_time_ = SteadyClock::now();
  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(identity_.node_name);
  request.set_kind(tended::v1::LEASE_KIND_REBOOT);
  request.set_reason("reboot-required: linux-image-6.1.0-28-amd64");
  request.set_agent_instance_id(identity_.instance_id);
  Call<tended::v1::AcquireLeaseResponse>(
      kAcquireLease, request,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->AcquireLease(context, request, response, std::move(done));
      },
      [this, generation](const grpc::Status& status, tended::v1::AcquireLeaseResponse& answer) {
        if (status.ok() && answer.has_lease()) {
          OnLease(answer.lease());
          return;
        }
        if (role_ == Role::kProbe) {
          std::vector<std::string> blocking;
          for (const auto& gate : answer.gates()) {
            if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
              blocking.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
            }
          }
          probe_note_ = status.ok() ? absl::StrJoin(blocking, "; ")
                                    : absl::StrCat(CodeName(status.error_code()), ": ",
                                                   status.error_message());
        }
        if (generation != acquire_generation_ || step_ != Step::kWaiting) return;
        fleet_.loop.At(SteadyAfter(fleet_.options.acquire_period), [this, generation] {
          if (generation == acquire_generation_ && step_ == Step::kWaiting) Acquire();
        });
      });
}

void SimulatedAgent::OnLease(const Lease& lease) {
  if (lease.kind() != tended::v1::LEASE_KIND_REBOOT ||
      lease.phase() == tended::v1::LEASE_PHASE_RELEASED) {
    return;
  }
  identity_.max_fencing_token = std::max(identity_.max_fencing_token, lease.fencing_token());
  if (lease_.has_value() && lease_->id() == lease.id()) {
    // The same lease again (answer and directive, or the end of a drain).
    lease_->set_preparing(lease.preparing());
    if (step_ == Step::kHolding && !lease.preparing()) Begin();
    return;
  }
  if (lease_.has_value()) return;  // One lease at a time.
  lease_ = lease;
  ++lease_generation_;
  ++acquire_generation_;
  ++fleet_.leases_held;
  if (role_ == Role::kProbe && sentinel_ && !reaction_ms_.has_value()) {
    reaction_ms_ = MillisSince(sentinel_time_);
    grant_ms_ = MillisSince(acquire_time_);
  }
  ScheduleRenew();
  if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED) {
    // Held from before (a coordinator restart): rebooted already, or reboot now.
    if (lease.boot_id_at_grant() != identity_.boot_id) {
      step_ = Step::kRebooted;
    } else {
      step_ = Step::kRebooting;
      fleet_.loop.At(SteadyAfter(fleet_.options.reboot_delay),
                     [this, generation = lease_generation_] { Reboot(generation); });
    }
    return;
  }
  if (!sentinel_) {
    Release();
    return;
  }
  step_ = Step::kHolding;
  if (!lease.preparing()) Begin();
}

void SimulatedAgent::Begin() {
  if (begin_in_flight_ || !lease_.has_value() || step_ != Step::kHolding) return;
  begin_in_flight_ = true;
  tended::v1::BeginDisruptionRequest request;
  request.set_lease_id(lease_->id());
  request.set_fencing_token(lease_->fencing_token());
  request.set_step("reboot");
  request.set_agent_instance_id(identity_.instance_id);
  Call<tended::v1::BeginDisruptionResponse>(
      kBeginDisruption, request,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->BeginDisruption(context, request, response, std::move(done));
      },
      [this, generation = lease_generation_](const grpc::Status& status,
                                             tended::v1::BeginDisruptionResponse& response) {
        begin_in_flight_ = false;
        if (generation != lease_generation_ || step_ != Step::kHolding) return;
        if (status.ok()) {
          if (response.has_lease()) *lease_ = response.lease();
          step_ = Step::kRebooting;
          fleet_.loop.At(SteadyAfter(fleet_.options.reboot_delay),
                         [this, generation] { Reboot(generation); });
        } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          LeaseEnded();  // Stale: stop. The sentinel stays, so ask again later.
        } else {
          // UNAVAILABLE: a gate blocks again after the grant; keep the lease, ask again.
          fleet_.loop.At(SteadyAfter(absl::Seconds(1)), [this, generation] {
            if (generation == lease_generation_) Begin();
          });
        }
      });
}

void SimulatedAgent::Reboot(uint64_t generation) {
  if (generation != lease_generation_ || step_ != Step::kRebooting) return;
  identity_.boot_id = fleet_.NewId();
  identity_.boot_time = absl::ToUnixSeconds(absl::Now());
  sentinel_ = false;
  step_ = Step::kRebooted;
  SendReport(nullptr);  // The coordinator verifies the new boot and releases.
}

void SimulatedAgent::ScheduleRenew() {
  const Lease& lease = *lease_;
  // Like the agent: a third of the renew deadline while granted; once disrupted, the
  // renewal is how the release is learnt, at the report interval.
  absl::Duration every = report_interval();
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && step_ != Step::kRebooted) {
    every = std::max(
        (FromProtoTimestamp(lease.expire_time()) - FromProtoTimestamp(lease.renew_time())) / 3,
        absl::Seconds(1));
  }
  fleet_.loop.At(SteadyAfter(every), [this, generation = lease_generation_] {
    if (generation == lease_generation_) Renew();
  });
}

void SimulatedAgent::Renew() {
  if (fleet_.stopping || !lease_.has_value()) return;
  tended::v1::RenewLeaseRequest request;
  request.set_lease_id(lease_->id());
  request.set_fencing_token(lease_->fencing_token());
  request.set_agent_instance_id(identity_.instance_id);
  Call<tended::v1::RenewLeaseResponse>(
      kRenewLease, request,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->RenewLease(context, request, response, std::move(done));
      },
      [this, generation = lease_generation_](const grpc::Status& status,
                                             tended::v1::RenewLeaseResponse& response) {
        if (generation != lease_generation_) return;
        if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
            (status.ok() && response.lease().phase() == tended::v1::LEASE_PHASE_RELEASED)) {
          LeaseEnded();
          return;
        }
        if (status.ok() && response.has_lease()) {
          lease_->set_phase(response.lease().phase());
          *lease_->mutable_renew_time() = response.lease().renew_time();
          *lease_->mutable_expire_time() = response.lease().expire_time();
        }
        ScheduleRenew();
      });
}

void SimulatedAgent::Release() {
  tended::v1::ReleaseLeaseRequest request;
  request.set_lease_id(lease_->id());
  request.set_fencing_token(lease_->fencing_token());
  request.set_reason("the reboot-required sentinel went away");
  request.set_agent_instance_id(identity_.instance_id);
  Call<tended::v1::ReleaseLeaseResponse>(
      kReleaseLease, request,
      [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request, auto* response,
         std::function<void(grpc::Status)> done) {
        stub->async()->ReleaseLease(context, request, response, std::move(done));
      },
      [this, generation = lease_generation_](const grpc::Status& status,
                                             tended::v1::ReleaseLeaseResponse&) {
        if (generation != lease_generation_) return;
        if (status.ok()) LeaseEnded();
        // Otherwise the renewals go on until the coordinator says it is gone.
      });
}

void SimulatedAgent::LeaseEnded() {
  const bool rebooted = step_ == Step::kRebooted;
  lease_.reset();
  ++lease_generation_;
  --fleet_.leases_held;
  step_ = Step::kNone;
  if (rebooted) ++fleet_.reboots_verified;
  if (sentinel_) {
    // Lost before the reboot: ask again later (or withdraw when quiescing).
    if (fleet_.quiescing && role_ == Role::kRebooter) {
      Quiesce();
      return;
    }
    step_ = Step::kWaiting;
    const uint64_t generation = ++acquire_generation_;
    fleet_.loop.At(SteadyAfter(fleet_.options.acquire_period), [this, generation] {
      if (generation == acquire_generation_ && step_ == Step::kWaiting) Acquire();
    });
    return;
  }
  if (role_ == Role::kRebooter && rebooted && fleet_.options.rearm_after > absl::ZeroDuration()) {
    fleet_.loop.At(SteadyAfter(fleet_.options.rearm_after * fleet_.Uniform(0.5, 1.5)),
                   [this] { SentinelAppears(); });
  }
}

void DirectiveStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows.
  fleet_.loop.Post([agent = agent_, directive = directive_] { agent->OnDirective(directive); });
  StartRead(&directive_);
}

void DirectiveStream::OnDone(const grpc::Status& status) {
  fleet_.loop.Post(
      [agent = agent_, stream = this, status] { agent->OnStreamDone(stream, status); });
}

}  // namespace tended::bench
