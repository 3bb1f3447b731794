// NodeService: what agents call. Every call is validated (request_limits.h), every holder
// call proves its lease with the fencing token and the agent instance the lease is bound
// to, and a report from a second agent under one node name is refused and blocks the node.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/request_limits.h"
#include "coordinator/gates/evaluate.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {

using tended::v1::Lease;

namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("coordinator"); }

}  // namespace

absl::StatusOr<const Lease*> Coordinator::HeldLease(const std::string& lease_id, uint64_t token,
                                                    const std::string& instance,
                                                    absl::string_view call) {
  const absl::Time now = clock_.Now();
  const Lease* lease = state_->FindLease(lease_id);
  if (lease == nullptr) {
    const std::string why = absl::StrCat(call, " refused: no lease ", lease_id);
    rejections_.Record(lease_id, "", why, now);
    return absl::FailedPreconditionError(absl::StrCat("no lease ", lease_id));
  }
  if (!state::IsActive(*lease)) {
    // How a holder learns that its lease was released: not a rejection worth counting.
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " was released: ", lease->status_message()));
  }
  if (lease->fencing_token() != token) {
    const std::string why = absl::StrCat("stale fencing token ", token, " for lease ", lease_id,
                                         " (current ", lease->fencing_token(), ")");
    rejections_.Record(lease_id, lease->node_name(), absl::StrCat(call, " refused: ", why), now);
    return absl::FailedPreconditionError(why);
  }
  if (!lease->agent_instance_id().empty() && lease->agent_instance_id() != instance) {
    const std::string why =
        absl::StrCat("lease ", lease_id, " is bound to agent instance ",
                     lease->agent_instance_id(), "; this call came from instance ", instance);
    rejections_.Record(lease_id, lease->node_name(), absl::StrCat(call, " refused: ", why), now);
    return absl::FailedPreconditionError(why);
  }
  return lease;
}

bool Coordinator::IsHeartbeat(const state::NodeEntry& node,
                              const tended::v1::ReportFactsRequest& request,
                              absl::Time now) const {
  const state::FleetState& state = *state_;
  if (state.recovery().active()) return false;
  if (node.known.agent_instance_id() != request.agent_instance_id() ||
      node.known.has_conflict()) {
    return false;
  }
  // The first report since the start, or one late enough that a fleet summary may count the
  // node as silent, may open the fleet-health gate.
  if (MayReturnFromSilence(node, now)) return false;
  const std::string& name = request.facts().node_name();
  if (state.ActiveLeaseForNode(name) != nullptr) return false;  // Verification reads reports.
  if (!request.held_lease().id().empty()) return false;         // A claim to look at.
  if (request.max_fencing_token_seen() > state.last_fencing_token()) return false;
  if (!request.coordinator_state_id().empty() && request.coordinator_state_id() != state.state_id()) {
    return false;
  }
  return node.facts_bytes == request.facts().SerializeAsString();
}

absl::StatusOr<tended::v1::ReportFactsResponse> Coordinator::ReportFacts(
    const tended::v1::ReportFactsRequest& request) {
  RETURN_IF_ERROR(ValidateReportFacts(request));
  {
    absl::ReaderMutexLock lock(&mutex_);
    if (auto heartbeat = HeartbeatLocked(request, clock_.Now()); heartbeat.has_value()) {
      return *std::move(heartbeat);
    }
  }
  tended::v1::ReportFactsResponse response;
  *response.mutable_server_time() = ToProtoTimestamp(clock_.Now());
  *response.mutable_report_interval() = ToProtoDuration(config_.fleet.report_interval);
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    refusal = RecordReport(context, request);
    response.set_state_id(state_->state_id());
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return response;
}

std::optional<tended::v1::ReportFactsResponse> Coordinator::TryHeartbeat(
    const tended::v1::ReportFactsRequest& request) {
  if (!ValidateReportFacts(request).ok()) return std::nullopt;
  if (!mutex_.ReaderTryLock()) return std::nullopt;
  std::optional<tended::v1::ReportFactsResponse> heartbeat = HeartbeatLocked(request, clock_.Now());
  mutex_.ReaderUnlock();
  return heartbeat;
}

std::optional<tended::v1::ReportFactsResponse> Coordinator::HeartbeatLocked(
    const tended::v1::ReportFactsRequest& request, absl::Time now) {
  state::NodeEntry* node = state_->FindNode(request.facts().node_name());
  if (node == nullptr || !ledger_->health().ok() || !IsHeartbeat(*node, request, now)) {
    return std::nullopt;
  }
  node->MarkReported(now);
  tended::v1::ReportFactsResponse response;
  *response.mutable_server_time() = ToProtoTimestamp(now);
  *response.mutable_report_interval() = ToProtoDuration(config_.fleet.report_interval);
  response.set_state_id(state_->state_id());
  return response;
}

absl::Status Coordinator::RecordReport(LeaseContext& context,
                                       const tended::v1::ReportFactsRequest& request) {
  const tended::v1::NodeFacts& facts = request.facts();
  const std::string& name = facts.node_name();
  const std::string& instance = request.agent_instance_id();
  const absl::Time now = context.now();
  state::Transaction& txn = context.txn();
  state::NodeEntry* node = state_->FindNode(name);
  if (node == nullptr) {
    tended::state::v1::KnownNode known;
    known.set_node_name(name);
    known.set_boot_id(facts.boot_id());
    known.set_agent_instance_id(instance);
    *known.mutable_first_seen_time() = ToProtoTimestamp(now);
    txn.PutNode(known);
    txn.AddEvent(tended::v1::EVENT_TYPE_NODE_REGISTERED, nullptr, name,
                 absl::StrCat("registered (agent instance ", instance, ", boot id ",
                              facts.boot_id(), ")"));
    node = state_->FindNode(name);
  } else {
    tended::state::v1::KnownNode known = node->known;
    const std::string registered = known.agent_instance_id();
    const Lease* held = state_->ActiveLeaseForNode(name);
    const bool bound_to_registered =
        held != nullptr &&
        (held->agent_instance_id().empty() || held->agent_instance_id() == registered);
    const bool registered_silent = !node->reported_since_start() ||
                                   now - node->last_report() > config_.fleet.report_deadline;
    if (registered.empty()) {
      known.set_agent_instance_id(instance);
      txn.PutNode(known);
    } else if (registered != instance) {
      if (!bound_to_registered && registered_silent) {
        // The registered agent went away (a reinstall, a lost agent-id file): this one takes
        // over the node.
        known.set_agent_instance_id(instance);
        known.clear_conflict();
        txn.PutNode(known);
        txn.AddEvent(tended::v1::EVENT_TYPE_AGENT_REPLACED, nullptr, name,
                     absl::StrCat("agent instance ", instance, " took over from ", registered,
                                  ", which has not reported ",
                                  node->reported_since_start()
                                      ? absl::StrCat("since ", FormatUtcTime(node->last_report()))
                                      : std::string("since the coordinator started")));
        Log()->warn("{}: agent instance {} replaces {}", name, instance, registered);
      } else {
        const bool new_conflict = !known.has_conflict() ||
                                  known.conflict().other_instance_id() != instance;
        tended::state::v1::AgentConflict* conflict = known.mutable_conflict();
        if (new_conflict) {
          conflict->set_other_instance_id(instance);
          *conflict->mutable_since() = ToProtoTimestamp(now);
        }
        *conflict->mutable_other_last_seen() = ToProtoTimestamp(now);
        txn.PutNode(known);
        const std::string why = absl::StrCat(
            name, " is reported by agent instance ", registered,
            held != nullptr ? absl::StrCat(", which holds ", held->id())
                            : absl::StrCat(" (last report ", FormatUtcTime(node->last_report()),
                                           ")"),
            "; this agent (instance ", instance,
            ") is a second one under the same name (a cloned machine? a wrong node_name?). "
            "Nothing is granted to ",
            name, " until one of them stops reporting");
        if (new_conflict) {
          txn.AddEvent(tended::v1::EVENT_TYPE_AGENT_CONFLICT, held, name, why);
          Log()->error("{}", why);
        }
        rejections_.Record(held != nullptr ? held->id() : "", name,
                           absl::StrCat("report refused: ", why), now);
        return absl::FailedPreconditionError(why);
      }
    }
  }
  // What is persisted of the node: its boot id (a reboot seen while nothing held a lease is
  // worth an event too).
  if (node->known.boot_id() != facts.boot_id()) {
    tended::state::v1::KnownNode known = node->known;
    if (!known.boot_id().empty()) {
      txn.AddEvent(tended::v1::EVENT_TYPE_NODE_REBOOTED, nullptr, name,
                   absl::StrCat("boot id ", known.boot_id(), " -> ", facts.boot_id()));
    }
    known.set_boot_id(facts.boot_id());
    txn.PutNode(known);
  }
  // What only this process knows.
  if (MayReturnFromSilence(*node, now)) ++returns_from_silence_;
  node->facts = facts;
  node->facts_bytes = facts.SerializeAsString();
  node->MarkReported(now);
  if (!facts.reboot_required()) {
    // The need went away (or an agent restarted without it): no reboot is queued for it.
    txn.RemoveRequest(name, tended::v1::LEASE_KIND_REBOOT);
  }
  AdoptClaims(context, request);
  if (const Lease* held = state_->ActiveLeaseForNode(name); held != nullptr) {
    if (held->agent_instance_id().empty() || held->agent_instance_id() == instance) {
      if (LeaseLifecycle* lifecycle = LifecycleFor(held->kind()); lifecycle != nullptr) {
        const Lease lease = *held;  // `held` points into the state the lifecycle changes.
        lifecycle->OnFacts(context, lease, *node);
      }
    }
  }
  if (state_->recovery().active()) AdvanceRecovery(context);
  return absl::OkStatus();
}

absl::StatusOr<tended::v1::AcquireLeaseResponse> Coordinator::AcquireLease(
    const tended::v1::AcquireLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateAcquireLease(request));
  const std::string& name = request.node_name();
  const tended::v1::LeaseKind kind = request.kind();
  if (LifecycleFor(kind) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        LeaseKindConfigName(kind),
        " leases are not granted: nothing carries such a lease out yet, and a lease held by "
        "nobody's flow would block every other kind"));
  }
  auto policy = config_.leases.find(kind);
  if (policy == config_.leases.end() || !policy->second.enabled) {
    return absl::FailedPreconditionError(absl::StrCat(
        LeaseKindConfigName(kind), " leases are not enabled on this coordinator"));
  }
  tended::v1::AcquireLeaseResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange(
      [&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        const state::NodeEntry* node = state_->FindNode(name);
        if (node == nullptr) {
          refusal = absl::FailedPreconditionError(
              absl::StrCat(name, " is not known: report facts before asking for a lease"));
          return absl::OkStatus();
        }
        if (node->known.agent_instance_id() != request.agent_instance_id()) {
          refusal = absl::FailedPreconditionError(absl::StrCat(
              "agent instance ", request.agent_instance_id(), " is not the agent registered for ",
              name, " (", node->known.agent_instance_id(), ")"));
          return absl::OkStatus();
        }
        if (const Lease* held = state_->ActiveLeaseForNode(name); held != nullptr) {
          if (held->kind() == kind) {
            *response.mutable_lease() = *held;
          } else {
            refusal = absl::FailedPreconditionError(
                absl::StrCat(name, " holds ", held->id(), "; one lease at a time"));
          }
          return absl::OkStatus();
        }
        if (state_->FindRequest(name, kind) == nullptr) {
          tended::state::v1::PendingRequest pending;
          pending.set_node_name(name);
          pending.set_kind(kind);
          pending.set_reason(request.reason());
          *pending.mutable_request_time() = ToProtoTimestamp(context.now());
          context.txn().PutRequest(pending);
          context.txn().AddEvent(
              tended::v1::EVENT_TYPE_LEASE_REQUESTED, nullptr, name,
              absl::StrCat(LeaseKindConfigName(kind), " lease requested: ", request.reason()));
        }
        std::map<tended::v1::LeaseKind, KindVerdict> verdicts;
        GrantWhatGatesAllow(context, &verdicts);
        if (const Lease* held = state_->ActiveLeaseForNode(name);
            held != nullptr && held->kind() == kind) {
          *response.mutable_lease() = *held;
          return absl::OkStatus();
        }
        // Waiting: the evaluation the grant loop stopped at, and this node's own gates.
        const absl::Time now = context.now();
        auto verdict = verdicts.find(kind);
        if (verdict == verdicts.end()) {
          GateFacts facts = CollectGateFacts(now);
          Decision decision = Decide(kind, facts, now);
          verdict = verdicts.emplace(kind, KindVerdict{std::move(facts), std::move(decision)}).first;
        }
        const GateFacts& facts = verdict->second.facts;
        const Decision& decision = verdict->second.decision;
        for (const GateOutcome& outcome : decision.outcomes) {
          if (outcome.gate == "waiting_node") continue;
          *response.add_gates() = ToProto(outcome);
        }
        std::vector<GateOutcome> own = NodeGatesFor(kind, name, facts, now);
        if (own.empty()) {
          own.push_back(PassGate("node", absl::StrCat("no gate of ", name, " itself blocks it")));
        }
        for (const GateOutcome& outcome : own) *response.add_gates() = ToProto(outcome);
        response.set_queue_position(static_cast<uint32_t>(state_->QueuePosition(name, kind)));
        return absl::OkStatus();
      },
      Wait::kDurableIfChanged, /*grant=*/false));
  RETURN_IF_ERROR(refusal);
  // A lease in the answer may have been granted by a change not yet durable: it is only
  // handed out once it would survive a crash. A repeated ask that changed nothing and
  // carries no lease does not wait for other nodes' fsyncs.
  if (response.has_lease()) RETURN_IF_ERROR(ReadBarrier());
  return response;
}

absl::StatusOr<tended::v1::RenewLeaseResponse> Coordinator::RenewLease(
    const tended::v1::RenewLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateRenewLease(request));
  tended::v1::RenewLeaseResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto held = HeldLease(request.lease_id(), request.fencing_token(),
                          request.agent_instance_id(), "renew");
    if (!held.ok()) {
      refusal = held.status();
      return absl::OkStatus();
    }
    Lease lease = **held;
    const absl::Time now = context.now();
    *lease.mutable_renew_time() = ToProtoTimestamp(now);
    // Once disrupted, the return deadline set by BeginDisruption governs: renewing does not
    // extend the time a node has to come back and verify.
    if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
      *lease.mutable_expire_time() =
          ToProtoTimestamp(now + config_.leases.at(lease.kind()).renew_deadline);
      lease.set_overdue(false);
    }
    if (lease.agent_instance_id().empty()) lease.set_agent_instance_id(request.agent_instance_id());
    context.txn().PutLease(lease);
    *response.mutable_lease() = lease;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return response;
}

absl::StatusOr<tended::v1::BeginDisruptionResponse> Coordinator::BeginDisruption(
    const tended::v1::BeginDisruptionRequest& request) {
  RETURN_IF_ERROR(ValidateBeginDisruption(request));
  tended::v1::BeginDisruptionResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto held = HeldLease(request.lease_id(), request.fencing_token(),
                          request.agent_instance_id(), request.step());
    if (!held.ok()) {
      refusal = held.status();
      return absl::OkStatus();
    }
    const Lease current = **held;
    if (current.phase() == tended::v1::LEASE_PHASE_VERIFYING) {
      refusal = absl::FailedPreconditionError(absl::StrCat(
          "lease ", current.id(), " is being verified; no new disruption under it"));
      return absl::OkStatus();
    }
    // A grant is not a blank cheque: the gates are asked again right before the act.
    if (absl::Status gates = RecheckBeforeActLocked(context, current); !gates.ok()) {
      refusal = gates;
      return absl::OkStatus();
    }
    Lease lease = *state_->FindLease(current.id());
    LeaseLifecycle* lifecycle = LifecycleFor(lease.kind());
    if (lifecycle == nullptr) {
      refusal = absl::FailedPreconditionError("no flow carries this lease's kind out");
      return absl::OkStatus();
    }
    if (absl::Status may = lifecycle->OnBegin(context, lease, request); !may.ok()) {
      refusal = may;
      return absl::OkStatus();
    }
    const absl::Time now = context.now();
    *lease.mutable_renew_time() = ToProtoTimestamp(now);
    // While disrupted the node may be unable to renew: it has until the return deadline.
    *lease.mutable_expire_time() =
        ToProtoTimestamp(now + config_.leases.at(lease.kind()).return_deadline);
    if (lease.agent_instance_id().empty()) lease.set_agent_instance_id(request.agent_instance_id());
    const bool began = lease.phase() != tended::v1::LEASE_PHASE_DISRUPTING;
    lease.set_phase(tended::v1::LEASE_PHASE_DISRUPTING);
    context.txn().PutLease(lease);
    if (began) {
      context.txn().AddEvent(tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED, &lease,
                             lease.node_name(), absl::StrCat("DISRUPTING: ", request.step()));
    }
    *response.mutable_lease() = lease;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return response;
}

absl::StatusOr<tended::v1::ReleaseLeaseResponse> Coordinator::ReleaseLease(
    const tended::v1::ReleaseLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateReleaseLease(request));
  tended::v1::ReleaseLeaseResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto held = HeldLease(request.lease_id(), request.fencing_token(),
                          request.agent_instance_id(), "release");
    if (!held.ok()) {
      refusal = held.status();
      return absl::OkStatus();
    }
    const Lease lease = **held;
    LeaseLifecycle* lifecycle = LifecycleFor(lease.kind());
    absl::StatusOr<Lease> returned =
        lifecycle != nullptr
            ? lifecycle->OnReturn(context, lease, request.reason())
            : context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                              absl::StrCat("returned by the holder: ", request.reason()));
    if (!returned.ok()) {
      refusal = returned.status();
      return absl::OkStatus();
    }
    *response.mutable_lease() = *returned;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return response;
}

absl::StatusOr<tended::v1::CancelLeaseRequestResponse> Coordinator::CancelLeaseRequest(
    const tended::v1::CancelLeaseRequestRequest& request) {
  RETURN_IF_ERROR(ValidateCancelLeaseRequest(request));
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const state::NodeEntry* node = state_->FindNode(request.node_name());
    if (node != nullptr && node->known.agent_instance_id() != request.agent_instance_id()) {
      refusal = absl::FailedPreconditionError(
          absl::StrCat("agent instance ", request.agent_instance_id(),
                       " is not the agent registered for ", request.node_name()));
      return absl::OkStatus();
    }
    context.txn().RemoveRequest(request.node_name(), request.kind());
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return tended::v1::CancelLeaseRequestResponse();
}

absl::StatusOr<tended::v1::ReportStepResponse> Coordinator::ReportStep(
    const tended::v1::ReportStepRequest& request) {
  RETURN_IF_ERROR(ValidateReportStep(request));
  tended::v1::ReportStepResponse response;
  absl::Status refusal = absl::OkStatus();
  RETURN_IF_ERROR(RunChange([&](LeaseContext& context) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto held = HeldLease(request.lease_id(), request.fencing_token(),
                          request.agent_instance_id(), "step report");
    if (!held.ok()) {
      refusal = held.status();
      return absl::OkStatus();
    }
    const Lease lease = **held;
    LeaseLifecycle* lifecycle = LifecycleFor(lease.kind());
    absl::StatusOr<Lease> reported =
        lifecycle != nullptr ? lifecycle->OnStepReport(context, lease, request)
                             : absl::FailedPreconditionError("no flow carries this lease out");
    if (!reported.ok()) {
      refusal = reported.status();
      return absl::OkStatus();
    }
    *response.mutable_lease() = *reported;
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(refusal);
  return response;
}

absl::StatusOr<std::shared_ptr<DirectiveHub::Subscription>> Coordinator::SubscribeDirectives(
    const tended::v1::WatchDirectivesRequest& request) {
  RETURN_IF_ERROR(ValidateWatchDirectives(request));
  const std::string& name = request.node_name();
  RETURN_IF_ERROR(ReadBarrier());
  auto subscription = directives_.Subscribe(name);
  std::optional<Lease> held;
  {
    absl::ReaderMutexLock lock(&mutex_);
    const state::NodeEntry* node = state_->FindNode(name);
    if (node != nullptr && !node->known.agent_instance_id().empty() &&
        node->known.agent_instance_id() != request.agent_instance_id()) {
      directives_.Unsubscribe(name, subscription);
      return absl::FailedPreconditionError(
          absl::StrCat("agent instance ", request.agent_instance_id(),
                       " is not the agent registered for ", name));
    }
    if (const Lease* lease = state_->ActiveLeaseForNode(name); lease != nullptr) held = *lease;
  }
  if (held.has_value()) SendLease(*held, /*granted=*/true);
  return subscription;
}

void Coordinator::UnsubscribeDirectives(
    const std::string& node, const std::shared_ptr<DirectiveHub::Subscription>& subscription) {
  directives_.Unsubscribe(node, subscription);
}

}  // namespace tended::coordinator
