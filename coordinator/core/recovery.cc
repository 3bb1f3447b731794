// Recovery after a start on an empty state (a lost volume, a changed path, a first start).
// The agents are the second witness: they report the lease they hold, the highest fencing
// token they were given and the state id of the coordinator they last talked to. The
// coordinator adopts every lease an agent holds (or blocks with the reason), grants nothing
// until every node known to it or to Kubernetes has reported, continues fencing above every
// token seen, and needs --recover-state to leave recovery when an agent shows that a state
// existed before (not a first start).
#include <algorithm>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/gates/gate.h"
#include "coordinator/gates/window.h"

namespace tended::coordinator {

using tended::v1::Lease;

namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("recovery"); }

constexpr char kUnknownPriorState[] = "(unknown: an agent reported a lease or a token)";

}  // namespace

std::string NewStateId() {
  absl::BitGen random;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(random),
                         absl::Uniform<uint64_t>(random));
}

void Coordinator::BeginRecovery(LeaseContext& context) {
  context.txn().SetIdentity(NewStateId(), context.now());
  tended::state::v1::RecoveryState recovery;
  recovery.set_active(true);
  *recovery.mutable_since() = ToProtoTimestamp(context.now());
  recovery.set_reason("the coordinator started on an empty state");
  recovery.set_recovery_allowed(options_.recover_state);
  context.txn().SetRecovery(recovery);
  context.txn().AddEvent(
      tended::v1::EVENT_TYPE_STATE_RECOVERY, nullptr, "",
      "started on an empty state: nothing is granted until every node has reported and every "
      "lease an agent holds is adopted");
  Log()->warn(
      "the state is empty: recovering from the agents' reports before anything is granted");
}

void Coordinator::AdoptClaims(LeaseContext& context,
                              const tended::v1::ReportFactsRequest& request) {
  state::Transaction& txn = context.txn();
  const std::string& name = request.facts().node_name();
  const uint64_t token_before = state_->last_fencing_token();
  tended::state::v1::RecoveryState recovery = state_->recovery();
  bool recovery_changed = false;
  auto evidence = [&](const std::string& prior, const std::string& how) {
    if (!recovery.active() || !recovery.prior_state_id().empty()) return;
    recovery.set_prior_state_id(prior);
    recovery.set_prior_state_reported_by(name);
    recovery_changed = true;
    // A halt an operator had set was lost with the state: come up halted, and say why.
    if (!state_->halt().halted()) {
      tended::v1::HaltState halt;
      halt.set_halted(true);
      halt.set_reason(absl::StrCat(
          "the coordinator's state was lost (", name,
          " last talked to another one); a halt set before may have been lost with it: check, "
          "then resume"));
      *halt.mutable_since() = ToProtoTimestamp(context.now());
      txn.SetHalt(halt);
      txn.AddEvent(tended::v1::EVENT_TYPE_HALTED, nullptr, "", halt.reason());
    }
    txn.AddEvent(tended::v1::EVENT_TYPE_STATE_RECOVERY, nullptr, name,
                 absl::StrCat(name, " ", how,
                              ": this is not a first start, the coordinator's state was lost",
                              options_.recover_state
                                  ? "; --recover-state rebuilds it from the agents"
                                  : "; restore it, or restart with --recover-state to rebuild "
                                    "it from the agents"));
  };

  const std::string& reported_state = request.coordinator_state_id();
  if (!reported_state.empty() && reported_state != state_->state_id()) {
    if (recovery.active()) {
      evidence(reported_state,
               absl::StrCat("last talked to coordinator state ", reported_state));
    } else if (foreign_state_warned_[name] != reported_state) {
      foreign_state_warned_[name] = reported_state;
      txn.AddEvent(tended::v1::EVENT_TYPE_STATE_RECOVERY, nullptr, name,
                   absl::StrCat(name, " last talked to coordinator state ", reported_state,
                                ", not this one (", state_->state_id(),
                                "): is a second coordinator with another state serving it?"));
      Log()->error("{} last talked to coordinator state {}, ours is {}", name, reported_state,
                   state_->state_id());
    }
  }
  if (request.max_fencing_token_seen() > token_before) {
    txn.RaiseFencingToken(request.max_fencing_token_seen());
    evidence(kUnknownPriorState,
             absl::StrCat("was given fencing token ", request.max_fencing_token_seen()));
    if (!recovery.active()) {
      Log()->error("{} was given fencing token {}, above this state's {}: the state is older "
                   "than what the agents know; fencing continues above it",
                   name, request.max_fencing_token_seen(), token_before);
    }
  }

  const Lease& claim = request.held_lease();
  if (!claim.id().empty() && state_->FindLease(claim.id()) == nullptr &&
      (recovery.active() || claim.fencing_token() > token_before)) {
    evidence(kUnknownPriorState, absl::StrCat("holds lease ", claim.id()));
    std::string problem;
    if (claim.node_name() != name) {
      problem = absl::StrCat("it names node ", claim.node_name());
    } else if (LifecycleFor(claim.kind()) == nullptr) {
      problem = "no flow carries its kind out";
    } else if (claim.fencing_token() == 0 || !state::IsActive(claim)) {
      problem = "it is not an active lease with a fencing token";
    } else if (const Lease* other = state_->ActiveLeaseForNode(name); other != nullptr) {
      problem = absl::StrCat("the node already holds ", other->id());
    }
    if (!problem.empty()) {
      const std::string entry =
          absl::StrCat(name, " reports holding ", claim.id(), ", which cannot be adopted: ", problem);
      if (recovery.active() &&
          std::find(recovery.unresolved().begin(), recovery.unresolved().end(), entry) ==
              recovery.unresolved().end()) {
        recovery.add_unresolved(entry);
        recovery_changed = true;
        txn.AddEvent(tended::v1::EVENT_TYPE_STATE_RECOVERY, nullptr, name, entry);
      }
      Log()->error("{}", entry);
    } else {
      const absl::Time now = context.now();
      Lease adopted = claim;
      adopted.set_adopted(true);
      adopted.set_agent_instance_id(request.agent_instance_id());
      adopted.clear_overdue();
      *adopted.mutable_renew_time() = ToProtoTimestamp(now);
      const LeasePolicy& policy = config_.leases.count(claim.kind()) > 0
                                      ? config_.leases.at(claim.kind())
                                      : LeasePolicy();
      *adopted.mutable_expire_time() = ToProtoTimestamp(
          now + (adopted.phase() == tended::v1::LEASE_PHASE_GRANTED ? policy.renew_deadline
                                                                     : policy.return_deadline));
      adopted.set_status_message(absl::StrCat(
          "adopted from ", name,
          "'s journal: the coordinator had lost its state; it is verified as usual"));
      txn.RaiseFencingToken(claim.fencing_token());
      txn.PutLease(adopted);
      txn.AddEvent(tended::v1::EVENT_TYPE_LEASE_ADOPTED, &adopted, name,
                   absl::StrCat("adopted ", claim.id(), " (fencing token ", claim.fencing_token(),
                                ", ", tended::v1::LeasePhase_Name(claim.phase()),
                                ") from the agent's journal"));
      Log()->warn("adopted lease {} from {}", claim.id(), name);
      LifecycleFor(claim.kind())->OnAdopted(context, adopted);
      context.Send(*state_->FindLease(adopted.id()), /*granted=*/true);
    }
  }
  if (recovery_changed) txn.SetRecovery(recovery);
}

std::optional<std::string> Coordinator::RecoveryWait(absl::Time now) const {
  const tended::state::v1::RecoveryState& recovery = state_->recovery();
  if (!recovery.active()) return std::nullopt;
  std::vector<std::string> waits;
  if (!recovery.unresolved().empty()) {
    std::vector<std::string> entries(recovery.unresolved().begin(), recovery.unresolved().end());
    waits.push_back(absl::StrCat("claims that could not be adopted: ", JoinCapped(entries),
                                 " (resolve them, e.g. force-release or remove the node)"));
  }
  const bool prior_state = !recovery.prior_state_id().empty();
  if (prior_state && !recovery.recovery_allowed()) {
    waits.push_back(absl::StrCat(
        recovery.prior_state_reported_by(), " shows that a state existed before (",
        recovery.prior_state_id(),
        "): it was lost (an unmounted volume? a changed state_dir?). Restore it, or restart "
        "the coordinator with --recover-state to rebuild it from the agents"));
  }
  std::vector<std::string> unheard;
  for (const auto& [name, entry] : state_->nodes()) {
    if (!entry->reported_since_start()) unheard.push_back(name);
  }
  bool kube_lists_nodes = false;
  if (config_.kubernetes.enabled) {
    std::optional<KubeGateFacts> kube;
    if (drain_flow_ != nullptr) kube = drain_flow_->GateFactsSnapshot();
    if (!kube.has_value() || !kube->status.ok() || kube->facts == nullptr) {
      waits.push_back("the Kubernetes node list has not been read yet");
    } else {
      kube_lists_nodes = true;
      for (const kube::NodeInfo& node : kube->facts->nodes) {
        const state::NodeEntry* entry = state_->FindNode(node.name);
        if ((entry == nullptr || !entry->reported_since_start()) &&
            std::find(unheard.begin(), unheard.end(), node.name) == unheard.end()) {
          unheard.push_back(node.name);
        }
      }
    }
  }
  if (!unheard.empty()) {
    std::sort(unheard.begin(), unheard.end());
    waits.push_back(absl::StrCat(Plural(unheard.size(), "node has", "nodes have"),
                                 " not reported since the coordinator started: ",
                                 JoinCapped(unheard)));
  }
  // Every live agent reports within the deadline; without a node list from Kubernetes, a
  // node still down in a disruption can only be waited for as long as it may take to
  // come back.
  absl::Duration period = config_.fleet.report_deadline;
  if (prior_state && !kube_lists_nodes) {
    for (const auto& [kind, policy] : config_.leases) period = std::max(period, policy.return_deadline);
  }
  const absl::Time until = FromProtoTimestamp(recovery.since()) + period;
  if (now < until) {
    waits.push_back(absl::StrCat("every agent may report until ", FormatUtcTime(until), " (",
                                 FormatDurationForPeople(until - now), " from now)"));
  }
  if (waits.empty()) return std::nullopt;
  return absl::StrCat("recovering after a start on an empty state: ", absl::StrJoin(waits, "; "));
}

void Coordinator::AdvanceRecovery(LeaseContext& context) {
  if (!state_->recovery().active() || RecoveryWait(context.now()).has_value()) return;
  tended::state::v1::RecoveryState recovery = state_->recovery();
  const bool prior_state = !recovery.prior_state_id().empty();
  if (prior_state) {
    // A token an agent that never reported may hold can not be known: continue above the
    // clock, which no earlier state's counter can have reached.
    context.txn().RaiseFencingToken(
        static_cast<uint64_t>(absl::ToUnixMicros(context.now())));
  }
  int adopted = 0;
  for (const Lease* lease : state_->ActiveLeases()) adopted += lease->adopted() ? 1 : 0;
  recovery.set_active(false);
  context.txn().SetRecovery(recovery);
  context.txn().AddEvent(
      tended::v1::EVENT_TYPE_STATE_RECOVERY, nullptr, "",
      absl::StrCat("recovery ended: every node reported; ", adopted,
                   adopted == 1 ? " lease" : " leases", " adopted; fencing continues above ",
                   state_->last_fencing_token(), prior_state ? "" : " (a first start)"));
  Log()->info("recovery ended; fencing continues above {}", state_->last_fencing_token());
}

}  // namespace tended::coordinator
