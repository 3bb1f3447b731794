#include "coordinator/leases/k8s_upgrade_lifecycle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/k8s_steps.h"
#include "common/kube_version.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/gates/window.h"
#include "coordinator/leases/k8s_rollout_plan.h"

namespace tended::coordinator {
namespace {

using tended::v1::K8sRollout;
using tended::v1::K8sRolloutNode;
using tended::v1::Lease;

std::shared_ptr<spdlog::logger> Log() { return Logger("k8s-rollout"); }

bool IsFinal(tended::v1::StepState state) {
  return state == tended::v1::STEP_STATE_SUCCEEDED || state == tended::v1::STEP_STATE_FAILED ||
         state == tended::v1::STEP_STATE_INTERRUPTED;
}

bool StepDone(const Lease& lease, tended::v1::K8sStepKind kind) {
  return std::find(lease.k8s_steps_done().begin(), lease.k8s_steps_done().end(), kind) !=
         lease.k8s_steps_done().end();
}

K8sRolloutNode* FindNode(K8sRollout& rollout, const std::string& name) {
  for (K8sRolloutNode& node : *rollout.mutable_nodes()) {
    if (node.node_name() == name) return &node;
  }
  return nullptr;
}

bool Finished(const K8sRolloutNode& node) {
  return node.progress() == tended::v1::K8S_NODE_PROGRESS_DONE ||
         node.progress() == tended::v1::K8S_NODE_PROGRESS_SKIPPED;
}

// The node whose turn it is: the first not finished.
const K8sRolloutNode* Current(const K8sRollout& rollout) {
  for (const K8sRolloutNode& node : rollout.nodes()) {
    if (!Finished(node)) return &node;
  }
  return nullptr;
}

tended::state::v1::PendingRequest RequestFor(const K8sRollout& rollout, const K8sRolloutNode& node,
                                             absl::Time now) {
  tended::state::v1::PendingRequest request;
  request.set_node_name(node.node_name());
  request.set_kind(tended::v1::LEASE_KIND_K8S_UPGRADE);
  request.set_reason(absl::StrCat("Kubernetes rollout ", rollout.id(), " to ",
                                  rollout.target_version(), ": lease ", node.leases_done() + 1,
                                  " of ", K8sLeaseCount(node.role())));
  *request.mutable_request_time() = ToProtoTimestamp(now);
  return request;
}

void SetStage(K8sRollout& rollout, tended::v1::K8sRolloutStage stage, absl::Time now) {
  if (rollout.stage() == stage) return;
  rollout.set_stage(stage);
  *rollout.mutable_stage_start_time() = ToProtoTimestamp(now);
}

std::string Summary(const K8sRollout& rollout) {
  std::vector<std::string> parts;
  for (const K8sRolloutNode& node : rollout.nodes()) {
    parts.push_back(absl::StrCat(node.node_name(), " ", K8sNodeProgressName(node.progress())));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

const tended::v1::K8sStep* NextK8sStep(const Lease& lease) {
  for (const tended::v1::K8sStep& step : lease.k8s_work().steps()) {
    if (!StepDone(lease, step.kind())) return &step;
  }
  return nullptr;
}

const K8sRollout* K8sUpgradeLifecycle::RolloutOf(const state::FleetState& state,
                                                 const Lease& lease) const {
  const K8sRollout* active = state.ActiveK8sRollout();
  if (active == nullptr || !lease.has_k8s_work() || lease.k8s_work().rollout_id() != active->id()) {
    return nullptr;
  }
  return active;
}

bool K8sUpgradeLifecycle::FlowOwns(const LeaseContext& context, const Lease& lease) const {
  return flow_ != nullptr && flow_->Owns(context.state(), lease);
}

void K8sUpgradeLifecycle::Save(LeaseContext& context, K8sRollout& rollout,
                               const std::string& event) {
  *rollout.mutable_update_time() = ToProtoTimestamp(context.now());
  context.txn().PutK8sRollout(rollout);
  if (!event.empty()) {
    context.txn().AddEvent(tended::v1::EVENT_TYPE_K8S_ROLLOUT, nullptr, "",
                           absl::StrCat("Kubernetes rollout ", rollout.id(), ": ", event));
  }
}

void K8sUpgradeLifecycle::Fail(LeaseContext& context, K8sRollout& rollout, const std::string& node,
                               const std::string& why) {
  if (!state::IsK8sRolloutActive(rollout)) return;
  for (K8sRolloutNode& entry : *rollout.mutable_nodes()) {
    if (entry.progress() == tended::v1::K8S_NODE_PROGRESS_WAITING) {
      context.txn().RemoveRequest(entry.node_name(), tended::v1::LEASE_KIND_K8S_UPGRADE);
      entry.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
      entry.set_message("not started: the rollout stopped");
    }
  }
  rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_FAILED);
  rollout.set_message(why);
  *rollout.mutable_end_time() = ToProtoTimestamp(context.now());
  Log()->error("rollout {} failed: {}", rollout.id(), why);
  Save(context, rollout,
       absl::StrCat("FAILED", node.empty() ? "" : " at ", node, ": ", why, " (", Summary(rollout),
                    ")"));
}

std::vector<GateOutcome> K8sUpgradeLifecycle::NodeGates(const state::FleetState& state,
                                                        const std::string& node,
                                                        absl::Time now) const {
  const K8sRollout* rollout = state.ActiveK8sRollout();
  if (rollout == nullptr) {
    return {BlockGate("k8s_rollout",
                      "no Kubernetes rollout is running; k8s_upgrade leases go only to the node "
                      "whose turn it is in a rollout")};
  }
  const K8sRolloutNode* current = Current(*rollout);
  if (current == nullptr || current->node_name() != node ||
      current->progress() != tended::v1::K8S_NODE_PROGRESS_WAITING) {
    return {BlockGate("k8s_rollout",
                      absl::StrCat("rollout ", rollout->id(), " is at ",
                                   current == nullptr ? "its postflight" : current->node_name(),
                                   ", not ", node))};
  }
  return {};
}

void K8sUpgradeLifecycle::OnGranted(LeaseContext& context, Lease& lease) {
  const K8sRollout* active = context.state().ActiveK8sRollout();
  K8sRollout rollout;
  K8sRolloutNode* node = nullptr;
  if (active != nullptr) {
    rollout = *active;
    node = FindNode(rollout, lease.node_name());
  }
  if (node == nullptr || node->progress() != tended::v1::K8S_NODE_PROGRESS_WAITING) {
    context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                    "no Kubernetes rollout waits for this node; the lease is given back");
    return;
  }
  *lease.mutable_k8s_work() = K8sWorkFor(rollout, *node, context.state());
  context.txn().PutLease(lease);
  if (flow_ != nullptr) flow_->OnGranted(context, lease);
  node->set_progress(tended::v1::K8S_NODE_PROGRESS_UPGRADING);
  node->set_lease_id(lease.id());
  std::vector<std::string> steps;
  for (const auto& step : lease.k8s_work().steps()) steps.push_back(K8sStepName(step.kind()));
  node->set_message(absl::StrCat("lease ", lease.id(), ": ", absl::StrJoin(steps, ", "),
                                 lease.k8s_work().drain() ? " (drained first)" : ""));
  Save(context, rollout,
       absl::StrCat(lease.node_name(), " granted ", lease.id(), ": ", absl::StrJoin(steps, ", "),
                    lease.k8s_work().drain() ? ", after a drain" : ", no drain"));
}

absl::Status K8sUpgradeLifecycle::OnBegin(LeaseContext& context, Lease& lease,
                                          const tended::v1::BeginDisruptionRequest& request) {
  const K8sRollout* rollout = RolloutOf(context.state(), lease);
  if (rollout == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease ", lease.id(), " belongs to no running Kubernetes rollout (",
        lease.k8s_work().rollout_id().empty()
            ? "it carries no work"
            : absl::StrCat("rollout ", lease.k8s_work().rollout_id(), " is not running"),
        "); no step starts under it"));
  }
  const tended::v1::K8sStep* next = NextK8sStep(lease);
  if (next == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("every step of lease ", lease.id(), " is done; it is being verified"));
  }
  const std::string name = K8sStepName(next->kind());
  if (request.step() != name) {
    return absl::FailedPreconditionError(absl::StrCat("the next step under lease ", lease.id(),
                                                      " is ", name, ", not ", request.step()));
  }
  if (FlowOwns(context, lease)) RETURN_IF_ERROR(flow_->MayDisrupt(context.state(), lease));
  lease.set_status_message(absl::StrCat(name, ": running"));
  return absl::OkStatus();
}

absl::StatusOr<Lease> K8sUpgradeLifecycle::OnStepReport(
    LeaseContext& context, const Lease& lease, const tended::v1::ReportStepRequest& request) {
  const tended::v1::StepReport& report = request.report();
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease.id(), " has not begun a step; call BeginDisruption first"));
  }
  const tended::v1::K8sStepKind kind = report.k8s_step();
  if (kind == tended::v1::K8S_STEP_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError("report.k8s_step: a k8s_upgrade lease reports typed steps");
  }
  if (StepDone(lease, kind)) return lease;  // A report repeated after a lost answer.
  const tended::v1::K8sStep* next = NextK8sStep(lease);
  if (next == nullptr || next->kind() != kind) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease ", lease.id(), " reports ", K8sStepName(kind), " but its step in progress is ",
        next == nullptr ? "none" : K8sStepName(next->kind())));
  }
  const K8sRollout* active = RolloutOf(context.state(), lease);
  if (active == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease.id(), " belongs to no running Kubernetes rollout"));
  }
  const std::string node_name = lease.node_name();
  const std::string step_name = K8sStepName(kind);
  if (!IsFinal(report.state())) {
    if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
      context.SetStatus(lease, absl::StrCat(step_name, ": ", report.message()),
                        /*problem=*/false);
    }
    return *context.state().FindLease(lease.id());
  }
  K8sRollout rollout = *active;
  K8sRolloutNode* node = FindNode(rollout, node_name);
  bool succeeded = report.state() == tended::v1::STEP_STATE_SUCCEEDED;
  std::string failure = report.message();
  if (succeeded && kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT &&
      (report.snapshot().path().empty() || report.snapshot().size_bytes() == 0 ||
       report.snapshot().sha256().size() != 64)) {
    succeeded = false;
    failure = "the snapshot report names no file, size and sha256";
  }
  if (!succeeded) {
    const std::string why = absl::StrCat(
        node_name, ": ", step_name,
        report.state() == tended::v1::STEP_STATE_INTERRUPTED ? " was interrupted: " : " failed: ",
        failure);
    context.txn().AddEvent(tended::v1::EVENT_TYPE_STEP_REPORTED, &lease, node_name, why);
    context.SetStatus(lease,
                      absl::StrCat(why, "; the rollout stopped. The lease stays held",
                                   lease.k8s_work().drain() ? " and the node cordoned" : "",
                                   " until an operator repairs the node and force-releases it"),
                      /*problem=*/true);
    if (node != nullptr) {
      node->set_progress(tended::v1::K8S_NODE_PROGRESS_FAILED);
      node->set_message(why);
    }
    Fail(context, rollout, node_name, why);
    return *context.state().FindLease(lease.id());
  }
  Lease updated = lease;
  updated.add_k8s_steps_done(kind);
  updated.set_status_message(absl::StrCat(step_name, ": done"));
  context.txn().PutLease(updated);
  context.txn().AddEvent(tended::v1::EVENT_TYPE_STEP_REPORTED, &updated, node_name,
                         absl::StrCat(step_name, " succeeded", report.message().empty() ? "" : ": ",
                                      report.message()));
  if (node != nullptr) {
    node->add_steps_done(kind);
    node->set_message(absl::StrCat(step_name, " done"));
    SetStage(rollout, K8sStepStage(kind, node->role()), context.now());
  }
  std::string event = absl::StrCat(node_name, ": ", step_name, " done");
  if (kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT) {
    *rollout.mutable_snapshot() = report.snapshot();
    rollout.mutable_snapshot()->set_node_name(node_name);
    absl::StrAppend(&event, " (", report.snapshot().path(), ", ", report.snapshot().size_bytes(),
                    " bytes, sha256 ", report.snapshot().sha256(), ")");
  }
  Save(context, rollout, event);
  if (NextK8sStep(updated) == nullptr) {
    context.MarkVerifying(
        updated, absl::StrCat("all ", updated.k8s_work().steps_size(), " steps done; verifying"));
    if (FlowOwns(context, updated)) flow_->WakeAfter(context);
  }
  return *context.state().FindLease(lease.id());
}

void K8sUpgradeLifecycle::OnFacts(LeaseContext& context, const Lease& lease,
                                  const state::NodeEntry& node) {
  if (lease.phase() != tended::v1::LEASE_PHASE_VERIFYING || NextK8sStep(lease) != nullptr) return;
  if (FlowOwns(context, lease)) return;  // The drain flow verifies in Kubernetes too.
  if (RolloutOf(context.state(), lease) == nullptr) return;  // Held for an operator.
  std::vector<std::string> waits = K8sPackageWaits(lease, node.facts);
  if (!config_.alerts.prometheus_url.empty()) {
    GateFacts facts;
    facts.alerts = context.alerts();
    if (GateOutcome alerts = AlertsGate(facts, config_, context.now()); !alerts.pass) {
      waits.push_back(alerts.reason);
    }
  }
  if (!waits.empty()) {
    context.SetStatus(lease,
                      absl::StrCat("steps done, not verified yet: ", absl::StrJoin(waits, "; ")),
                      /*problem=*/false);
    return;
  }
  context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RELEASED,
                  absl::StrCat("verified and released: ", lease.k8s_work().steps_size(),
                               " steps done, the node reports the target's packages and no "
                               "alert fires"));
}

absl::StatusOr<Lease> K8sUpgradeLifecycle::OnReturn(LeaseContext& context, const Lease& lease,
                                                    const std::string& reason) {
  if (!lease.k8s_steps_done().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease ", lease.id(), " has steps done; the coordinator verifies and releases it"));
  }
  if (FlowOwns(context, lease)) {
    if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
      flow_->Abandon(context, lease, absl::StrCat("returned by the holder: ", reason),
                     /*failed=*/false);
    } else {
      flow_->ReturnUnrebooted(context, lease, absl::StrCat("returned by the holder: ", reason),
                              /*failed=*/false);
    }
    return *context.state().FindLease(lease.id());
  }
  return context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED,
                         absl::StrCat("returned by the holder before any step: ", reason));
}

void K8sUpgradeLifecycle::Abandon(LeaseContext& context, const Lease& lease,
                                  const std::string& reason) {
  if (!lease.k8s_steps_done().empty()) {
    // Half of the node's work is done: giving the lease back would leave it between
    // versions with nobody watching. It stays held; the next step waits for the gates.
    Lease held = lease;
    held.clear_begin_blocked_since();
    held.clear_begin_blocked_gates();
    held.clear_begin_blocked_reason();
    context.txn().PutLease(held);
    context.SetStatus(
        held,
        absl::StrCat("held between steps: ", reason, "; the next step starts once the gates pass"),
        /*problem=*/true);
    return;
  }
  if (FlowOwns(context, lease)) {
    if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
      flow_->Abandon(context, lease, reason, /*failed=*/true);
    } else {
      flow_->ReturnUnrebooted(context, lease, reason, /*failed=*/true);
    }
    return;
  }
  context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, reason, /*failed=*/true);
}

void K8sUpgradeLifecycle::OnForceReleased(LeaseContext& context, const Lease& lease) {
  if (flow_ != nullptr) flow_->WakeAfter(context);
  const K8sRollout* active = RolloutOf(context.state(), lease);
  if (active == nullptr) return;
  K8sRollout rollout = *active;
  const std::string why = absl::StrCat(
      "lease ", lease.id(), " on ", lease.node_name(), " was force-released by an operator after ",
      lease.k8s_steps_done_size(), " of ", lease.k8s_work().steps_size(),
      " steps; start a new rollout to go on (nodes at the target are skipped)");
  if (K8sRolloutNode* node = FindNode(rollout, lease.node_name()); node != nullptr) {
    node->set_progress(tended::v1::K8S_NODE_PROGRESS_FAILED);
    node->set_message(why);
  }
  Fail(context, rollout, lease.node_name(), why);
}

void K8sUpgradeLifecycle::OnAdopted(LeaseContext& context, Lease& lease) {
  if (flow_ != nullptr) flow_->OnAdopted(context, lease);
}

absl::StatusOr<K8sRollout> K8sUpgradeLifecycle::Start(
    LeaseContext& context, const tended::v1::StartK8sRolloutRequest& request,
    const std::string& started_by, const std::vector<GateOutcome>& fleet_gates,
    const DeprecatedApiReading* deprecated_apis) {
  const state::FleetState& state = context.state();
  ASSIGN_OR_RETURN(KubeVersion target, ParseTargetVersion(request.target_version()));
  auto policy = config_.leases.find(tended::v1::LEASE_KIND_K8S_UPGRADE);
  if (policy == config_.leases.end()) {
    return absl::FailedPreconditionError(
        "leases.k8s_upgrade is not in the configuration, so no Kubernetes rollout can run");
  }
  if (!policy->second.enabled && !request.dry_run()) {
    return absl::FailedPreconditionError(
        "leases.k8s_upgrade is disabled in the configuration; only a dry run is possible");
  }
  if (const K8sRollout* active = state.ActiveK8sRollout();
      active != nullptr && !request.dry_run()) {
    return absl::FailedPreconditionError(
        absl::StrCat("rollout ", active->id(), " to ", active->target_version(), " is ",
                     K8sRolloutStateName(active->state()), " at ", K8sStageName(active->stage()),
                     "; wait for it or cancel it first"));
  }
  ASSIGN_OR_RETURN(std::vector<K8sRolloutNode> nodes, OrderK8sRolloutNodes(state, policy->second));
  ASSIGN_OR_RETURN(KubeVersion running, RunningK8sVersion(state, nodes));
  RETURN_IF_ERROR(ValidateUpgrade(running, target, request.kind()));

  K8sRollout rollout;
  std::string id =
      absl::StrCat("k8s-", target.ToString(), "-",
                   absl::FormatTime("%Y%m%dt%H%M%S", context.now(), absl::UTCTimeZone()));
  for (int n = 2; state.FindK8sRollout(id) != nullptr && n < 1000; ++n) {
    id = absl::StrCat(id.substr(0, id.rfind('t') + 7), "-", n);
  }
  rollout.set_id(id);
  rollout.set_target_version(target.ToString());
  rollout.set_kind(request.kind());
  rollout.set_dry_run(request.dry_run());
  if (!request.stages().empty()) {
    rollout.add_stages(tended::v1::K8S_ROLLOUT_STAGE_PREFLIGHT);  // Always checked.
    for (int stage : request.stages()) {
      if (stage == tended::v1::K8S_ROLLOUT_STAGE_PREFLIGHT) continue;
      if (std::find(rollout.stages().begin(), rollout.stages().end(), stage) ==
          rollout.stages().end()) {
        rollout.add_stages(static_cast<tended::v1::K8sRolloutStage>(stage));
      }
    }
  }
  rollout.set_started_by(started_by);
  *rollout.mutable_create_time() = ToProtoTimestamp(context.now());
  rollout.set_running_version(running.ToString());
  SetStage(rollout, tended::v1::K8S_ROLLOUT_STAGE_PREFLIGHT, context.now());
  for (K8sRolloutNode& node : nodes) {
    if (!K8sStageSelected(rollout, K8sNodeStage(node.role())) &&
        K8sWorkFor(rollout, node, state).steps().empty()) {
      node.set_progress(tended::v1::K8S_NODE_PROGRESS_SKIPPED);
      node.set_message("no selected stage has work on this node");
    }
    *rollout.add_nodes() = std::move(node);
  }
  for (const auto& check : K8sPreflight(rollout, state, fleet_gates, target, deprecated_apis)) {
    *rollout.add_preflight() = check;
  }
  std::vector<tended::v1::PreflightCheck> checks(rollout.preflight().begin(),
                                                 rollout.preflight().end());
  const bool passed = AllChecksPass(checks);
  bool nothing_to_do = true;
  for (const K8sRolloutNode& node : rollout.nodes()) {
    nothing_to_do &= node.progress() == tended::v1::K8S_NODE_PROGRESS_SKIPPED ||
                     K8sNodeAtTarget(state, node.node_name(), target);
  }
  std::string event;
  if (request.dry_run()) {
    for (std::string& line : DescribeK8sPlan(rollout, state)) rollout.add_plan(std::move(line));
    rollout.set_state(passed ? tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED
                             : tended::v1::K8S_ROLLOUT_STATE_FAILED);
    rollout.set_message(passed ? absl::StrCat("dry run: preflight passes; ", rollout.plan_size(),
                                              " leases would run in this order; nothing changed")
                               : absl::StrCat("dry run: preflight fails: ",
                                              DescribeFailedChecks(checks), "; nothing changed"));
    *rollout.mutable_end_time() = ToProtoTimestamp(context.now());
    event = rollout.message();
  } else if (!passed) {
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_FAILED);
    rollout.set_message(
        absl::StrCat("preflight failed: ", DescribeFailedChecks(checks), "; nothing was changed"));
    *rollout.mutable_end_time() = ToProtoTimestamp(context.now());
    event = rollout.message();
  } else if (nothing_to_do) {
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
    rollout.set_message(
        absl::StrCat("every node already runs ", target.ToString(), "; nothing to do"));
    *rollout.mutable_end_time() = ToProtoTimestamp(context.now());
    event = rollout.message();
  } else {
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_RUNNING);
    rollout.set_message("preflight passed");
    event = absl::StrCat("started by ", started_by, ": ", running.ToString(), " -> ",
                         target.ToString(), ", preflight passed; order ", Summary(rollout));
  }
  Save(context, rollout, event);
  Log()->info("rollout {}: {}", rollout.id(), rollout.message());
  return rollout;
}

absl::StatusOr<K8sRollout> K8sUpgradeLifecycle::Cancel(LeaseContext& context,
                                                       const std::string& rollout_id,
                                                       const std::string& reason) {
  const K8sRollout* found = context.state().FindK8sRollout(rollout_id);
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no Kubernetes rollout ", rollout_id));
  }
  if (!state::IsK8sRolloutActive(*found)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollout ", rollout_id, " already ended: ", K8sRolloutStateName(found->state())));
  }
  if (found->state() == tended::v1::K8S_ROLLOUT_STATE_CANCELLING) return *found;
  K8sRollout rollout = *found;
  rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_CANCELLING);
  rollout.set_message(absl::StrCat("cancelling: ", reason));
  std::vector<Lease> give_back;
  for (K8sRolloutNode& node : *rollout.mutable_nodes()) {
    if (node.progress() == tended::v1::K8S_NODE_PROGRESS_WAITING) {
      context.txn().RemoveRequest(node.node_name(), tended::v1::LEASE_KIND_K8S_UPGRADE);
      node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
      node.set_message("not started: cancelled");
    } else if (node.progress() == tended::v1::K8S_NODE_PROGRESS_UPGRADING) {
      const Lease* lease = context.state().FindLease(node.lease_id());
      if (lease != nullptr && state::IsActive(*lease) && lease->k8s_steps_done().empty() &&
          lease->phase() == tended::v1::LEASE_PHASE_GRANTED) {
        node.set_message("cancelled before its first step; the lease is given back");
        give_back.push_back(*lease);
      } else if (lease != nullptr && state::IsActive(*lease)) {
        node.set_message(
            "cancel: this node finishes its lease's steps first (the next safe point)");
      }
    } else if (node.progress() == tended::v1::K8S_NODE_PROGRESS_SOAKING) {
      node.set_progress(tended::v1::K8S_NODE_PROGRESS_DONE);
      node.set_message("upgraded; its soak was cut short by the cancel");
    }
  }
  Save(context, rollout, absl::StrCat("cancel asked: ", reason));
  for (const Lease& lease : give_back) {
    const std::string why = absl::StrCat("the Kubernetes rollout was cancelled: ", reason);
    if (FlowOwns(context, lease)) {
      flow_->Abandon(context, lease, why, /*failed=*/false);
    } else {
      context.Release(lease, tended::v1::EVENT_TYPE_LEASE_RETURNED, why);
    }
  }
  return *context.state().FindK8sRollout(rollout_id);
}

void K8sUpgradeLifecycle::Advance(LeaseContext& context, const GateFacts& facts) {
  const K8sRollout* active = context.state().ActiveK8sRollout();
  if (active == nullptr) return;
  K8sRollout rollout = *active;
  const std::string before = rollout.SerializeAsString();
  const state::FleetState& state = context.state();
  const absl::Time now = context.now();
  absl::StatusOr<KubeVersion> target = ParseTargetVersion(rollout.target_version());
  auto policy = config_.leases.find(tended::v1::LEASE_KIND_K8S_UPGRADE);
  if (!target.ok() || policy == config_.leases.end()) {
    Fail(context, rollout, "",
         !target.ok() ? std::string(target.status().message())
                      : "leases.k8s_upgrade is no longer in the configuration");
    return;
  }
  const bool cancelling = rollout.state() == tended::v1::K8S_ROLLOUT_STATE_CANCELLING;
  std::vector<std::string> events;
  bool blocked = false;
  for (K8sRolloutNode& node : *rollout.mutable_nodes()) {
    const std::string& name = node.node_name();
    // Bounded: each pass either finishes the node, waits, or moves it one state on.
    for (int pass = 0; pass < 8 && !blocked && !Finished(node); ++pass) {
      switch (node.progress()) {
        case tended::v1::K8S_NODE_PROGRESS_FAILED:
          Fail(context, rollout, name, node.message());
          return;
        case tended::v1::K8S_NODE_PROGRESS_SOAKING:
          if (now >= FromProtoTimestamp(node.soak_until())) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_DONE);
            node.set_message("upgraded, verified and soaked");
            events.push_back(absl::StrCat(name, " soaked; done"));
          } else {
            blocked = true;
          }
          break;
        case tended::v1::K8S_NODE_PROGRESS_PENDING: {
          if (cancelling) {
            blocked = true;
            break;
          }
          if (node.leases_done() == 0 && K8sNodeAtTarget(state, name, *target)) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_SKIPPED);
            node.set_message(absl::StrCat("already at ", target->ToString()));
            events.push_back(absl::StrCat(name, " already runs ", target->ToString(), "; skipped"));
            break;
          }
          if (K8sWorkFor(rollout, node, state).steps().empty()) {
            if (static_cast<int>(node.leases_done()) + 1 < K8sLeaseCount(node.role())) {
              node.set_leases_done(node.leases_done() + 1);
            } else {
              node.set_progress(tended::v1::K8S_NODE_PROGRESS_DONE);
              node.set_message("nothing left in the selected stages");
            }
            break;
          }
          if (state.FindRequest(name, tended::v1::LEASE_KIND_K8S_UPGRADE) == nullptr &&
              state.ActiveLeaseForNode(name) == nullptr) {
            context.txn().PutRequest(RequestFor(rollout, node, now));
          }
          node.set_progress(tended::v1::K8S_NODE_PROGRESS_WAITING);
          node.set_message(absl::StrCat("waiting for k8s_upgrade lease ", node.leases_done() + 1,
                                        " (the gates decide when)"));
          events.push_back(
              absl::StrCat(name, " asks for k8s_upgrade lease ", node.leases_done() + 1));
          blocked = true;
          break;
        }
        case tended::v1::K8S_NODE_PROGRESS_WAITING: {
          const Lease* lease = state.ActiveLeaseForNode(name);
          if (lease != nullptr && lease->kind() == tended::v1::LEASE_KIND_K8S_UPGRADE &&
              lease->k8s_work().rollout_id() == rollout.id()) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_UPGRADING);
            node.set_lease_id(lease->id());
            break;
          }
          if (lease == nullptr &&
              state.FindRequest(name, tended::v1::LEASE_KIND_K8S_UPGRADE) == nullptr) {
            context.txn().PutRequest(RequestFor(rollout, node, now));  // Someone removed it.
          }
          blocked = true;
          break;
        }
        case tended::v1::K8S_NODE_PROGRESS_UPGRADING: {
          const Lease* lease = state.FindLease(node.lease_id());
          if (lease == nullptr) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_FAILED);
            node.set_message(absl::StrCat("lease ", node.lease_id(), " is gone from the state"));
            break;
          }
          if (state::IsActive(*lease)) {
            if (!lease->status_message().empty()) node.set_message(lease->status_message());
            if (const tended::v1::K8sStep* next = NextK8sStep(*lease); next != nullptr) {
              SetStage(rollout, K8sStepStage(next->kind(), node.role()), now);
            }
            blocked = true;
            break;
          }
          const bool all_done = NextK8sStep(*lease) == nullptr;
          node.clear_lease_id();
          if (!all_done) {
            if (!cancelling) node.set_returns(node.returns() + 1);
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
            node.set_message(absl::StrCat(
                "lease ", lease->id(), " came back before its steps: ", lease->status_message()));
            events.push_back(absl::StrCat(name, ": ", node.message()));
            if (node.returns() >= kK8sMaxReturns) {
              node.set_progress(tended::v1::K8S_NODE_PROGRESS_FAILED);
              node.set_message(
                  absl::StrCat("its lease came back ", node.returns(),
                               " times before its steps; last: ", lease->status_message()));
            }
            break;
          }
          node.set_leases_done(node.leases_done() + 1);
          events.push_back(absl::StrCat(name, ": lease ", lease->id(), " verified and released"));
          if (static_cast<int>(node.leases_done()) < K8sLeaseCount(node.role()) &&
              !K8sWorkFor(rollout, node, state).steps().empty()) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
            break;
          }
          if (node.role() == tended::v1::K8S_NODE_ROLE_WORKER &&
              policy->second.soak > absl::ZeroDuration() && !cancelling) {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_SOAKING);
            *node.mutable_soak_until() = ToProtoTimestamp(now + policy->second.soak);
            node.set_message(absl::StrCat("upgraded and verified; soaking until ",
                                          FormatUtcTime(now + policy->second.soak)));
          } else {
            node.set_progress(tended::v1::K8S_NODE_PROGRESS_DONE);
            node.set_message("upgraded and verified");
          }
          break;
        }
        default:
          node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
          break;
      }
    }
    if (node.progress() == tended::v1::K8S_NODE_PROGRESS_FAILED) {
      Fail(context, rollout, name, absl::StrCat(name, ": ", node.message()));
      return;
    }
    if (blocked) {
      if (node.progress() != tended::v1::K8S_NODE_PROGRESS_UPGRADING) {
        SetStage(rollout, K8sNodeStage(node.role()), now);
      }
      break;
    }
  }
  bool in_flight = false;
  for (const K8sRolloutNode& node : rollout.nodes()) {
    in_flight |= node.progress() == tended::v1::K8S_NODE_PROGRESS_UPGRADING;
  }
  if (cancelling && !in_flight) {
    std::vector<std::string> done;
    std::vector<std::string> not_started;
    for (K8sRolloutNode& node : *rollout.mutable_nodes()) {
      if (node.progress() == tended::v1::K8S_NODE_PROGRESS_WAITING) {
        context.txn().RemoveRequest(node.node_name(), tended::v1::LEASE_KIND_K8S_UPGRADE);
        node.set_progress(tended::v1::K8S_NODE_PROGRESS_PENDING);
      }
      if (Finished(node)) {
        done.push_back(node.node_name());
      } else {
        not_started.push_back(absl::StrCat(
            node.node_name(), node.leases_done() > 0 ? " (kubeadm done, kubelet not)" : ""));
        if (node.message().empty() || node.progress() == tended::v1::K8S_NODE_PROGRESS_PENDING) {
          node.set_message("not upgraded: the rollout was cancelled");
        }
      }
    }
    rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_CANCELLED);
    *rollout.mutable_end_time() = ToProtoTimestamp(now);
    rollout.set_message(absl::StrCat(
        "cancelled at a safe point; at ", target->ToString(), ": ",
        done.empty() ? "none" : absl::StrJoin(done, ", "),
        "; not upgraded: ", not_started.empty() ? "none" : absl::StrJoin(not_started, ", ")));
    events.push_back(rollout.message());
  } else if (!cancelling && Current(rollout) == nullptr) {
    if (K8sStageSelected(rollout, tended::v1::K8S_ROLLOUT_STAGE_POSTFLIGHT)) {
      SetStage(rollout, tended::v1::K8S_ROLLOUT_STAGE_POSTFLIGHT, now);
      std::vector<tended::v1::PreflightCheck> checks =
          K8sPostflight(rollout, state, facts, config_, now);
      rollout.clear_postflight();
      for (const auto& check : checks) *rollout.add_postflight() = check;
      if (AllChecksPass(checks)) {
        rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
        rollout.set_message(
            absl::StrCat("every node at ", target->ToString(), "; postflight passed"));
        *rollout.mutable_end_time() = ToProtoTimestamp(now);
        events.push_back(rollout.message());
      } else if (now - FromProtoTimestamp(rollout.stage_start_time()) >=
                 policy->second.postflight_wait) {
        Fail(context, rollout, "",
             absl::StrCat("postflight failed after ",
                          FormatDurationForPeople(policy->second.postflight_wait), ": ",
                          DescribeFailedChecks(checks)));
        return;
      } else {
        rollout.set_message(absl::StrCat("postflight waits: ", DescribeFailedChecks(checks)));
      }
    } else {
      rollout.set_state(tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED);
      rollout.set_message("the selected stages are done");
      *rollout.mutable_end_time() = ToProtoTimestamp(now);
      events.push_back(rollout.message());
    }
  } else if (const K8sRolloutNode* current = Current(rollout); current != nullptr && !cancelling) {
    rollout.set_message(absl::StrCat(current->node_name(), " ",
                                     K8sNodeProgressName(current->progress()), ": ",
                                     current->message()));
  }
  if (rollout.SerializeAsString() == before) return;
  Save(context, rollout, absl::StrJoin(events, "; "));
}

}  // namespace tended::coordinator
