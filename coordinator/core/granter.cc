// The granter: one decision per lease kind from one evaluation of the gates. The grant loop,
// AcquireLease's answer and ExplainGates all call Decide(), so what an operator is shown is
// what the coordinator decides by.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/gates/evaluate.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {

using tended::v1::Lease;
using tended::v1::LeaseKind;

namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("granter"); }

}  // namespace

bool Coordinator::MayReturnFromSilence(const state::NodeEntry& node, absl::Time now) const {
  return !node.reported_since_start() ||
         now - node.last_report() > config_.fleet.report_deadline / 2;
}

Coordinator::FleetSummary Coordinator::SummarizeFleet(absl::Time now) const {
  const state::FleetState& state = *state_;
  {
    absl::MutexLock lock(&summary_mutex_);
    if (summary_.has_value() && summary_->membership_version == state.membership_version() &&
        summary_->returns_from_silence == returns_from_silence_ && now >= summary_->computed_at &&
        summary_->oldest_report_counted >= now - config_.fleet.report_deadline) {
      return *summary_;
    }
  }
  FleetSummary summary;
  summary.membership_version = state.membership_version();
  summary.returns_from_silence = returns_from_silence_;
  summary.computed_at = now;
  const absl::Time cutoff = now - config_.fleet.report_deadline;
  for (const auto& [name, entry] : state.nodes()) {
    ++summary.fleet.known;
    const absl::Time ended = FromProtoTimestamp(entry->known.last_disruption_end_time());
    if (ended > summary.last_disruption_end) {
      summary.last_disruption_end = ended;
      summary.last_disruption_node = name;
    }
    if (state.ActiveLeaseForNode(name) != nullptr) {
      ++summary.fleet.holders;
      continue;
    }
    const absl::Time last = entry->last_report();
    if (last < cutoff) {
      summary.fleet.silent.push_back({name, last});
    } else {
      summary.oldest_report_counted = std::min(summary.oldest_report_counted, last);
    }
  }
  absl::MutexLock lock(&summary_mutex_);
  summary_ = summary;
  return summary;
}

GateFacts Coordinator::CollectGateFacts(absl::Time now) const {
  const state::FleetState& state = *state_;
  GateFacts facts;
  facts.halted = state.halt().halted();
  facts.halt_reason = state.halt().reason();
  facts.state_health = ledger_->health();
  if (state.recovery().active()) facts.recovery_wait = RecoveryWait(now);
  FleetSummary summary = SummarizeFleet(now);
  facts.fleet = std::move(summary.fleet);
  facts.last_disruption_node = std::move(summary.last_disruption_node);
  facts.last_disruption_end = summary.last_disruption_end;
  for (const Lease* lease : state.ActiveLeases()) {
    facts.active_leases.push_back({lease->node_name(), lease->kind()});
  }
  if (!config_.alerts.prometheus_url.empty() && options_.alerts) facts.alerts = options_.alerts();
  if (drain_flow_ != nullptr) facts.kube = drain_flow_->GateFactsSnapshot();
  return facts;
}

NodeGateFacts Coordinator::CollectNodeGateFacts(const std::string& node,
                                                const GateFacts& facts) const {
  NodeGateFacts gate;
  gate.node = node;
  if (const state::NodeEntry* entry = state_->FindNode(node); entry != nullptr) {
    const tended::state::v1::KnownNode& known = entry->known;
    if (known.has_conflict()) {
      gate.conflict = absl::StrCat(
          "agent instance ", known.agent_instance_id(), " is registered and instance ",
          known.conflict().other_instance_id(), " also reports (since ",
          FormatUtcTime(FromProtoTimestamp(known.conflict().since())), ")");
    }
    gate.backoff_until = FromProtoTimestamp(known.backoff_until());
    gate.consecutive_returns = known.consecutive_returns();
  }
  if (config_.kubernetes.enabled && !config_.kubernetes.blocking_pod_selectors.empty() &&
      facts.kube.has_value() && facts.kube->facts != nullptr &&
      facts.kube->facts->blocking_pods.has_value()) {
    const auto& blocking = *facts.kube->facts->blocking_pods;
    auto it = blocking.find(node);
    gate.blocking_pods = it == blocking.end() ? std::vector<std::string>() : it->second;
  }
  return gate;
}

std::vector<GateOutcome> Coordinator::NodeGatesFor(LeaseKind kind, const std::string& node,
                                                   const GateFacts& facts, absl::Time now) const {
  std::vector<GateOutcome> blocking = BlockingNodeGates(CollectNodeGateFacts(node, facts), now);
  if (LeaseLifecycle* lifecycle = LifecycleFor(kind); lifecycle != nullptr) {
    for (GateOutcome& outcome : lifecycle->NodeGates(*state_, node, now)) {
      blocking.push_back(std::move(outcome));
    }
  }
  return blocking;
}

Coordinator::Decision Coordinator::Decide(LeaseKind kind, const GateFacts& facts,
                                          absl::Time now) const {
  Decision decision;
  LeaseLifecycle* lifecycle = LifecycleFor(kind);
  if (lifecycle == nullptr) {
    decision.outcomes.push_back(BlockGate(
        "policy", absl::StrCat(LeaseKindConfigName(kind),
                               " leases are not granted: no flow carries them out yet")));
    return decision;
  }
  decision.outcomes = EvaluateFleetGates(kind, facts, config_, now);
  std::vector<std::string> waiting;
  for (const auto* request : state_->Waiting(kind)) waiting.push_back(request->node_name());
  if (decision.outcomes.size() == 1 && decision.outcomes[0].gate == "policy") return decision;
  lifecycle->AppendKindGates(*state_, waiting, now, decision.outcomes);
  const bool fleet_passes = AllPass(decision.outcomes);
  std::vector<WaitingNodeVerdict> verdicts;
  for (const std::string& node : waiting) {
    WaitingNodeVerdict verdict{node, NodeGatesFor(kind, node, facts, now)};
    const bool eligible = verdict.blocking.empty();
    verdicts.push_back(std::move(verdict));
    if (eligible) {
      if (fleet_passes) decision.chosen = node;
      break;
    }
  }
  decision.outcomes.push_back(WaitingNodeGate(verdicts));
  return decision;
}

void Coordinator::GrantWhatGatesAllow(LeaseContext& context,
                                      std::map<LeaseKind, KindVerdict>* verdicts) {
  const absl::Time now = context.now();
  next_gate_check_ = absl::InfiniteFuture();
  for (const auto& [kind, lifecycle] : lifecycles_) {
    auto policy = config_.leases.find(kind);
    if (policy == config_.leases.end() || !policy->second.enabled) continue;
    // Bounded: each round grants (consuming a request) or stops.
    const size_t rounds = state_->Waiting(kind).size();
    for (size_t round = 0; round < rounds; ++round) {
      GateFacts facts = CollectGateFacts(now);
      Decision decision = Decide(kind, facts, now);
      if (!decision.chosen.has_value()) {
        next_gate_check_ = std::min(next_gate_check_, EarliestPass(decision.outcomes));
        if (verdicts != nullptr) {
          (*verdicts)[kind] = KindVerdict{std::move(facts), std::move(decision)};
        }
        break;
      }
      if (Grant(context, *decision.chosen, kind).id().empty()) break;
    }
  }
}

Lease Coordinator::Grant(LeaseContext& context, const std::string& node, LeaseKind kind) {
  state::Transaction& txn = context.txn();
  const LeasePolicy& policy = config_.leases.at(kind);
  const tended::state::v1::PendingRequest* request = state_->FindRequest(node, kind);
  const std::string reason = request != nullptr ? request->reason() : "";
  // The last line of defence, whatever the gates said: one lease per node, the kind's
  // concurrency, and no overlap of kinds unless allowed.
  if (const Lease* held = state_->ActiveLeaseForNode(node); held != nullptr) {
    Log()->error("not granting {} to {}: it holds {}", LeaseKindConfigName(kind), node, held->id());
    txn.RemoveRequest(node, kind);
    return *held;
  }
  bool overlap = false;
  for (const Lease* active : state_->ActiveLeases()) overlap |= active->kind() != kind;
  if (state_->ActiveCount(kind) >= policy.concurrency || (overlap && !config_.allow_kind_overlap)) {
    Log()->error("the gates passed but granting {} to {} would break the concurrency; refused",
                 LeaseKindConfigName(kind), node);
    return Lease();
  }
  const state::NodeEntry* entry = state_->FindNode(node);
  txn.RemoveRequest(node, kind);
  const uint64_t token = txn.NextFencingToken();
  const absl::Time now = context.now();
  Lease lease;
  lease.set_id(absl::StrCat(LeaseKindConfigName(kind), "-", node, "-", token));
  lease.set_kind(kind);
  lease.set_node_name(node);
  lease.set_fencing_token(token);
  lease.set_phase(tended::v1::LEASE_PHASE_GRANTED);
  *lease.mutable_grant_time() = ToProtoTimestamp(now);
  *lease.mutable_renew_time() = ToProtoTimestamp(now);
  *lease.mutable_expire_time() = ToProtoTimestamp(now + policy.renew_deadline);
  if (entry != nullptr) {
    lease.set_boot_id_at_grant(entry->reported_since_start() ? entry->facts.boot_id()
                                                             : entry->known.boot_id());
    lease.set_agent_instance_id(entry->known.agent_instance_id());
  }
  lease.set_reason(reason);
  txn.PutLease(lease);
  txn.AddEvent(tended::v1::EVENT_TYPE_LEASE_GRANTED, &lease, node,
               absl::StrCat("granted with fencing token ", token));
  if (LeaseLifecycle* lifecycle = LifecycleFor(kind); lifecycle != nullptr) {
    lifecycle->OnGranted(context, lease);
  }
  Log()->info("granted {} to {} (token {})", lease.id(), node, token);
  context.Send(*state_->FindLease(lease.id()), /*granted=*/true);
  return *state_->FindLease(lease.id());
}

absl::Status Coordinator::RecheckBeforeActLocked(LeaseContext& context, const Lease& lease) {
  const absl::Time now = context.now();
  std::vector<GateOutcome> outcomes =
      RecheckBeforeAct(lease.kind(), CollectGateFacts(now), config_, now);
  if (AllPass(outcomes)) {
    if (lease.has_begin_blocked_since()) {
      Lease cleared = lease;
      cleared.clear_begin_blocked_since();
      cleared.clear_begin_blocked_reason();
      cleared.clear_begin_blocked_gates();
      context.txn().PutLease(cleared);
    }
    return absl::OkStatus();
  }
  const std::string reason = DescribeBlocking(outcomes);
  std::vector<std::string> gates;
  for (const GateOutcome& outcome : outcomes) {
    if (!outcome.pass) gates.push_back(outcome.gate);
  }
  const absl::Time since =
      lease.has_begin_blocked_since() ? FromProtoTimestamp(lease.begin_blocked_since()) : now;
  absl::Duration wait = absl::Minutes(30);
  if (auto it = config_.leases.find(lease.kind()); it != config_.leases.end()) {
    wait = it->second.begin_wait;
  }
  const bool same_gates =
      lease.has_begin_blocked_since() &&
      std::vector<std::string>(lease.begin_blocked_gates().begin(),
                               lease.begin_blocked_gates().end()) == gates;
  if (!same_gates) {
    // Recorded (with an event) when the blocking gates change, not at every ask.
    Lease blocked = lease;
    *blocked.mutable_begin_blocked_since() = ToProtoTimestamp(since);
    blocked.set_begin_blocked_reason(reason);
    blocked.clear_begin_blocked_gates();
    for (const std::string& gate : gates) blocked.add_begin_blocked_gates(gate);
    context.txn().PutLease(blocked);
    context.txn().AddEvent(
        tended::v1::EVENT_TYPE_DISRUPTION_WAITING, &blocked, blocked.node_name(),
        absl::StrCat("the disruptive act waits: ", reason, "; the lease is given back at ",
                     FormatUtcTime(since + wait), " if this lasts"));
  }
  return absl::UnavailableError(absl::StrCat(
      "not now: ", reason, "; the lease is kept until ", FormatUtcTime(since + wait),
      " and given back if a gate still blocks then"));
}

}  // namespace tended::coordinator
