#include "coordinator/observability/metrics_exporter.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/proto_time.h"

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
