#include "coordinator/disruption_flow.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/gates.h"

namespace tended::coordinator {
namespace {

using tended::state::v1::CoordinatorState;
using tended::state::v1::NodeDisruption;
using tended::v1::Lease;

constexpr int kMaxStepsPerPass = 8;

std::shared_ptr<spdlog::logger> Log() { return Logger("kube-flow"); }

NodeDisruption* FindRecord(CoordinatorState& state, absl::string_view lease_id) {
  for (NodeDisruption& record : *state.mutable_disruptions()) {
    if (record.lease_id() == lease_id) return &record;
  }
  return nullptr;
}

const NodeDisruption* FindRecord(const CoordinatorState& state, absl::string_view lease_id) {
  for (const NodeDisruption& record : state.disruptions()) {
    if (record.lease_id() == lease_id) return &record;
  }
  return nullptr;
}

void RemoveRecord(CoordinatorState& state, absl::string_view lease_id) {
  auto* records = state.mutable_disruptions();
  for (int i = 0; i < records->size(); ++i) {
    if (records->Get(i).lease_id() == lease_id) {
      records->DeleteSubrange(i, 1);
      return;
    }
  }
}

Lease* FindLeaseIn(CoordinatorState& state, absl::string_view lease_id) {
  for (Lease& lease : *state.mutable_leases()) {
    if (lease.id() == lease_id) return &lease;
  }
  return nullptr;
}

absl::string_view StepName(NodeDisruption::Step step) {
  switch (step) {
    case NodeDisruption::STEP_PENDING:
      return "waiting to cordon";
    case NodeDisruption::STEP_CORDONING:
      return "cordoning";
    case NodeDisruption::STEP_DRAINING:
      return "draining";
    case NodeDisruption::STEP_DRAINED:
      return "drained";
    case NodeDisruption::STEP_UNCORDONED:
      return "uncordoned";
    case NodeDisruption::STEP_UNDOING:
      return "undoing the drain";
    default:
      return "unknown";
  }
}

// Whether undoing must uncordon: our own cordon, or one we may have applied before a
// restart (the node was schedulable when we looked).
bool MustUncordon(const NodeDisruption& record) {
  if (record.cordoned_by_us()) return true;
  return record.step() == NodeDisruption::STEP_CORDONING && !record.was_cordoned_before();
}

// A failure that is worth trying again before the preparation deadline.
bool IsTransient(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsAborted(status) ||
         absl::IsUnauthenticated(status) || absl::IsInternal(status);
}

kube::DrainOptions DrainOptionsFor(const KubernetesConfig& config) {
  kube::DrainOptions options;
  options.timeout = config.drain.timeout;
  options.grace_period = config.drain.grace_period;
  options.delete_emptydir_data = config.drain.delete_emptydir_data;
  options.force_unmanaged = config.drain.force_unmanaged;
  options.skip_wait_for_delete_timeout = config.drain.skip_wait_for_delete_timeout;
  options.blocking_pod_selectors = config.blocking_pod_selectors;
  return options;
}

class StopAwareClock final : public Clock {
 public:
  StopAwareClock(const Clock& clock, const std::atomic<bool>& stop) : clock_(clock), stop_(stop) {}
  absl::Time Now() const override { return stop_.load() ? absl::InfiniteFuture() : clock_.Now(); }

 private:
  const Clock& clock_;
  const std::atomic<bool>& stop_;
};

}  // namespace

DisruptionFlow::DisruptionFlow(const CoordinatorConfig& config,
                               DisruptionFlowDependencies dependencies, DisruptionFlowHooks hooks)
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

DisruptionFlow::~DisruptionFlow() { Stop(); }

absl::StatusOr<Lease> DisruptionFlow::OnGranted(LeaseManager& leases, const Lease& lease) {
  if (lease.kind() != tended::v1::LEASE_KIND_REBOOT) return lease;
  const absl::Time now = clock_.Now();
  absl::Status saved =
      leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender& append) {
        Lease* stored = FindLeaseIn(state, lease.id());
        if (stored == nullptr || !IsActive(*stored)) {
          return absl::FailedPreconditionError(absl::StrCat("no active lease ", lease.id()));
        }
        if (FindRecord(state, lease.id()) != nullptr) return absl::OkStatus();
        stored->set_preparing(true);
        NodeDisruption* record = state.add_disruptions();
        record->set_lease_id(lease.id());
        record->set_node_name(lease.node_name());
        record->set_step(NodeDisruption::STEP_PENDING);
        *record->mutable_step_time() = ToProtoTimestamp(now);
        *record->mutable_prepare_start_time() = ToProtoTimestamp(now);
        append(tended::v1::EVENT_TYPE_KUBERNETES_STEP, stored, lease.node_name(),
               "the node is cordoned and drained before it may reboot");
        return absl::OkStatus();
      });
  if (!saved.ok()) return saved;
  Wake();
  const Lease* updated = leases.FindLease(lease.id());
  return updated != nullptr ? *updated : lease;
}

void DisruptionFlow::AdoptUnprepared(LeaseManager& leases) {
  for (const Lease& lease : leases.ActiveLeases()) {
    if (lease.kind() != tended::v1::LEASE_KIND_REBOOT ||
        lease.phase() != tended::v1::LEASE_PHASE_GRANTED ||
        FindRecord(leases.state(), lease.id()) != nullptr) {
      continue;
    }
    Log()->warn("lease {} on {} has no drain recorded; draining before the reboot", lease.id(),
                lease.node_name());
    if (auto adopted = OnGranted(leases, lease); !adopted.ok()) {
      Log()->error("preparing {}: {}", lease.id(), adopted.status().ToString());
    } else {
      hooks_.send_lease(*adopted, /*granted=*/true);
    }
  }
}

absl::Status DisruptionFlow::MayDisrupt(const LeaseManager& leases, const Lease& lease) const {
  if (lease.kind() != tended::v1::LEASE_KIND_REBOOT) return absl::OkStatus();
  const NodeDisruption* record = FindRecord(leases.state(), lease.id());
  const bool drained = record != nullptr && record->step() == NodeDisruption::STEP_DRAINED;
  if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && !drained) {
    return absl::UnavailableError(
        absl::StrCat("node ", lease.node_name(), " is not drained yet (",
                     record != nullptr ? StepName(record->step()) : "waiting to cordon",
                     "): the reboot waits until the coordinator has drained it"));
  }
  if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING && record != nullptr && !drained) {
    return absl::UnavailableError(absl::StrCat("node ", lease.node_name(), " is ",
                                               StepName(record->step()),
                                               "; no disruption until that is done"));
  }
  return absl::OkStatus();
}

bool DisruptionFlow::Owns(const LeaseManager& leases, const Lease& lease) const {
  if (lease.kind() != tended::v1::LEASE_KIND_REBOOT) return false;
  return lease.preparing() || FindRecord(leases.state(), lease.id()) != nullptr;
}

void DisruptionFlow::Abandon(const std::string& lease_id, const std::string& reason) {
  absl::MutexLock lock(&mutex_);
  abandoned_[lease_id] = reason;
  woken_ = true;
}

void DisruptionFlow::Wake() {
  absl::MutexLock lock(&mutex_);
  woken_ = true;
}

KubeGateFacts DisruptionFlow::GateFactsSnapshot() const {
  absl::MutexLock lock(&mutex_);
  return gate_facts_;
}

std::optional<std::string> DisruptionFlow::TakeAbandon(const std::string& lease_id) {
  absl::MutexLock lock(&mutex_);
  auto it = abandoned_.find(lease_id);
  if (it == abandoned_.end()) return std::nullopt;
  std::string reason = std::move(it->second);
  abandoned_.erase(it);
  return reason;
}

void DisruptionFlow::Start() {
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

void DisruptionFlow::Stop() {
  stop_requested_.store(true);
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

void DisruptionFlow::RefreshFacts() {
  if (deps_.client == nullptr) return;
  kube::KubeFactsOptions options;
  options.node_label_selector = config_.kubernetes.node_selector;
  options.cni_daemonset_namespace = config_.kubernetes.cni_daemonset_namespace;
  options.cni_daemonset_name = config_.kubernetes.cni_daemonset_name;
  options.collect_pod_readiness = config_.kubernetes.min_pod_ready_ratio > 0;
  absl::StatusOr<kube::KubeFacts> facts = kube::CollectKubeFacts(*deps_.client, options, clock_);
  absl::MutexLock lock(&mutex_);
  gate_facts_.checked_at = clock_.Now();
  gate_facts_.status = facts.status();
  if (facts.ok()) {
    gate_facts_.facts = *std::move(facts);
  } else {
    Log()->warn("reading Kubernetes facts: {}", gate_facts_.status.ToString());
  }
}

void DisruptionFlow::RunOnce() {
  absl::MutexLock run(&run_mutex_);
  RefreshFacts();
  std::vector<Snapshot> snapshots;
  hooks_.with_leases([&](LeaseManager& leases) {
    AdoptUnprepared(leases);
    for (const NodeDisruption& record : leases.state().disruptions()) {
      Snapshot snapshot;
      snapshot.record = record;
      if (const Lease* lease = leases.FindLease(record.lease_id()); lease != nullptr) {
        snapshot.lease = *lease;
      }
      if (const auto* node = leases.FindNode(record.node_name()); node != nullptr) {
        snapshot.agent_boot_id = node->boot_id();
        snapshot.agent_reboot_required = node->last_facts().reboot_required();
      }
      snapshots.push_back(std::move(snapshot));
    }
  });
  if (deps_.client != nullptr) {
    for (Snapshot& snapshot : snapshots) Advance(std::move(snapshot));
  }
  hooks_.schedule();
}

void DisruptionFlow::Advance(Snapshot snapshot) {
  if (!snapshot.lease.has_value() || !IsActive(*snapshot.lease)) {
    Cleanup(snapshot);
    return;
  }
  NodeDisruption& record = snapshot.record;
  if (std::optional<std::string> reason = TakeAbandon(record.lease_id()); reason.has_value()) {
    if (snapshot.lease->phase() == tended::v1::LEASE_PHASE_GRANTED &&
        record.step() != NodeDisruption::STEP_UNDOING &&
        record.step() != NodeDisruption::STEP_UNCORDONED) {
      record.set_cordoned_by_us(MustUncordon(record));
      record.set_step(NodeDisruption::STEP_UNDOING);
      record.set_message(*reason);
      *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
      if (!SaveRecord(record, absl::StrCat("giving the lease back: ", *reason))) return;
    }
  }
  const bool resumed_cordon = record.step() == NodeDisruption::STEP_CORDONING;
  for (int i = 0; i < kMaxStepsPerPass; ++i) {
    bool moved = false;
    switch (record.step()) {
      case NodeDisruption::STEP_PENDING:
        moved = StartCordon(snapshot);
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

absl::Time DisruptionFlow::PreparationDeadline(const Lease& lease) const {
  absl::Time start = FromProtoTimestamp(lease.grant_time());
  hooks_.with_leases([&](LeaseManager& leases) {
    if (const NodeDisruption* record = FindRecord(leases.state(), lease.id());
        record != nullptr && record->has_prepare_start_time()) {
      start = FromProtoTimestamp(record->prepare_start_time());
    }
  });
  return start + config_.kubernetes.drain.timeout;
}

bool DisruptionFlow::SaveRecord(const Record& record, const std::string& event_message) {
  absl::Status saved = absl::OkStatus();
  hooks_.with_leases([&](LeaseManager& leases) {
    saved = leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender& append) {
      NodeDisruption* stored = FindRecord(state, record.lease_id());
      Lease* lease = FindLeaseIn(state, record.lease_id());
      if (stored == nullptr || lease == nullptr || !IsActive(*lease)) {
        return absl::FailedPreconditionError(
            absl::StrCat("lease ", record.lease_id(), " is no longer active"));
      }
      *stored = record;
      // What `tendedctl leases` shows while the coordinator works on the node.
      lease->set_status_message(absl::StrCat(
          StepName(record.step()), record.message().empty() ? "" : ": ", record.message()));
      if (!event_message.empty()) {
        append(tended::v1::EVENT_TYPE_KUBERNETES_STEP, lease, record.node_name(), event_message);
      }
      return absl::OkStatus();
    });
  });
  if (!saved.ok()) {
    Log()->warn("lease {}: cannot record the step ({}): {}", record.lease_id(),
                StepName(record.step()), saved.ToString());
    Wake();
  }
  return saved.ok();
}

void DisruptionFlow::NodeEvent(const std::string& node, const std::string& reason,
                               const std::string& message, bool warning) {
  if (marker_ == nullptr) return;
  if (absl::Status sent = marker_->Event(node, reason, message, warning); !sent.ok()) {
    Log()->warn("cannot post the Kubernetes event {} on {}: {}", reason, node, sent.ToString());
  }
}

void DisruptionFlow::SetLeaseProblem(const std::string& lease_id, const std::string& message) {
  hooks_.with_leases([&](LeaseManager& leases) {
    if (absl::Status set = leases.SetVerificationProblem(lease_id, message); !set.ok()) {
      Log()->warn("lease {}: {}", lease_id, set.ToString());
    }
  });
}

bool DisruptionFlow::StartCordon(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const std::string& node = record.node_name();
  absl::StatusOr<kube::NodeInfo> info = deps_.client->GetNode(node);
  if (!info.ok()) {
    if (IsTransient(info.status()) && clock_.Now() < PreparationDeadline(*snapshot.lease)) {
      Log()->warn("reading node {} before cordoning: {}; trying again", node,
                  info.status().ToString());
      return false;
    }
    record.set_step(NodeDisruption::STEP_UNDOING);
    record.set_message(
        absl::StrCat("cannot read node ", node, " in Kubernetes: ", info.status().message()));
    *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
    return SaveRecord(record, record.message());
  }
  record.set_step(NodeDisruption::STEP_CORDONING);
  record.set_was_cordoned_before(info->unschedulable);
  record.set_kube_boot_id_before(info->boot_id);
  *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  return SaveRecord(record, "");
}

bool DisruptionFlow::Cordon(Snapshot& snapshot, bool resumed) {
  NodeDisruption& record = snapshot.record;
  const std::string& node = record.node_name();
  kube::Drainer drainer(*deps_.client, *drain_clock_, *deps_.sleeper,
                        DrainOptionsFor(config_.kubernetes));
  absl::Status blocking = drainer.CheckBlockingPods(node);
  absl::StatusOr<kube::CordonResult> cordon =
      blocking.ok() ? drainer.Cordon(node) : absl::StatusOr<kube::CordonResult>(blocking);
  if (!cordon.ok()) {
    if (IsTransient(cordon.status()) && clock_.Now() < PreparationDeadline(*snapshot.lease)) {
      Log()->warn("cordoning {}: {}; trying again", node, cordon.status().ToString());
      return false;
    }
    record.set_cordoned_by_us(MustUncordon(record));
    record.set_step(NodeDisruption::STEP_UNDOING);
    record.set_message(absl::StrCat("cannot cordon node ", node, ": ", cordon.status().message()));
    *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
    return SaveRecord(record, record.message());
  }
  const bool ours = !record.was_cordoned_before() && (resumed || !cordon->was_already_cordoned);
  record.set_cordoned_by_us(ours);
  record.set_step(NodeDisruption::STEP_DRAINING);
  *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  if (!SaveRecord(record, ours ? "cordoned; draining"
                               : "already cordoned by someone else (it stays cordoned "
                                 "afterwards); draining")) {
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

bool DisruptionFlow::Drain(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const std::string& node = record.node_name();
  const absl::Time deadline = PreparationDeadline(*snapshot.lease);
  kube::DrainOptions options = DrainOptionsFor(config_.kubernetes);
  options.timeout = std::min(options.timeout, deadline - clock_.Now());
  absl::StatusOr<kube::DrainReport> report = absl::DeadlineExceededError(
      absl::StrCat("drain of node ", node, " did not finish within ",
                   absl::FormatDuration(config_.kubernetes.drain.timeout)));
  if (options.timeout > absl::ZeroDuration()) {
    NodeEvent(node, "TendedDrain", absl::StrCat("Draining for REBOOT lease ", record.lease_id()));
    kube::Drainer drainer(*deps_.client, *drain_clock_, *deps_.sleeper, options);
    report = drainer.Drain(node);
  }
  if (stop_requested_.load()) return false;  // Resumed after the restart.
  if (std::optional<std::string> reason = TakeAbandon(record.lease_id()); reason.has_value()) {
    record.set_step(NodeDisruption::STEP_UNDOING);
    record.set_message(*reason);
    *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
    return SaveRecord(record, absl::StrCat("giving the lease back: ", *reason));
  }
  if (!report.ok()) {
    if (IsTransient(report.status()) && clock_.Now() < deadline) {
      Log()->warn("draining {}: {}; trying again", node, report.status().ToString());
      return false;
    }
    record.set_step(NodeDisruption::STEP_UNDOING);
    record.set_message(absl::StrCat("drain failed: ", report.status().message()));
    *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
    NodeEvent(node, "TendedDrainFailed", record.message(), /*warning=*/true);
    return SaveRecord(record, record.message());
  }
  // Drained: clear the lease's preparing flag in the same commit, then tell the holder.
  record.set_step(NodeDisruption::STEP_DRAINED);
  *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  const std::string message =
      absl::StrCat("drained (", report->evicted.size(), " evicted, ", report->already_gone.size(),
                   " already gone, ", report->skipped.size(), " skipped); the node may reboot");
  std::optional<Lease> ready;
  hooks_.with_leases([&](LeaseManager& leases) {
    absl::Status saved =
        leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender& append) {
          NodeDisruption* stored = FindRecord(state, record.lease_id());
          Lease* lease = FindLeaseIn(state, record.lease_id());
          if (stored == nullptr || lease == nullptr || !IsActive(*lease)) {
            return absl::FailedPreconditionError("the lease is no longer active");
          }
          *stored = record;
          lease->set_preparing(false);
          lease->set_status_message("drained; waiting for the reboot");
          append(tended::v1::EVENT_TYPE_KUBERNETES_STEP, lease, node, message);
          ready = *lease;
          return absl::OkStatus();
        });
    if (!saved.ok()) {
      Log()->warn("lease {}: cannot record the drain: {}", record.lease_id(), saved.ToString());
      ready.reset();
    }
  });
  if (!ready.has_value()) return false;
  Log()->info("node {} drained; {} may reboot it", node, record.lease_id());
  NodeEvent(node, "TendedDrained", absl::StrCat("Drained; the node may reboot"));
  hooks_.send_lease(*ready, /*granted=*/true);
  return true;
}

bool DisruptionFlow::Verify(Snapshot& snapshot) {
  NodeDisruption& record = snapshot.record;
  const Lease& lease = *snapshot.lease;
  if (lease.phase() != tended::v1::LEASE_PHASE_VERIFYING) return false;  // Not back yet.
  const std::string& node = record.node_name();
  std::vector<std::string> waiting;
  if (snapshot.agent_boot_id == lease.boot_id_at_grant()) {
    waiting.push_back("the agent has not reported a new boot id");
  }
  if (snapshot.agent_reboot_required) waiting.push_back("the agent still reports reboot-required");
  std::string kube_summary;
  absl::StatusOr<kube::NodeInfo> info = deps_.client->GetNode(node);
  if (!info.ok()) {
    waiting.push_back(absl::StrCat("cannot read the node: ", info.status().message()));
  } else {
    if (!record.kube_boot_id_before().empty() && info->boot_id == record.kube_boot_id_before()) {
      waiting.push_back(absl::StrCat("the kubelet still reports boot id ", info->boot_id));
    }
    if (info->ready != kube::ConditionStatus::kTrue) {
      waiting.push_back(absl::StrCat("not Ready (", kube::ConditionStatusName(info->ready),
                                     info->ready_reason.empty() ? "" : ": ", info->ready_reason,
                                     ")"));
    }
    const std::string& expected = config_.kubernetes.expected_kubelet_version;
    if (!expected.empty() && info->kubelet_version != expected) {
      waiting.push_back(absl::StrCat("kubelet ", info->kubelet_version, ", expected ", expected));
    }
    kube_summary =
        absl::StrCat("boot id ", info->boot_id, ", Ready, kubelet ", info->kubelet_version);
  }
  if (std::optional<AlertSnapshot> alerts = hooks_.fresh_alerts(); alerts.has_value()) {
    GateFacts facts;
    facts.alerts = std::move(alerts);
    if (GateOutcome outcome = AlertsGate(facts, config_, clock_.Now()); !outcome.pass) {
      waiting.push_back(outcome.reason);
    }
  }
  if (!waiting.empty()) {
    // Normal while the node boots; the return deadline turns a long wait into an alarm.
    const std::string message =
        absl::StrCat("back but not verified yet: ", absl::StrJoin(waiting, "; "));
    hooks_.with_leases([&](LeaseManager& leases) {
      if (absl::Status set = leases.SetVerificationWait(record.lease_id(), message); !set.ok()) {
        Log()->warn("lease {}: {}", record.lease_id(), set.ToString());
      }
    });
    return false;
  }
  if (record.cordoned_by_us()) {
    kube::Drainer drainer(*deps_.client, *drain_clock_, *deps_.sleeper,
                          DrainOptionsFor(config_.kubernetes));
    if (absl::Status uncordoned = drainer.Uncordon(node); !uncordoned.ok()) {
      SetLeaseProblem(record.lease_id(),
                      absl::StrCat("verified, but the uncordon failed: ", uncordoned.message()));
      return false;
    }
  }
  if (absl::Status cleared = marker_->Clear(node); !cleared.ok()) {
    Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
  }
  record.set_step(NodeDisruption::STEP_UNCORDONED);
  record.set_message(kube_summary);
  *record.mutable_step_time() = ToProtoTimestamp(clock_.Now());
  const std::string message =
      record.cordoned_by_us()
          ? absl::StrCat("verified in Kubernetes (", kube_summary, "); uncordoned")
          : absl::StrCat("verified in Kubernetes (", kube_summary,
                         "); left cordoned, as it was before");
  NodeEvent(node, record.cordoned_by_us() ? "TendedUncordon" : "TendedVerified", message);
  return SaveRecord(record, message);
}

bool DisruptionFlow::Complete(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  std::optional<Lease> released;
  hooks_.with_leases([&](LeaseManager& leases) {
    auto done = leases.CompleteVerification(
        record.lease_id(), absl::StrCat("new boot id ", snapshot.agent_boot_id,
                                        ", no reboot required; ", record.message()));
    if (!done.ok()) {
      Log()->error("releasing {}: {}", record.lease_id(), done.status().ToString());
      return;
    }
    released = *done;
    (void)leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender&) {
      RemoveRecord(state, record.lease_id());
      return absl::OkStatus();
    });
  });
  if (!released.has_value()) return false;
  hooks_.send_lease(*released, /*granted=*/false);
  NodeEvent(record.node_name(), "TendedReleased",
            absl::StrCat("Verified; REBOOT lease ", record.lease_id(), " released"));
  return true;
}

bool DisruptionFlow::Undo(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  const std::string& node = record.node_name();
  if (MustUncordon(record)) {
    kube::Drainer drainer(*deps_.client, *drain_clock_, *deps_.sleeper,
                          DrainOptionsFor(config_.kubernetes));
    if (absl::Status uncordoned = drainer.Uncordon(node);
        !uncordoned.ok() && !absl::IsNotFound(uncordoned)) {
      Log()->warn("undoing {} on {}: the uncordon failed: {}; trying again", record.lease_id(),
                  node, uncordoned.ToString());
      return false;
    }
  }
  if (record.step() != NodeDisruption::STEP_PENDING) {
    if (absl::Status cleared = marker_->Clear(node); !cleared.ok() && !absl::IsNotFound(cleared)) {
      Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
    }
  }
  const std::string message = absl::StrCat(
      record.message(), "; ",
      MustUncordon(record)
          ? "uncordoned"
          : (record.was_cordoned_before() ? "left cordoned, as it was before" : "was not cordoned"),
      "; lease returned, the node was not rebooted");
  std::optional<Lease> released;
  hooks_.with_leases([&](LeaseManager& leases) {
    absl::Status saved =
        leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender& append) {
          Lease* lease = FindLeaseIn(state, record.lease_id());
          RemoveRecord(state, record.lease_id());
          if (lease == nullptr || !IsActive(*lease)) return absl::OkStatus();
          if (lease->phase() != tended::v1::LEASE_PHASE_GRANTED) {
            // The disruption began after all: the normal verification releases it.
            lease->set_preparing(false);
            return absl::OkStatus();
          }
          lease->set_phase(tended::v1::LEASE_PHASE_RELEASED);
          lease->set_preparing(false);
          *lease->mutable_release_time() = ToProtoTimestamp(clock_.Now());
          lease->set_status_message(message);
          append(tended::v1::EVENT_TYPE_LEASE_RETURNED, lease, node, message);
          released = *lease;
          return absl::OkStatus();
        });
    if (!saved.ok()) {
      Log()->error("returning {}: {}", record.lease_id(), saved.ToString());
      released.reset();
    }
  });
  Log()->warn("{} on {}: {}", record.lease_id(), node, message);
  NodeEvent(node, "TendedLeaseReturned", message, /*warning=*/true);
  if (released.has_value()) hooks_.send_lease(*released, /*granted=*/false);
  return true;
}

bool DisruptionFlow::Cleanup(const Snapshot& snapshot) {
  const NodeDisruption& record = snapshot.record;
  const std::string& node = record.node_name();
  const bool touched = record.step() != NodeDisruption::STEP_PENDING &&
                       record.step() != NodeDisruption::STEP_UNCORDONED;
  const bool uncordon = touched && MustUncordon(record);
  if (uncordon) {
    kube::Drainer drainer(*deps_.client, *drain_clock_, *deps_.sleeper,
                          DrainOptionsFor(config_.kubernetes));
    if (absl::Status uncordoned = drainer.Uncordon(node);
        !uncordoned.ok() && !absl::IsNotFound(uncordoned)) {
      Log()->warn("lease {} was released; uncordoning {} failed: {}; trying again",
                  record.lease_id(), node, uncordoned.ToString());
      return false;
    }
  }
  if (touched) {
    if (absl::Status cleared = marker_->Clear(node); !cleared.ok() && !absl::IsNotFound(cleared)) {
      Log()->warn("cannot clear the marks on {}: {}", node, cleared.ToString());
    }
  }
  const std::string message = absl::StrCat("lease ", record.lease_id(), " was released while ",
                                           StepName(record.step()), uncordon ? "; uncordoned" : "");
  hooks_.with_leases([&](LeaseManager& leases) {
    absl::Status saved =
        leases.Mutate([&](CoordinatorState& state, const LeaseManager::EventAppender& append) {
          RemoveRecord(state, record.lease_id());
          if (touched) {
            append(tended::v1::EVENT_TYPE_KUBERNETES_STEP, FindLeaseIn(state, record.lease_id()),
                   node, message);
          }
          return absl::OkStatus();
        });
    if (!saved.ok()) Log()->error("forgetting {}: {}", record.lease_id(), saved.ToString());
  });
  if (touched) NodeEvent(node, "TendedUncordon", message);
  return true;
}

}  // namespace tended::coordinator
