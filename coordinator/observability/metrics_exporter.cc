#include "coordinator/observability/metrics_exporter.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/kube_version.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "coordinator/leases/k8s_detection.h"

namespace tended::coordinator {
namespace {

using metrics::FamilySpec;
using metrics::MetricType;

std::string Kind(tended::v1::LeaseKind kind) { return std::string(LeaseKindConfigName(kind)); }

std::string Phase(tended::v1::LeasePhase phase) {
  return std::string(absl::StripPrefix(tended::v1::LeasePhase_Name(phase), "LEASE_PHASE_"));
}

}  // namespace

std::string EventTypeLabel(tended::v1::EventType type) {
  std::string name = tended::v1::EventType_Name(type);
  if (name.empty()) return absl::StrCat("type_", static_cast<int>(type));
  return absl::AsciiStrToLower(absl::StripPrefix(name, "EVENT_TYPE_"));
}

CoordinatorMetrics::CoordinatorMetrics(Coordinator& coordinator, const Clock& clock,
                                       metrics::Registry& registry)
    : coordinator_(coordinator),
      clock_(clock),
      events_(registry.AddCounter("tended_events_total",
                                  "Durable coordinator events since this process started, by type.",
                                  {"type"})),
      disruptions_(registry.AddCounter(
          "tended_disruptions_total",
          "Disruptions begun (leases entering DISRUPTING) since this process started, by kind.",
          {"kind"})) {
  for (const auto& [kind, policy] : coordinator.config().leases) {
    if (policy.enabled) disruptions_.Increment({Kind(kind)}, 0);
  }
  registry.AddCollector(
      {
          {"tended_halted",
           "1 while an operator's halt blocks every new disruption.",
           MetricType::kGauge,
           {}},
          {"tended_lease_held",
           "1 for each active lease (granted, disrupting or verifying), by kind, node and phase.",
           MetricType::kGauge,
           {"kind", "node", "phase"}},
          {"tended_lease_age_seconds",
           "Seconds since the active lease was granted.",
           MetricType::kGauge,
           {"kind", "node"}},
          {"tended_lease_overdue",
           "1 when the active lease passed its renew or return deadline (it stays held).",
           MetricType::kGauge,
           {"kind", "node"}},
          {"tended_lease_requests_waiting",
           "Lease requests waiting for the gates, by kind.",
           MetricType::kGauge,
           {"kind"}},
          {"tended_gate_passing",
           "1 when the gate passes for the lease kind, 0 when it blocks.",
           MetricType::kGauge,
           {"kind", "gate"}},
          {"tended_gates_would_grant",
           "1 when every gate of the lease kind passes.",
           MetricType::kGauge,
           {"kind"}},
          {"tended_node_reboot_required",
           "1 when the node's agent reports a reboot is required.",
           MetricType::kGauge,
           {"node"}},
          {"tended_node_reporting",
           "1 when the node's agent reported within the fleet's report deadline, 0 when silent.",
           MetricType::kGauge,
           {"node"}},
          {"tended_node_last_report_timestamp_seconds",
           "Unix time of the node's last report to this coordinator process.",
           MetricType::kGauge,
           {"node"}},
          {"tended_fencing_rejections_total",
           "Holder calls refused since this process started: a stale fencing token, an "
           "unknown lease, another agent instance, or a report from a second agent.",
           MetricType::kCounter,
           {}},
          {"tended_node_identity_conflicts",
           "Nodes that two agent instances report as now (nothing is granted to them).",
           MetricType::kGauge,
           {}},
          {"tended_state_recovering",
           "1 while the coordinator recovers after a start on an empty state and grants nothing.",
           MetricType::kGauge,
           {}},
          {"tended_directive_streams",
           "Agents' directive streams connected to this process.",
           MetricType::kGauge,
           {}},
          {"tended_k8s_upgrade_available",
           "1 when the first control plane's last version check found a newer target: the "
           "newest patch of the running minor (kind=patch) or the next minor (kind=minor).",
           MetricType::kGauge,
           {"kind", "running", "target"}},
          {"tended_k8s_version_check_last_run_timestamp_seconds",
           "Unix time of the newest version check a control plane reported.",
           MetricType::kGauge,
           {}},
          {"tended_k8s_upgrade_version_skew",
           "Minor versions between the newest and the oldest kubelet the agents report.",
           MetricType::kGauge,
           {}},
          {"tended_k8s_upgrade_in_flight",
           "1 while a Kubernetes rollout runs (or is being cancelled).",
           MetricType::kGauge,
           {}},
          {"tended_k8s_upgrade_snapshot_taken",
           "1 once the rollout in flight recorded its etcd snapshot; 0 before that and while "
           "no rollout is in flight.",
           MetricType::kGauge,
           {}},
          {"tended_k8s_upgrade_last_progress_timestamp_seconds",
           "Unix time the running (or last) rollout last moved on.",
           MetricType::kGauge,
           {}},
      },
      [this](metrics::Collection& out) { Collect(out); });
}

void CoordinatorMetrics::OnEvent(const tended::v1::Event& event) {
  events_.Increment({EventTypeLabel(event.type())});
  if (event.type() == tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED &&
      event.lease_phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
    disruptions_.Increment({Kind(event.lease_kind())});
  }
}

void CoordinatorMetrics::CollectK8s(const tended::v1::ListNodesResponse& nodes,
                                    metrics::Collection& out) {
  std::map<std::string, KubeVersion> kubelets;
  std::vector<std::pair<std::string, const tended::v1::K8sNodeFacts*>> checks;
  std::optional<absl::Time> last_check;
  for (const auto& node : nodes.nodes()) {
    const tended::v1::K8sNodeFacts& k8s = node.facts().k8s();
    if (absl::StatusOr<KubeVersion> kubelet = ParseReportedVersion(k8s.kubelet_version());
        kubelet.ok()) {
      kubelets[node.facts().node_name()] = *kubelet;
    }
    if (k8s.control_plane() && k8s.has_checked_time() && k8s.check_error().empty()) {
      checks.emplace_back(node.facts().node_name(), &k8s);
      last_check = std::max(last_check.value_or(absl::InfinitePast()),
                            FromProtoTimestamp(k8s.checked_time()));
    }
  }
  out.Add("tended_k8s_upgrade_version_skew", {}, MinorSpread(kubelets));
  if (last_check.has_value()) {
    out.Add("tended_k8s_version_check_last_run_timestamp_seconds", {},
            absl::ToDoubleSeconds(*last_check - absl::UnixEpoch()));
  }
  // The same reading of the checks as detection's: what a rollout would target.
  const K8sAvailableUpgrades available = FindK8sUpgrades(checks);
  if (available.patch.has_value()) {
    out.Add("tended_k8s_upgrade_available",
            {"patch", available.patch->running.ToString(), available.patch->target.ToString()}, 1);
  }
  if (available.minor.has_value()) {
    // A minor's patches are known only once the apt source is switched: the label names the
    // minor.
    const KubeVersion& target = available.minor->target;
    out.Add("tended_k8s_upgrade_available",
            {"minor", available.minor->running.ToString(),
             absl::StrCat(target.major, ".", target.minor)},
            1);
  }
  absl::StatusOr<tended::v1::ListK8sRolloutsResponse> rollouts = coordinator_.ListK8sRollouts({});
  const tended::v1::K8sRollout* last = nullptr;
  bool in_flight = false;
  if (rollouts.ok()) {
    for (const auto& rollout : rollouts->rollouts()) {
      if (rollout.dry_run()) continue;
      last = &rollout;
      in_flight |= rollout.state() == tended::v1::K8S_ROLLOUT_STATE_RUNNING ||
                   rollout.state() == tended::v1::K8S_ROLLOUT_STATE_CANCELLING;
      if (in_flight) break;
    }
  }
  out.Add("tended_k8s_upgrade_in_flight", {}, in_flight ? 1 : 0);
  out.Add("tended_k8s_upgrade_snapshot_taken", {},
          in_flight && !last->snapshot().path().empty() ? 1 : 0);
  if (last != nullptr) {
    out.Add("tended_k8s_upgrade_last_progress_timestamp_seconds", {},
            absl::ToDoubleSeconds(FromProtoTimestamp(last->update_time()) - absl::UnixEpoch()));
  }
}

void CoordinatorMetrics::Collect(metrics::Collection& out) {
  const absl::Time now = clock_.Now();
  const Coordinator::Stats stats = coordinator_.stats();
  out.Add("tended_fencing_rejections_total", {}, static_cast<double>(stats.fencing_rejections));
  out.Add("tended_node_identity_conflicts", {}, static_cast<double>(stats.identity_conflicts));
  out.Add("tended_state_recovering", {}, stats.recovering ? 1 : 0);
  out.Add("tended_directive_streams", {}, static_cast<double>(stats.directive_streams));
  const tended::v1::ListLeasesResponse leases = coordinator_.ListLeases({});
  for (const auto& lease : leases.leases()) {
    if (lease.phase() == tended::v1::LEASE_PHASE_RELEASED) continue;
    const std::string kind = Kind(lease.kind());
    out.Add("tended_lease_held", {kind, lease.node_name(), Phase(lease.phase())}, 1);
    out.Add("tended_lease_age_seconds", {kind, lease.node_name()},
            absl::ToDoubleSeconds(now - FromProtoTimestamp(lease.grant_time())));
    out.Add("tended_lease_overdue", {kind, lease.node_name()}, lease.overdue() ? 1 : 0);
  }
  const tended::v1::ListNodesResponse nodes = coordinator_.ListNodes();
  for (const auto& node : nodes.nodes()) {
    const std::string& name = node.facts().node_name();
    out.Add("tended_node_reboot_required", {name}, node.facts().reboot_required() ? 1 : 0);
    // A disrupted node shows as DISRUPTED, not SILENT: judge by the report time itself.
    bool reporting = node.state() != tended::v1::NODE_STATE_SILENT;
    if (node.has_last_report_time()) {
      absl::Time last = FromProtoTimestamp(node.last_report_time());
      reporting = now - last <= coordinator_.config().fleet.report_deadline;
      out.Add("tended_node_last_report_timestamp_seconds", {name},
              absl::ToDoubleSeconds(last - absl::UnixEpoch()));
    }
    out.Add("tended_node_reporting", {name}, reporting ? 1 : 0);
  }
  CollectK8s(nodes, out);
  absl::StatusOr<tended::v1::ExplainGatesResponse> gates = coordinator_.ExplainGates({});
  if (!gates.ok()) {
    Logger("metrics")->warn("cannot explain the gates for a scrape: {}", gates.status().ToString());
    return;
  }
  bool halted = false;
  const auto& policies = coordinator_.config().leases;
  for (const auto& explanation : gates->explanations()) {
    // A kind that is not enabled never grants; its gates are noise.
    auto policy = policies.find(explanation.kind());
    if (policy == policies.end() || !policy->second.enabled) continue;
    const std::string kind = Kind(explanation.kind());
    for (const auto& gate : explanation.gates()) {
      bool passing = gate.verdict() == tended::v1::GATE_VERDICT_PASS;
      out.Add("tended_gate_passing", {kind, gate.gate()}, passing ? 1 : 0);
      if (gate.gate() == "halt" && !passing) halted = true;
    }
    out.Add("tended_gates_would_grant", {kind}, explanation.would_grant() ? 1 : 0);
    out.Add("tended_lease_requests_waiting", {kind}, explanation.waiting_nodes_size());
  }
  out.Add("tended_halted", {}, halted ? 1 : 0);
}

}  // namespace tended::coordinator
