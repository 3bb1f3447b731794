#include "coordinator/coordinator.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/node_name.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

using tended::v1::Lease;
using tended::v1::LeaseKind;

constexpr absl::Duration kMaxTickInterval = absl::Seconds(15);

absl::Status CheckNodeName(absl::string_view field, absl::string_view name) {
  if (!IsDns1123Subdomain(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ": must be a node name (lowercase letters, digits, '-' and '.', at most 253 "
                     "characters), got \"",
                     name, "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckKind(LeaseKind kind) {
  if (kind == tended::v1::LEASE_KIND_UNSPECIFIED || !tended::v1::LeaseKind_IsValid(kind)) {
    return absl::InvalidArgumentError(
        "kind: must be LEASE_KIND_REBOOT, LEASE_KIND_OS_UPGRADE or LEASE_KIND_K8S_UPGRADE");
  }
  return absl::OkStatus();
}

absl::Status CheckLeaseRef(absl::string_view lease_id, uint64_t token) {
  if (lease_id.empty()) return absl::InvalidArgumentError("lease_id: required");
  if (token == 0) return absl::InvalidArgumentError("fencing_token: required (never 0)");
  return absl::OkStatus();
}

tended::v1::GateResult ToProto(const GateOutcome& outcome) {
  tended::v1::GateResult result;
  result.set_gate(outcome.gate);
  result.set_verdict(outcome.pass ? tended::v1::GATE_VERDICT_PASS : tended::v1::GATE_VERDICT_BLOCK);
  result.set_reason(outcome.reason);
  if (outcome.earliest_pass.has_value()) {
    *result.mutable_earliest_pass_time() = ToProtoTimestamp(*outcome.earliest_pass);
  }
  return result;
}

}  // namespace

Coordinator::Coordinator(const CoordinatorConfig& config, const Clock& clock,
                         const AlertPoller* alerts)
    : config_(config), clock_(clock), alerts_(alerts), started_at_(clock.Now()) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorConfig& config,
                                                                 const Clock& clock,
                                                                 StateStore* store,
                                                                 const AlertPoller* alerts) {
  std::unique_ptr<Coordinator> coordinator(new Coordinator(config, clock, alerts));
  ASSIGN_OR_RETURN(std::unique_ptr<LeaseManager> leases,
                   LeaseManager::Load(store, coordinator->config_, clock));
  Logger("coordinator")
      ->info("state loaded: {} known nodes, {} active leases, fencing token {}",
             leases->state().nodes_size(), leases->ActiveLeaseCount(),
             leases->state().last_fencing_token());
  absl::MutexLock lock(&coordinator->mutex_);
  coordinator->leases_ = std::move(leases);
  return coordinator;
}

absl::StatusOr<tended::v1::ReportFactsResponse> Coordinator::ReportFacts(
    const tended::v1::ReportFactsRequest& request) {
  const tended::v1::NodeFacts& facts = request.facts();
  RETURN_IF_ERROR(CheckNodeName("facts.node_name", facts.node_name()));
  if (facts.boot_id().empty()) return absl::InvalidArgumentError("facts.boot_id: required");
  std::optional<AlertSnapshot> os_alerts;
  if (AwaitsOsVerification(facts.node_name())) os_alerts = FreshAlerts();
  {
    absl::MutexLock lock(&mutex_);
    RETURN_IF_ERROR(leases_->RecordFacts(facts).status());
    last_report_[facts.node_name()] = clock_.Now();
    if (!facts.reboot_required()) {
      // The need went away (or an agent restarted without it): no reboot is queued for it.
      RETURN_IF_ERROR(
          leases_->RemovePendingRequest(facts.node_name(), tended::v1::LEASE_KIND_REBOOT));
    }
    if (const Lease* held = leases_->FindActiveLeaseForNode(facts.node_name()); held != nullptr) {
      if (held->kind() == tended::v1::LEASE_KIND_OS_UPGRADE) {
        VerifyOsUpgradeLease(*held, facts, os_alerts);
      } else {
        VerifyLease(*held, facts);
      }
    }
  }
  Schedule();
  tended::v1::ReportFactsResponse response;
  *response.mutable_server_time() = ToProtoTimestamp(clock_.Now());
  *response.mutable_report_interval() = ToProtoDuration(config_.fleet.report_interval);
  return response;
}

void Coordinator::VerifyLease(const Lease& held, const tended::v1::NodeFacts& facts) {
  if (held.kind() != tended::v1::LEASE_KIND_REBOOT) return;
  if (facts.boot_id() == held.boot_id_at_grant()) return;  // Not rebooted yet.
  const std::string lease_id = held.id();
  // `held` points into the state, which the calls below replace.
  const bool flow_owns = disruption_flow_ != nullptr && disruption_flow_->Owns(*leases_, held);
  if (flow_owns && held.phase() == tended::v1::LEASE_PHASE_GRANTED &&
      (held.preparing() || facts.reboot_required())) {
    // Booted again while being drained (or drained and still needing its reboot): undo the
    // cordon first, then the lease goes back and the agent asks again.
    disruption_flow_->Abandon(lease_id, absl::StrCat("the node booted again (boot id ",
                                                     facts.boot_id(), ") before its reboot"));
    return;
  }
  if (held.phase() == tended::v1::LEASE_PHASE_GRANTED && facts.reboot_required()) {
    // The node booted again before any disruption under this lease began (the grant went
    // by facts older than that boot, or the node went down on its own) and still needs its
    // reboot. Its agent never acts on a lease from another boot, so verifying would wait
    // forever: give the lease back and queue the request again, for a grant on this boot.
    const uint64_t token = held.fencing_token();
    const LeaseKind kind = held.kind();
    const std::string reason = held.reason();
    auto returned = leases_->ReleaseByHolder(
        lease_id, token,
        absl::StrCat("the node booted again (boot id ", facts.boot_id(),
                     ") before any disruption under the lease began; asking again"));
    if (!returned.ok()) {
      Logger("coordinator")->error("returning {}: {}", lease_id, returned.status().ToString());
      return;
    }
    SendLease(*returned, /*granted=*/false);
    if (absl::Status queued = leases_->AddPendingRequest(facts.node_name(), kind, reason);
        !queued.ok()) {
      Logger("coordinator")->error("queueing {} again: {}", facts.node_name(), queued.ToString());
    }
    return;
  }
  if (held.phase() != tended::v1::LEASE_PHASE_VERIFYING) {
    auto verifying =
        leases_->MarkVerifying(lease_id, absl::StrCat("new boot id ", facts.boot_id()));
    if (!verifying.ok()) {
      Logger("coordinator")->error("verifying {}: {}", lease_id, verifying.status().ToString());
      return;
    }
  }
  if (facts.reboot_required()) {
    (void)leases_->SetVerificationProblem(
        lease_id,
        absl::StrCat("rebooted (boot id ", facts.boot_id(), ") but still reports reboot-required: ",
                     absl::StrJoin(facts.reboot_required_reasons(), ", ")));
    return;
  }
  if (flow_owns) {
    disruption_flow_->Wake();  // It checks Kubernetes, uncordons, then releases.
    return;
  }
  auto released = leases_->CompleteVerification(
      lease_id, absl::StrCat("new boot id ", facts.boot_id(), ", no reboot required"));
  if (!released.ok()) {
    Logger("coordinator")->error("releasing {}: {}", lease_id, released.status().ToString());
    return;
  }
  SendLease(*released, /*granted=*/false);
}

absl::StatusOr<tended::v1::AcquireLeaseResponse> Coordinator::AcquireLease(
    const tended::v1::AcquireLeaseRequest& request) {
  RETURN_IF_ERROR(CheckNodeName("node_name", request.node_name()));
  RETURN_IF_ERROR(CheckKind(request.kind()));
  auto policy = config_.leases.find(request.kind());
  if (policy == config_.leases.end() || !policy->second.enabled) {
    return absl::FailedPreconditionError(absl::StrCat(
        LeaseKindConfigName(request.kind()), " leases are not enabled on this coordinator"));
  }
  {
    absl::MutexLock lock(&mutex_);
    if (leases_->FindNode(request.node_name()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          request.node_name(), " is not known: report facts before asking for a lease"));
    }
    if (const Lease* held = leases_->FindActiveLeaseForNode(request.node_name())) {
      if (held->kind() == request.kind()) {
        tended::v1::AcquireLeaseResponse response;
        *response.mutable_lease() = *held;
        return response;
      }
      return absl::FailedPreconditionError(
          absl::StrCat(request.node_name(), " holds ", held->id(), "; one lease at a time"));
    }
    RETURN_IF_ERROR(
        leases_->AddPendingRequest(request.node_name(), request.kind(), request.reason()));
  }
  Schedule();

  std::optional<AlertSnapshot> alerts = FreshAlerts();
  absl::MutexLock lock(&mutex_);
  tended::v1::AcquireLeaseResponse response;
  if (const Lease* held = leases_->FindActiveLeaseForNode(request.node_name());
      held != nullptr && held->kind() == request.kind()) {
    *response.mutable_lease() = *held;
    return response;
  }
  GateFacts facts = CollectGateFacts(alerts.has_value() ? &*alerts : nullptr);
  for (const GateOutcome& outcome : EvaluateGates(request.kind(), facts, config_, clock_.Now())) {
    *response.add_gates() = ToProto(outcome);
  }
  if (request.kind() == tended::v1::LEASE_KIND_OS_UPGRADE) {
    *response.add_gates() =
        ToProto(CanaryGateForNode(CollectOsRolloutFacts(), request.node_name(), clock_.Now()));
  }
  uint32_t position = 0;
  for (const auto& pending : leases_->PendingRequests(request.kind())) {
    ++position;
    if (pending.node_name() == request.node_name()) break;
  }
  response.set_queue_position(position);
  return response;
}

absl::StatusOr<tended::v1::RenewLeaseResponse> Coordinator::RenewLease(
    const tended::v1::RenewLeaseRequest& request) {
  RETURN_IF_ERROR(CheckLeaseRef(request.lease_id(), request.fencing_token()));
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(Lease lease, leases_->Renew(request.lease_id(), request.fencing_token()));
  tended::v1::RenewLeaseResponse response;
  *response.mutable_lease() = std::move(lease);
  return response;
}

absl::StatusOr<tended::v1::BeginDisruptionResponse> Coordinator::BeginDisruption(
    const tended::v1::BeginDisruptionRequest& request) {
  RETURN_IF_ERROR(CheckLeaseRef(request.lease_id(), request.fencing_token()));
  if (request.step().empty()) return absl::InvalidArgumentError("step: required");
  absl::MutexLock lock(&mutex_);
  if (const Lease* lease = leases_->FindLease(request.lease_id());
      disruption_flow_ != nullptr && lease != nullptr && IsActive(*lease) &&
      lease->fencing_token() == request.fencing_token()) {
    RETURN_IF_ERROR(disruption_flow_->MayDisrupt(*leases_, *lease));
  }
  ASSIGN_OR_RETURN(Lease lease, leases_->BeginDisruption(request.lease_id(),
                                                         request.fencing_token(), request.step()));
  tended::v1::BeginDisruptionResponse response;
  *response.mutable_lease() = std::move(lease);
  return response;
}

absl::StatusOr<tended::v1::ReleaseLeaseResponse> Coordinator::ReleaseLease(
    const tended::v1::ReleaseLeaseRequest& request) {
  RETURN_IF_ERROR(CheckLeaseRef(request.lease_id(), request.fencing_token()));
  tended::v1::ReleaseLeaseResponse response;
  {
    absl::MutexLock lock(&mutex_);
    if (const Lease* lease = leases_->FindLease(request.lease_id());
        disruption_flow_ != nullptr && lease != nullptr && IsActive(*lease) &&
        lease->fencing_token() == request.fencing_token() &&
        lease->phase() == tended::v1::LEASE_PHASE_GRANTED &&
        disruption_flow_->Owns(*leases_, *lease)) {
      // The node may be cordoned for it: the flow uncordons, then returns the lease.
      disruption_flow_->Abandon(lease->id(),
                                absl::StrCat("returned by the holder: ", request.reason()));
      *response.mutable_lease() = *lease;
      return response;
    }
    ASSIGN_OR_RETURN(
        Lease lease,
        leases_->ReleaseByHolder(request.lease_id(), request.fencing_token(), request.reason()));
    *response.mutable_lease() = std::move(lease);
  }
  Schedule();
  return response;
}

absl::StatusOr<tended::v1::CancelLeaseRequestResponse> Coordinator::CancelLeaseRequest(
    const tended::v1::CancelLeaseRequestRequest& request) {
  RETURN_IF_ERROR(CheckNodeName("node_name", request.node_name()));
  RETURN_IF_ERROR(CheckKind(request.kind()));
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(leases_->RemovePendingRequest(request.node_name(), request.kind()));
  return tended::v1::CancelLeaseRequestResponse();
}

absl::StatusOr<std::shared_ptr<DirectiveHub::Subscription>> Coordinator::SubscribeDirectives(
    const std::string& node) {
  RETURN_IF_ERROR(CheckNodeName("node_name", node));
  auto subscription = directives_.Subscribe(node);
  absl::MutexLock lock(&mutex_);
  if (const Lease* held = leases_->FindActiveLeaseForNode(node); held != nullptr) {
    tended::v1::Directive directive;
    *directive.mutable_lease_granted() = *held;
    directives_.Send(node, directive);
  }
  return subscription;
}

void Coordinator::UnsubscribeDirectives(
    const std::string& node, const std::shared_ptr<DirectiveHub::Subscription>& subscription) {
  directives_.Unsubscribe(node, subscription);
}

void Coordinator::SendLease(const Lease& lease, bool granted) {
  tended::v1::Directive directive;
  if (granted) {
    *directive.mutable_lease_granted() = lease;
  } else {
    *directive.mutable_lease_revoked() = lease;
  }
  directives_.Send(lease.node_name(), directive);
}

GateFacts Coordinator::CollectGateFacts(const AlertSnapshot* alerts) const {
  GateFacts facts;
  const auto& state = leases_->state();
  facts.halted = state.halt().halted();
  facts.halt_reason = state.halt().reason();
  for (const auto& known : state.nodes()) {
    NodeFactsForGates node;
    node.name = known.node_name();
    auto report = last_report_.find(known.node_name());
    node.last_report = report != last_report_.end() ? report->second : started_at_;
    node.last_disruption_end = FromProtoTimestamp(known.last_disruption_end_time());
    node.holds_lease = leases_->FindActiveLeaseForNode(known.node_name()) != nullptr;
    facts.nodes.push_back(std::move(node));
  }
  for (const Lease& lease : leases_->ActiveLeases()) {
    facts.active_leases.push_back({lease.node_name(), lease.kind()});
  }
  if (alerts != nullptr) facts.alerts = *alerts;
  if (disruption_flow_ != nullptr) facts.kube = disruption_flow_->GateFactsSnapshot();
  return facts;
}

bool Coordinator::HasPendingRequests() const {
  return leases_->state().pending_requests_size() > 0;
}

std::optional<AlertSnapshot> Coordinator::FreshAlerts() const {
  if (config_.alerts.prometheus_url.empty()) return std::nullopt;
  if (alerts_ == nullptr) {
    AlertSnapshot missing;
    missing.status = absl::FailedPreconditionError("no alert poller is wired up");
    missing.fetched_at = clock_.Now();
    return missing;
  }
  return alerts_->Current();  // Never fetches here: the poller reads in the background.
}

absl::Time Coordinator::GrantWhatGatesAllow(const std::optional<AlertSnapshot>& alerts) {
  const absl::Time now = clock_.Now();
  absl::Time next_check = absl::InfiniteFuture();
  for (const auto& [kind, policy] : config_.leases) {
    if (!policy.enabled) continue;
    // Bounded: each round either grants (consuming a request) or stops.
    for (int round = 0; round <= leases_->state().pending_requests_size(); ++round) {
      auto pending = leases_->PendingRequests(kind);
      if (pending.empty()) break;
      GateFacts facts = CollectGateFacts(alerts.has_value() ? &*alerts : nullptr);
      std::vector<GateOutcome> outcomes = EvaluateGates(kind, facts, config_, now);
      // The oldest request, unless the OS rollout lets only its canary (or vetted nodes) go.
      std::string chosen = pending.front().node_name();
      if (kind == tended::v1::LEASE_KIND_OS_UPGRADE) {
        std::vector<std::string> waiting;
        for (const auto& request : pending) waiting.push_back(request.node_name());
        outcomes.push_back(CanaryGate(CollectOsRolloutFacts(), waiting, now, &chosen));
      }
      if (!AllPass(outcomes)) {
        for (const GateOutcome& outcome : outcomes) {
          if (!outcome.pass && outcome.earliest_pass.has_value()) {
            next_check = std::min(next_check, *outcome.earliest_pass);
          }
        }
        break;
      }
      auto head_it = std::find_if(pending.begin(), pending.end(),
                                  [&](const auto& p) { return p.node_name() == chosen; });
      if (head_it == pending.end()) {
        Logger("coordinator")->error("the gates chose {}, which is not waiting", chosen);
        break;
      }
      const auto& head = *head_it;
      auto granted = leases_->Grant(head.node_name(), kind, head.reason());
      if (!granted.ok()) {
        Logger("coordinator")
            ->error("gates passed but the grant to {} failed: {}", head.node_name(),
                    granted.status().ToString());
        break;
      }
      if (disruption_flow_ != nullptr) {
        // Cordon and drain first; until then BeginDisruption is refused.
        auto prepared = disruption_flow_->OnGranted(*leases_, *granted);
        if (prepared.ok()) {
          granted = *std::move(prepared);
        } else {
          Logger("coordinator")
              ->error("recording the drain for {}: {}", granted->id(),
                      prepared.status().ToString());
        }
      }
      SendLease(*granted, /*granted=*/true);
    }
  }
  return next_check;
}

void Coordinator::Schedule() {
  {
    absl::MutexLock lock(&mutex_);
    if (!HasPendingRequests()) return;
  }
  std::optional<AlertSnapshot> alerts = FreshAlerts();
  absl::MutexLock lock(&mutex_);
  GrantWhatGatesAllow(alerts);
}

absl::Time Coordinator::Tick() {
  const absl::Time now = clock_.Now();
  absl::Time next = now + kMaxTickInterval;
  {
    absl::MutexLock lock(&mutex_);
    auto flagged = leases_->FlagOverdueLeases();
    if (!flagged.ok()) {
      Logger("coordinator")->error("flagging overdue leases: {}", flagged.status().ToString());
    }
    for (const Lease& lease : leases_->ActiveLeases()) {
      if (!lease.overdue()) next = std::min(next, FromProtoTimestamp(lease.expire_time()));
    }
    if (!HasPendingRequests()) return std::max(next, now + absl::Milliseconds(10));
  }
  std::optional<AlertSnapshot> alerts = FreshAlerts();
  absl::MutexLock lock(&mutex_);
  next = std::min(next, GrantWhatGatesAllow(alerts));
  return std::max(next, now + absl::Milliseconds(10));
}

void Coordinator::Shutdown() { directives_.CloseAll(); }

tended::v1::ListNodesResponse Coordinator::ListNodes() {
  absl::MutexLock lock(&mutex_);
  tended::v1::ListNodesResponse response;
  const absl::Time now = clock_.Now();
  for (const auto& known : leases_->state().nodes()) {
    tended::v1::Node* node = response.add_nodes();
    *node->mutable_facts() = known.last_facts();
    *node->mutable_first_seen_time() = known.first_seen_time();
    *node->mutable_last_disruption_end_time() = known.last_disruption_end_time();
    auto report = last_report_.find(known.node_name());
    absl::Time last_report = report != last_report_.end() ? report->second : started_at_;
    if (report != last_report_.end()) {
      *node->mutable_last_report_time() = ToProtoTimestamp(last_report);
    }
    for (const auto& pending : leases_->state().pending_requests()) {
      if (pending.node_name() == known.node_name()) node->set_waiting_for(pending.kind());
    }
    const Lease* held = leases_->FindActiveLeaseForNode(known.node_name());
    if (held != nullptr) {
      node->set_lease_id(held->id());
      node->set_state(tended::v1::NODE_STATE_DISRUPTED);
    } else if (now - last_report > config_.fleet.report_deadline) {
      node->set_state(tended::v1::NODE_STATE_SILENT);
    } else if (node->waiting_for() != tended::v1::LEASE_KIND_UNSPECIFIED) {
      node->set_state(tended::v1::NODE_STATE_WAITING);
    } else {
      node->set_state(tended::v1::NODE_STATE_IDLE);
    }
  }
  return response;
}

tended::v1::ListLeasesResponse Coordinator::ListLeases(
    const tended::v1::ListLeasesRequest& request) {
  absl::MutexLock lock(&mutex_);
  tended::v1::ListLeasesResponse response;
  for (const Lease& lease : leases_->state().leases()) {
    if (request.include_released() || IsActive(lease)) *response.add_leases() = lease;
  }
  return response;
}

absl::StatusOr<tended::v1::ExplainGatesResponse> Coordinator::ExplainGates(
    const tended::v1::ExplainGatesRequest& request) {
  if (request.kind() != tended::v1::LEASE_KIND_UNSPECIFIED) {
    RETURN_IF_ERROR(CheckKind(request.kind()));
  }
  std::optional<AlertSnapshot> alerts = FreshAlerts();
  absl::MutexLock lock(&mutex_);
  const absl::Time now = clock_.Now();
  GateFacts facts = CollectGateFacts(alerts.has_value() ? &*alerts : nullptr);
  tended::v1::ExplainGatesResponse response;
  *response.mutable_evaluated_at() = ToProtoTimestamp(now);
  for (LeaseKind kind : {tended::v1::LEASE_KIND_REBOOT, tended::v1::LEASE_KIND_OS_UPGRADE,
                         tended::v1::LEASE_KIND_K8S_UPGRADE}) {
    if (request.kind() != tended::v1::LEASE_KIND_UNSPECIFIED && request.kind() != kind) continue;
    auto* explanation = response.add_explanations();
    explanation->set_kind(kind);
    std::vector<GateOutcome> outcomes = EvaluateGates(kind, facts, config_, now);
    if (kind == tended::v1::LEASE_KIND_OS_UPGRADE) {
      std::vector<std::string> waiting;
      for (const auto& pending : leases_->PendingRequests(kind)) {
        waiting.push_back(pending.node_name());
      }
      std::string first;
      outcomes.push_back(CanaryGate(CollectOsRolloutFacts(), waiting, now, &first));
    }
    for (const GateOutcome& outcome : outcomes) *explanation->add_gates() = ToProto(outcome);
    explanation->set_would_grant(AllPass(outcomes));
    for (const auto& pending : leases_->PendingRequests(kind)) {
      explanation->add_waiting_nodes(pending.node_name());
    }
  }
  return response;
}

absl::StatusOr<tended::v1::HaltResponse> Coordinator::Halt(const tended::v1::HaltRequest& request) {
  if (absl::StripAsciiWhitespace(request.reason()).empty()) {
    return absl::InvalidArgumentError("reason: required, so others know why the fleet is halted");
  }
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(leases_->Halt(request.reason()));
  Logger("coordinator")->warn("halted: {}", request.reason());
  tended::v1::HaltResponse response;
  *response.mutable_halt() = leases_->state().halt();
  return response;
}

absl::StatusOr<tended::v1::ResumeResponse> Coordinator::Resume() {
  tended::v1::ResumeResponse response;
  {
    absl::MutexLock lock(&mutex_);
    RETURN_IF_ERROR(leases_->Resume());
    *response.mutable_halt() = leases_->state().halt();
  }
  Logger("coordinator")->info("resumed");
  Schedule();
  return response;
}

absl::StatusOr<tended::v1::ForceReleaseLeaseResponse> Coordinator::ForceReleaseLease(
    const tended::v1::ForceReleaseLeaseRequest& request) {
  if (request.lease_id().empty()) return absl::InvalidArgumentError("lease_id: required");
  if (absl::StripAsciiWhitespace(request.reason()).empty()) {
    return absl::InvalidArgumentError("reason: required; it is recorded in the event log");
  }
  tended::v1::ForceReleaseLeaseResponse response;
  {
    absl::MutexLock lock(&mutex_);
    ASSIGN_OR_RETURN(Lease lease, leases_->ForceRelease(request.lease_id(), request.reason()));
    *response.mutable_lease() = lease;
    SendLease(lease, /*granted=*/false);
    if (disruption_flow_ != nullptr) disruption_flow_->Wake();  // Uncordons, if ours.
  }
  Schedule();
  return response;
}

absl::StatusOr<tended::v1::ListEventsResponse> Coordinator::ListEvents(
    const tended::v1::ListEventsRequest& request) {
  size_t limit = request.limit() == 0 ? 100 : std::min<uint32_t>(request.limit(), 1000);
  absl::MutexLock lock(&mutex_);
  tended::v1::ListEventsResponse response;
  for (auto& event : leases_->EventsAfter(request.after_sequence(), limit)) {
    *response.add_events() = std::move(event);
  }
  return response;
}

absl::StatusOr<tended::v1::RemoveNodeResponse> Coordinator::RemoveNode(
    const tended::v1::RemoveNodeRequest& request) {
  RETURN_IF_ERROR(CheckNodeName("node_name", request.node_name()));
  if (absl::StripAsciiWhitespace(request.reason()).empty()) {
    return absl::InvalidArgumentError("reason: required; it is recorded in the event log");
  }
  {
    absl::MutexLock lock(&mutex_);
    RETURN_IF_ERROR(leases_->RemoveNode(request.node_name(), request.reason()));
    last_report_.erase(request.node_name());
  }
  Schedule();
  return tended::v1::RemoveNodeResponse();
}

void Coordinator::SetEventListener(LeaseManager::EventListener listener) {
  absl::MutexLock lock(&mutex_);
  leases_->SetEventListener(std::move(listener));
}

}  // namespace tended::coordinator
