// OperatorService: what people and scripts call. Reads wait until what they show is
// durable, so an operator never sees a grant a crash could take back.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/request_limits.h"
#include "coordinator/gates/window.h"
#include "coordinator/leases/os_upgrade_lifecycle.h"

namespace tended::coordinator {

using tended::v1::Lease;

tended::v1::ListNodesResponse Coordinator::ListNodes() {
  (void)ReadBarrier();
  absl::ReaderMutexLock lock(&mutex_);
  tended::v1::ListNodesResponse response;
  const absl::Time now = clock_.Now();
  for (const auto& [name, entry] : state_->nodes()) {
    tended::v1::Node* node = response.add_nodes();
    if (entry->reported_since_start()) {
      *node->mutable_facts() = entry->facts;
      *node->mutable_last_report_time() = ToProtoTimestamp(entry->last_report());
    } else {
      node->mutable_facts()->set_node_name(name);
      node->mutable_facts()->set_boot_id(entry->known.boot_id());
    }
    const tended::state::v1::KnownNode& known = entry->known;
    *node->mutable_first_seen_time() = known.first_seen_time();
    *node->mutable_last_disruption_end_time() = known.last_disruption_end_time();
    node->set_agent_instance_id(known.agent_instance_id());
    if (known.has_conflict()) {
      node->set_conflict(absl::StrCat("agent instance ", known.conflict().other_instance_id(),
                                      " also reports as ", name, " since ",
                                      FormatUtcTime(FromProtoTimestamp(known.conflict().since()))));
    }
    if (known.has_backoff_until() && FromProtoTimestamp(known.backoff_until()) > now) {
      *node->mutable_backoff_until() = known.backoff_until();
    }
    for (tended::v1::LeaseKind kind : {tended::v1::LEASE_KIND_REBOOT,
                                       tended::v1::LEASE_KIND_OS_UPGRADE,
                                       tended::v1::LEASE_KIND_K8S_UPGRADE}) {
      if (state_->FindRequest(name, kind) != nullptr) node->set_waiting_for(kind);
    }
    const bool silent = !entry->reported_since_start() ||
                        now - entry->last_report() > config_.fleet.report_deadline;
    if (const Lease* held = state_->ActiveLeaseForNode(name); held != nullptr) {
      node->set_lease_id(held->id());
      node->set_state(tended::v1::NODE_STATE_DISRUPTED);
    } else if (known.has_conflict()) {
      node->set_state(tended::v1::NODE_STATE_CONFLICT);
    } else if (silent) {
      node->set_state(tended::v1::NODE_STATE_SILENT);
    } else if (node->waiting_for() != tended::v1::LEASE_KIND_UNSPECIFIED) {
      node->set_state(tended::v1::NODE_STATE_WAITING);
    } else {
      node->set_state(tended::v1::NODE_STATE_IDLE);
    }
  }
  return response;
}

std::optional<std::string> Coordinator::LeaseNodeName(const std::string& lease_id) const {
  absl::ReaderMutexLock lock(&mutex_);
  const Lease* lease = state_->FindLease(lease_id);
  if (lease == nullptr) return std::nullopt;
  return lease->node_name();
}

tended::v1::ListLeasesResponse Coordinator::ListLeases(
    const tended::v1::ListLeasesRequest& request) {
  (void)ReadBarrier();
  absl::ReaderMutexLock lock(&mutex_);
  tended::v1::ListLeasesResponse response;
  if (request.include_released()) {
    for (const Lease* lease : state_->ReleasedLeases()) *response.add_leases() = *lease;
  }
  for (const Lease* lease : state_->ActiveLeases()) *response.add_leases() = *lease;
  return response;
}

absl::StatusOr<tended::v1::ExplainGatesResponse> Coordinator::ExplainGates(
    const tended::v1::ExplainGatesRequest& request) {
  if (request.kind() != tended::v1::LEASE_KIND_UNSPECIFIED) {
    RETURN_IF_ERROR(ValidateKind("kind", request.kind()));
  }
  RETURN_IF_ERROR(ReadBarrier());
  absl::ReaderMutexLock lock(&mutex_);
  const absl::Time now = clock_.Now();
  const GateFacts facts = CollectGateFacts(now);
  tended::v1::ExplainGatesResponse response;
  *response.mutable_evaluated_at() = ToProtoTimestamp(now);
  for (tended::v1::LeaseKind kind : {tended::v1::LEASE_KIND_REBOOT,
                                     tended::v1::LEASE_KIND_OS_UPGRADE,
                                     tended::v1::LEASE_KIND_K8S_UPGRADE}) {
    if (request.kind() != tended::v1::LEASE_KIND_UNSPECIFIED && request.kind() != kind) continue;
    tended::v1::GateExplanation* explanation = response.add_explanations();
    explanation->set_kind(kind);
    Decision decision = Decide(kind, facts, now);
    for (const GateOutcome& outcome : decision.outcomes) {
      *explanation->add_gates() = ToProto(outcome);
    }
    explanation->set_would_grant(AllPass(decision.outcomes));
    for (const auto* pending : state_->Waiting(kind)) {
      explanation->add_waiting_nodes(pending->node_name());
    }
  }
  return response;
}

absl::StatusOr<tended::v1::HaltResponse> Coordinator::Halt(const tended::v1::HaltRequest& request) {
  if (absl::StripAsciiWhitespace(request.reason()).empty()) {
    return absl::InvalidArgumentError("reason: required, so others know why the fleet is halted");
  }
  RETURN_IF_ERROR(ValidateOperatorReason(request.reason()));
  tended::v1::HaltResponse response;
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    tended::v1::HaltState halt;
    halt.set_halted(true);
    halt.set_reason(request.reason());
    *halt.mutable_since() = ToProtoTimestamp(context.now());
    context.txn().SetHalt(halt);
    context.txn().AddEvent(tended::v1::EVENT_TYPE_HALTED, nullptr, "",
                           absl::StrCat("halted: ", request.reason()));
    *response.mutable_halt() = halt;
    return absl::OkStatus();
  }));
  Logger("coordinator")->warn("halted: {}", request.reason());
  return response;
}

absl::StatusOr<tended::v1::ResumeResponse> Coordinator::Resume() {
  tended::v1::ResumeResponse response;
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (!state_->halt().halted()) return absl::OkStatus();
    const std::string previous = state_->halt().reason();
    context.txn().SetHalt(tended::v1::HaltState());
    context.txn().AddEvent(tended::v1::EVENT_TYPE_RESUMED, nullptr, "",
                           absl::StrCat("resumed (was halted: ", previous, ")"));
    return absl::OkStatus();
  }));
  Logger("coordinator")->info("resumed");
  return response;
}

absl::StatusOr<tended::v1::ForceReleaseLeaseResponse> Coordinator::ForceReleaseLease(
    const tended::v1::ForceReleaseLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseId("lease_id", request.lease_id()));
  RETURN_IF_ERROR(ValidateOperatorReason(request.reason()));
  tended::v1::ForceReleaseLeaseResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const Lease* found = state_->FindLease(request.lease_id());
    if (found == nullptr) {
      refusal = absl::NotFoundError(absl::StrCat("no lease ", request.lease_id()));
      return absl::OkStatus();
    }
    if (!state::IsActive(*found)) {
      refusal = absl::FailedPreconditionError(
          absl::StrCat("lease ", request.lease_id(), " is already released"));
      return absl::OkStatus();
    }
    const Lease lease = *found;
    *response.mutable_lease() =
        context.Release(lease, tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED,
                        absl::StrCat("force-released by an operator: ", request.reason()));
    if (LeaseLifecycle* lifecycle = LifecycleFor(lease.kind()); lifecycle != nullptr) {
      lifecycle->OnForceReleased(context, lease);
    }
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  Logger("coordinator")->warn("force-released {}: {}", request.lease_id(), request.reason());
  return response;
}

absl::StatusOr<tended::v1::ListEventsResponse> Coordinator::ListEvents(
    const tended::v1::ListEventsRequest& request) {
  const size_t limit = request.limit() == 0 ? 100 : std::min<uint32_t>(request.limit(), 1000);
  RETURN_IF_ERROR(ReadBarrier());
  absl::ReaderMutexLock lock(&mutex_);
  tended::v1::ListEventsResponse response;
  for (auto& event : state_->EventsAfter(request.after_sequence(), limit)) {
    *response.add_events() = std::move(event);
  }
  return response;
}

absl::StatusOr<tended::v1::RemoveNodeResponse> Coordinator::RemoveNode(
    const tended::v1::RemoveNodeRequest& request) {
  RETURN_IF_ERROR(ValidateNodeName("node_name", request.node_name()));
  RETURN_IF_ERROR(ValidateOperatorReason(request.reason()));
  const std::string& name = request.node_name();
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (state_->FindNode(name) == nullptr) {
      refusal = absl::NotFoundError(absl::StrCat("no node ", name));
      return absl::OkStatus();
    }
    if (const Lease* held = state_->ActiveLeaseForNode(name); held != nullptr) {
      refusal = absl::FailedPreconditionError(absl::StrCat(
          name, " holds ", held->id(), ": force-release it first if the node is gone for good"));
      return absl::OkStatus();
    }
    context.txn().RemoveNode(name);
    for (tended::v1::LeaseKind kind : {tended::v1::LEASE_KIND_REBOOT,
                                       tended::v1::LEASE_KIND_OS_UPGRADE,
                                       tended::v1::LEASE_KIND_K8S_UPGRADE}) {
      context.txn().RemoveRequest(name, kind);
    }
    context.txn().AddEvent(tended::v1::EVENT_TYPE_NODE_REMOVED, nullptr, name,
                           absl::StrCat("removed by an operator: ", request.reason()));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return tended::v1::RemoveNodeResponse();
}

absl::StatusOr<tended::v1::ResumeRolloutResponse> Coordinator::ResumeRollout(
    const tended::v1::ResumeRolloutRequest& request) {
  if (request.kind() != tended::v1::LEASE_KIND_OS_UPGRADE) {
    return absl::InvalidArgumentError(
        "kind: must be LEASE_KIND_OS_UPGRADE, the only kind with a staged rollout");
  }
  RETURN_IF_ERROR(ValidateOperatorReason(request.reason()));
  tended::v1::ResumeRolloutResponse response;
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) {
    *response.mutable_cleared() = OsUpgradeLifecycle::Resume(context, request.reason());
    return absl::OkStatus();
  }));
  if (response.cleared().stopped()) {
    Logger("coordinator")->info("OS rollout resumed: {}", request.reason());
  }
  return response;
}

}  // namespace tended::coordinator
