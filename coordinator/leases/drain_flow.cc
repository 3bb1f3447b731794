#include "coordinator/leases/drain_flow.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/gates/core_gates.h"
#include "coordinator/kube/cluster_facts.h"
#include "coordinator/leases/drain_flow_internal.h"

namespace tended::coordinator {
namespace {

using namespace drain_flow_internal;  // NOLINT: the flow's own helpers.

using tended::state::v1::NodeDisruption;
using tended::v1::Lease;

constexpr int kMaxStepsPerPass = 8;

std::shared_ptr<spdlog::logger> Log() { return Logger("kube-flow"); }

class StopAwareClock final : public Clock {
 public:
  StopAwareClock(const Clock& clock, const std::atomic<bool>& stop) : clock_(clock), stop_(stop) {}
  absl::Time Now() const override { return stop_.load() ? absl::InfiniteFuture() : clock_.Now(); }

 private:
  const Clock& clock_;
  const std::atomic<bool>& stop_;
};

}  // namespace

DrainFlow::DrainFlow(const CoordinatorConfig& config, DrainFlowDependencies dependencies,
                     DrainFlowHooks hooks)
    : config_(config),
      deps_(std::move(dependencies)),
      hooks_(std::move(hooks)),
      clock_(deps_.clock != nullptr ? *deps_.clock : Clock::Real()),
      drain_clock_(std::make_unique<StopAwareClock>(clock_, stop_requested_)) {
  if (deps_.client != nullptr) {
    kube::NodeMarkOptions marks;
    marks.annotations = config_.kubernetes.node_marks.annotations;
    marks.labels = config_.kubernetes.node_marks.labels;
    marks.kured_annotations = config_.kubernetes.node_marks.kured_compatible;
    marker_ = std::make_unique<kube::NodeMarker>(*deps_.client, clock_, std::move(marks));
  }
  absl::MutexLock lock(&mutex_);
  gate_facts_.source = deps_.source;
  if (deps_.client == nullptr) {
    gate_facts_.status = deps_.unusable;
    gate_facts_.checked_at = clock_.Now();
  }
}

bool DrainsBeforeDisruption(const Lease& lease) {
  return lease.kind() == tended::v1::LEASE_KIND_REBOOT ||
         (lease.kind() == tended::v1::LEASE_KIND_K8S_UPGRADE && lease.k8s_work().drain());
}

DrainFlow::~DrainFlow() { Stop(); }

void DrainFlow::OnGranted(LeaseContext& context, Lease& lease) {
  if (!DrainsBeforeDisruption(lease)) return;
  if (context.state().FindDisruption(lease.id()) != nullptr) return;
  lease.set_preparing(true);
  context.txn().PutLease(lease);
  NodeDisruption record;
  record.set_lease_id(lease.id());
  record.set_node_name(lease.node_name());
  record.set_step(NodeDisruption::STEP_PENDING);
  *record.mutable_step_time() = ToProtoTimestamp(context.now());
  *record.mutable_prepare_start_time() = ToProtoTimestamp(context.now());
  context.txn().PutDisruption(record);
  context.txn().AddEvent(tended::v1::EVENT_TYPE_KUBERNETES_STEP, &lease, lease.node_name(),
                         lease.kind() == tended::v1::LEASE_KIND_REBOOT
                             ? "the node is cordoned and drained before it may reboot"
                             : "the node is cordoned and drained before its kubelet steps");
  WakeAfter(context);
}

void DrainFlow::OnAdopted(LeaseContext& context, Lease& lease) {
  if (!DrainsBeforeDisruption(lease)) return;
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
    OnGranted(context, lease);
    return;
  }
  NodeDisruption record;
  record.set_lease_id(lease.id());
  record.set_node_name(lease.node_name());
  record.set_step(NodeDisruption::STEP_DRAINED);
  // Who cordoned the node was lost with the state: never uncordon a cordon that may be an
  // operator's.
  record.set_was_cordoned_before(true);
  record.set_message(
      "adopted after the coordinator lost its state; whether tended cordoned the node is not "
      "known, so its cordon is left as it is");
  *record.mutable_step_time() = ToProtoTimestamp(context.now());
  context.txn().PutDisruption(record);
  WakeAfter(context);
}

absl::Status DrainFlow::MayDisrupt(const state::FleetState& state, const Lease& lease) const {
  if (!DrainsBeforeDisruption(lease)) return absl::OkStatus();
  const NodeDisruption* record = state.FindDisruption(lease.id());
  const bool drained = record != nullptr && record->step() == NodeDisruption::STEP_DRAINED;
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && !drained) {
    return absl::UnavailableError(
        absl::StrCat("node ", lease.node_name(), " is not drained yet (",
                     record != nullptr ? StepName(record->step()) : "waiting to cordon",
                     "): the disruption waits until the coordinator has drained it"));
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING && record != nullptr && !drained) {
    return absl::UnavailableError(absl::StrCat("node ", lease.node_name(), " is ",
                                               StepName(record->step()),
                                               "; no disruption until that is done"));
  }
  return absl::OkStatus();
}

bool DrainFlow::Owns(const state::FleetState& state, const Lease& lease) const {
  if (!DrainsBeforeDisruption(lease)) return false;
  return lease.preparing() || state.FindDisruption(lease.id()) != nullptr;
}

void DrainFlow::Abandon(LeaseContext& context, const Lease& lease, const std::string& reason,
                        bool failed) {
  const NodeDisruption* stored = context.state().FindDisruption(lease.id());
  if (stored == nullptr || (stored->step() == NodeDisruption::STEP_PENDING &&
                            lease.phase() == tended::v1::LEASE_PHASE_GRANTED)) {
    // Nothing was done on the node yet: no undo (Undo cannot tell, the step it sees is
    // UNDOING), so no uncordon and no clearing of marks on a node we never touched.
    if (stored != nullptr) context.txn().RemoveDisruption(lease.id());
    Lease plain = lease;
    plain.set_preparing(false);
    context.Release(plain, tended::v1::EVENT_TYPE_LEASE_RETURNED, reason, failed);
    return;
  }
  if (stored->step() == NodeDisruption::STEP_UNDOING ||
      stored->step() == NodeDisruption::STEP_UNCORDONED) {
    return;
  }
  NodeDisruption record = *stored;
  record.set_cordoned_by_us(MustUncordon(record));
  record.set_step(NodeDisruption::STEP_UNDOING);
  record.set_message(reason);
  record.set_undo_is_failure(failed);
  *record.mutable_step_time() = ToProtoTimestamp(context.now());
  context.txn().PutDisruption(record);
  context.txn().AddEvent(tended::v1::EVENT_TYPE_KUBERNETES_STEP, &lease, lease.node_name(),
                         absl::StrCat("giving the lease back: ", reason));
  WakeAfter(context);
}

void DrainFlow::ReturnUnrebooted(LeaseContext& context, const Lease& lease,
                                 const std::string& reason, bool failed) {
  Abandon(context, lease, reason, failed);
  if (const NodeDisruption* stored = context.state().FindDisruption(lease.id())) {
    NodeDisruption record = *stored;
    record.set_returned_unrebooted(true);
    context.txn().PutDisruption(record);
  }
}

void DrainFlow::WakeAfter(LeaseContext& context) {
  context.txn().AfterDurable([this] { Wake(); });
}

void DrainFlow::Wake() {
  absl::MutexLock lock(&mutex_);
  woken_ = true;
}

KubeGateFacts DrainFlow::GateFactsSnapshot() const {
  absl::MutexLock lock(&mutex_);
  return gate_facts_;
}

void DrainFlow::Start() {
  if (worker_.joinable()) return;
  worker_ = std::thread([this] {
    for (;;) {
      {
        absl::MutexLock lock(&mutex_);
        if (stopping_) return;
        woken_ = false;
      }
      RunOnce();
      absl::MutexLock lock(&mutex_);
      auto due = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) { return woken_ || stopping_; };
      mutex_.AwaitWithTimeout(absl::Condition(&due), config_.kubernetes.poll_interval);
    }
  });
}

void DrainFlow::Stop() {
  stop_requested_.store(true);
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

void DrainFlow::RefreshFacts() {
  if (deps_.client == nullptr) return;
  kube::KubeFactsOptions options;
  options.node_label_selector = config_.kubernetes.node_selector;
  options.cni_daemonset_namespace = config_.kubernetes.cni_daemonset_namespace;
  options.cni_daemonset_name = config_.kubernetes.cni_daemonset_name;
  options.collect_pod_readiness = config_.kubernetes.min_pod_ready_ratio > 0;
  options.blocking_pod_selectors = config_.kubernetes.blocking_pod_selectors;
  absl::StatusOr<kube::KubeFacts> facts = kube::CollectKubeFacts(*deps_.client, options, clock_);
  absl::MutexLock lock(&mutex_);
  gate_facts_.checked_at = clock_.Now();
  gate_facts_.status = facts.status();
  if (facts.ok()) {
    gate_facts_.facts = std::make_shared<const kube::KubeFacts>(*std::move(facts));
  } else {
    Log()->warn("reading Kubernetes facts: {}", gate_facts_.status.ToString());
  }
}

void DrainFlow::AdoptUnprepared() {
  bool any = false;
  hooks_.read([&](const state::FleetState& state) {
    for (const Lease* lease : state.ActiveLeases()) {
      if (DrainsBeforeDisruption(*lease) &&
          lease->phase() == tended::v1::LEASE_PHASE_GRANTED &&
          state.FindDisruption(lease->id()) == nullptr) {
        any = true;
      }
    }
  });
  if (!any) return;
  absl::Status adopted = hooks_.change([&](LeaseContext& context) {
    for (const Lease* active : context.state().ActiveLeases()) {
      if (!DrainsBeforeDisruption(*active) ||
          active->phase() != tended::v1::LEASE_PHASE_GRANTED ||
          context.state().FindDisruption(active->id()) != nullptr) {
        continue;
      }
      Lease lease = *active;
      Log()->warn("lease {} on {} has no drain recorded; draining before the reboot", lease.id(),
                  lease.node_name());
      OnGranted(context, lease);
      context.Send(lease, /*granted=*/true);
    }
    return absl::OkStatus();
  });
  if (!adopted.ok()) Log()->error("preparing granted leases: {}", adopted.ToString());
}

void DrainFlow::RunOnce() {
  absl::MutexLock run(&run_mutex_);
  RefreshFacts();
  AdoptUnprepared();
  std::vector<Snapshot> snapshots;
  hooks_.read([&](const state::FleetState& state) {
    for (const auto& [id, record] : state.disruptions()) {
      Snapshot snapshot;
      snapshot.record = record;
      if (const Lease* lease = state.FindLease(id); lease != nullptr) snapshot.lease = *lease;
      if (const state::NodeEntry* node = state.FindNode(record.node_name()); node != nullptr) {
        snapshot.agent_reported = node->reported_since_start();
        snapshot.agent_boot_id = node->facts.boot_id();
        snapshot.agent_reboot_required = node->facts.reboot_required();
        if (node->facts.has_k8s()) *snapshot.agent_k8s.mutable_k8s() = node->facts.k8s();
      }
      snapshots.push_back(std::move(snapshot));
    }
  });
  if (deps_.client == nullptr) return;
  for (Snapshot& snapshot : snapshots) {
    if (stop_requested_.load()) return;
    Advance(std::move(snapshot));
  }
}

void DrainFlow::Advance(Snapshot snapshot) {
  if (!snapshot.lease.has_value() || !state::IsActive(*snapshot.lease)) {
    Cleanup(snapshot);
    return;
  }
  NodeDisruption& record = snapshot.record;
  const bool resumed_cordon = record.step() == NodeDisruption::STEP_CORDONING;
  for (int i = 0; i < kMaxStepsPerPass; ++i) {
    bool moved = false;
    switch (record.step()) {
      case NodeDisruption::STEP_PENDING:
        moved = CheckGates(snapshot) && StartCordon(snapshot);
        break;
      case NodeDisruption::STEP_CORDONING:
        moved = Cordon(snapshot, resumed_cordon);
        break;
      case NodeDisruption::STEP_DRAINING:
        moved = Drain(snapshot);
        break;
      case NodeDisruption::STEP_DRAINED:
        moved = Verify(snapshot);
        break;
      case NodeDisruption::STEP_UNCORDONED:
        Complete(snapshot);
        return;
      case NodeDisruption::STEP_UNDOING:
        Undo(snapshot);
        return;
      default:
        Log()->error("lease {}: unknown step {}", record.lease_id(),
                     static_cast<int>(record.step()));
        return;
    }
    if (!moved) return;
  }
}

absl::Time DrainFlow::PreparationDeadline(const Snapshot& snapshot) const {
  absl::Time start = FromProtoTimestamp(snapshot.lease->grant_time());
  if (snapshot.record.has_prepare_start_time()) {
    start = FromProtoTimestamp(snapshot.record.prepare_start_time());
  }
  return start + config_.kubernetes.drain.timeout;
}

kube::Drainer DrainFlow::MakeDrainer(absl::Duration timeout) const {
  kube::DrainOptions options = DrainOptionsFor(config_.kubernetes);
  options.timeout = timeout;
  return kube::Drainer(*deps_.client, *drain_clock_, *deps_.sleeper, options);
}

bool DrainFlow::SaveStep(Snapshot& snapshot, NodeDisruption::Step next, const std::string& message,
                         const std::string& event) {
  const NodeDisruption::Step expected = snapshot.record.step();
  NodeDisruption updated = snapshot.record;
  updated.set_step(next);
  updated.set_message(message);
  *updated.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  absl::Status saved = hooks_.change([&](LeaseContext& context) {
    const NodeDisruption* stored = context.state().FindDisruption(updated.lease_id());
    const Lease* lease = context.state().FindLease(updated.lease_id());
    if (stored == nullptr || lease == nullptr || !state::IsActive(*lease)) {
      return absl::FailedPreconditionError(
          absl::StrCat("lease ", updated.lease_id(), " is no longer active"));
    }
    if (stored->step() != expected) {
      return absl::AbortedError(absl::StrCat("lease ", updated.lease_id(), " moved on to ",
                                             StepName(stored->step()), " meanwhile"));
    }
    context.txn().PutDisruption(updated);
    // What `tendedctl leases` shows while the coordinator works on the node.
    Lease shown = *lease;
    shown.set_status_message(
        absl::StrCat(StepName(next), message.empty() ? "" : ": ", message));
    context.txn().PutLease(shown);
    if (!event.empty()) {
      context.txn().AddEvent(tended::v1::EVENT_TYPE_KUBERNETES_STEP, &shown,
                             updated.node_name(), event);
    }
    return absl::OkStatus();
  });
  if (!saved.ok()) {
    Log()->warn("lease {}: not recording {}: {}", updated.lease_id(), StepName(next),
                saved.ToString());
    Wake();
    return false;
  }
  snapshot.record = std::move(updated);
  return true;
}

void DrainFlow::NodeEvent(const std::string& node, const std::string& reason,
                          const std::string& message, bool warning) {
  if (marker_ == nullptr) return;
  if (absl::Status sent = marker_->Event(node, reason, message, warning); !sent.ok()) {
    Log()->warn("cannot post the Kubernetes event {} on {}: {}", reason, node, sent.ToString());
  }
}

bool DrainFlow::CheckGates(Snapshot& snapshot) {
  absl::Status gates = hooks_.recheck(snapshot.record.lease_id());
  if (gates.ok()) return true;
  Log()->info("lease {}: not cordoning {} yet: {}", snapshot.record.lease_id(),
              snapshot.record.node_name(), gates.message());
  return false;
}

bool DrainFlow::StartCordon(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const std::string node = record.node_name();
  absl::StatusOr<kube::NodeInfo> info = deps_.client->GetNode(node);
  if (!info.ok()) {
    if (IsTransient(info.status()) && clock_.Now() < PreparationDeadline(snapshot)) {
      Log()->warn("reading node {} before cordoning: {}; trying again", node,
                  info.status().ToString());
      return false;
    }
    record.set_undo_is_failure(true);
    std::string why =
        absl::StrCat("cannot read node ", node, " in Kubernetes: ", info.status().message());
    return SaveStep(snapshot, NodeDisruption::STEP_UNDOING, why, why);
  }
  record.set_was_cordoned_before(info->unschedulable);
  record.set_kube_boot_id_before(info->boot_id);
  return SaveStep(snapshot, NodeDisruption::STEP_CORDONING, "", "");
}

bool DrainFlow::Cordon(Snapshot& snapshot, bool resumed) {
  NodeDisruption& record = snapshot.record;
  const std::string node = record.node_name();
  kube::Drainer drainer = MakeDrainer(config_.kubernetes.drain.timeout);
  absl::Status blocking = drainer.CheckBlockingPods(node);
  absl::StatusOr<kube::CordonResult> cordon =
      blocking.ok() ? drainer.Cordon(node) : absl::StatusOr<kube::CordonResult>(blocking);
  if (!cordon.ok()) {
    if (IsTransient(cordon.status()) && clock_.Now() < PreparationDeadline(snapshot)) {
      Log()->warn("cordoning {}: {}; trying again", node, cordon.status().ToString());
      return false;
    }
    record.set_cordoned_by_us(MustUncordon(record));
    record.set_undo_is_failure(true);
    std::string why = absl::StrCat("cannot cordon node ", node, ": ", cordon.status().message());
    return SaveStep(snapshot, NodeDisruption::STEP_UNDOING, why, why);
  }
  const bool ours = !record.was_cordoned_before() && (resumed || !cordon->was_already_cordoned);
  record.set_cordoned_by_us(ours);
  if (!SaveStep(snapshot, NodeDisruption::STEP_DRAINING, "",
                ours ? "cordoned; draining"
                     : "already cordoned by someone else (it stays cordoned afterwards); "
                       "draining")) {
    return false;
  }
  if (absl::Status marked = marker_->Mark(node, absl::StrCat("REBOOT lease ", record.lease_id()));
      !marked.ok()) {
    Log()->warn("cannot mark node {}: {}", node, marked.ToString());
  }
  NodeEvent(node, "TendedCordon",
            ours ? absl::StrCat("Cordoned for REBOOT lease ", record.lease_id())
                 : absl::StrCat("Already cordoned; draining for REBOOT lease ", record.lease_id()));
  return true;
}

bool DrainFlow::Drain(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const std::string node = record.node_name();
  const absl::Time deadline = PreparationDeadline(snapshot);
  const absl::Duration timeout =
      std::min(config_.kubernetes.drain.timeout, deadline - clock_.Now());
  absl::StatusOr<kube::DrainReport> report = absl::DeadlineExceededError(
      absl::StrCat("drain of node ", node, " did not finish within ",
                   absl::FormatDuration(config_.kubernetes.drain.timeout)));
  if (timeout > absl::ZeroDuration()) {
    NodeEvent(node, "TendedDrain", absl::StrCat("Draining for REBOOT lease ", record.lease_id()));
    report = MakeDrainer(timeout).Drain(node);
  }
  if (stop_requested_.load()) return false;  // Resumed after the restart.
  if (!report.ok()) {
    if (IsTransient(report.status()) && clock_.Now() < deadline) {
      Log()->warn("draining {}: {}; trying again", node, report.status().ToString());
      return false;
    }
    record.set_undo_is_failure(true);
    const std::string why = absl::StrCat("drain failed: ", report.status().message());
    NodeEvent(node, "TendedDrainFailed", why, /*warning=*/true);
    return SaveStep(snapshot, NodeDisruption::STEP_UNDOING, why, why);
  }
  // Drained: clear the lease's preparing flag in the same change, then tell the holder.
  std::string what = "the node may reboot";
  if (snapshot.lease.has_value() && snapshot.lease->kind() == tended::v1::LEASE_KIND_K8S_UPGRADE) {
    what = "the node's Kubernetes steps may run";
  }
  const std::string message =
      absl::StrCat("drained (", report->evicted.size(), " evicted, ", report->already_gone.size(),
                   " already gone, ", report->skipped.size(), " skipped); ", what);
  NodeDisruption drained = record;
  drained.set_step(NodeDisruption::STEP_DRAINED);
  *drained.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  absl::Status saved = hooks_.change([&](LeaseContext& context) {
    const NodeDisruption* stored = context.state().FindDisruption(record.lease_id());
    const Lease* active = context.state().FindLease(record.lease_id());
    if (stored == nullptr || active == nullptr || !state::IsActive(*active) ||
        stored->step() != NodeDisruption::STEP_DRAINING) {
      return absl::AbortedError("the lease moved on while the node drained");
    }
    context.txn().PutDisruption(drained);
    Lease lease = *active;
    lease.set_preparing(false);
    lease.set_status_message(lease.kind() == tended::v1::LEASE_KIND_K8S_UPGRADE
                                 ? "drained; waiting for the Kubernetes steps"
                                 : "drained; waiting for the reboot");
    context.txn().PutLease(lease);
    context.txn().AddEvent(tended::v1::EVENT_TYPE_KUBERNETES_STEP, &lease, node, message);
    context.Send(lease, /*granted=*/true);
    return absl::OkStatus();
  });
  if (!saved.ok()) {
    Log()->warn("lease {}: not recording the drain: {}", record.lease_id(), saved.ToString());
    Wake();
    return false;
  }
  snapshot.record = drained;
  Log()->info("node {} drained for {}; {}", node, record.lease_id(), what);
  NodeEvent(node, "TendedDrained", absl::StrCat("Drained; ", what));
  return true;
}

}  // namespace tended::coordinator
