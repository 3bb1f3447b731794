#include "coordinator/ctl/status_table.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"

namespace tended::ctl {
namespace {

std::string Trimmed(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

std::string KindName(tended::v1::LeaseKind kind) {
  if (kind == tended::v1::LEASE_KIND_UNSPECIFIED) return "-";
  return absl::AsciiStrToLower(Trimmed(tended::v1::LeaseKind_Name(kind), "LEASE_KIND_"));
}

bool Blocks(const tended::v1::GateResult& gate) {
  return gate.verdict() != tended::v1::GATE_VERDICT_PASS;
}

// What a waiting node waits for: the blocking gates of its kind, and the latest of their
// earliest pass times (unknown when any blocking gate has none), or its backoff.
struct Wait {
  std::string what;
  std::string until;
};

Wait WaitFor(const tended::v1::Node& node, const tended::v1::GateExplanation* explanation,
             absl::TimeZone zone) {
  Wait wait;
  std::string kind = KindName(node.waiting_for());
  absl::Time latest = absl::InfinitePast();
  bool known = true;
  std::vector<std::string> blocking;
  if (explanation != nullptr) {
    for (const auto& gate : explanation->gates()) {
      if (!Blocks(gate)) continue;
      blocking.push_back(gate.gate());
      if (gate.has_earliest_pass_time()) {
        latest = std::max(latest, FromProtoTimestamp(gate.earliest_pass_time()));
      } else {
        known = false;
      }
    }
  }
  absl::Time backoff =
      node.has_backoff_until() ? FromProtoTimestamp(node.backoff_until()) : absl::InfinitePast();
  if (blocking.empty()) {
    wait.what = absl::StrCat(kind, ": gates pass");
    if (explanation != nullptr && !explanation->waiting_nodes().empty() &&
        explanation->waiting_nodes(0) != node.facts().node_name()) {
      absl::StrAppend(&wait.what, ", queued behind ", explanation->waiting_nodes(0));
    }
  } else {
    wait.what = absl::StrCat(kind, ": ", absl::StrJoin(blocking, ", "));
  }
  if (backoff != absl::InfinitePast()) {
    absl::StrAppend(&wait.what, " (backoff)");
    latest = std::max(latest, backoff);
  }
  if (!blocking.empty() && !known) {
    wait.until = "unknown";
  } else if (latest != absl::InfinitePast()) {
    wait.until = FormatTimestamp(ToProtoTimestamp(latest), zone);
  } else {
    wait.until = "-";
  }
  return wait;
}

}  // namespace

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp, absl::TimeZone zone) {
  absl::Time time = FromProtoTimestamp(timestamp);
  if (time == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, zone);
}

std::string FormatStatus(const tended::v1::ListNodesResponse& nodes,
                         const tended::v1::ListLeasesResponse& leases,
                         const tended::v1::ExplainGatesResponse& gates, absl::TimeZone zone) {
  std::map<tended::v1::LeaseKind, const tended::v1::GateExplanation*> by_kind;
  std::string halt;
  for (const auto& explanation : gates.explanations()) {
    by_kind[explanation.kind()] = &explanation;
    for (const auto& gate : explanation.gates()) {
      if (gate.gate() == "halt" && Blocks(gate) && halt.empty()) halt = gate.reason();
    }
  }
  std::map<std::string, const tended::v1::Lease*> lease_by_id;
  for (const auto& lease : leases.leases()) lease_by_id[lease.id()] = &lease;

  std::string out = halt.empty() ? "fleet: running" : absl::StrCat("fleet: HALTED (", halt, ")");
  int disrupted = 0, waiting = 0;
  for (const auto& node : nodes.nodes()) {
    disrupted += node.state() == tended::v1::NODE_STATE_DISRUPTED;
    waiting += node.state() == tended::v1::NODE_STATE_WAITING;
  }
  absl::StrAppend(&out, ", ", nodes.nodes_size(), " nodes, ", disrupted, " disrupted, ", waiting,
                  " waiting\n");
  static constexpr char kRow[] = "%-20s %-10s %-36s %-44s %s\n";
  absl::StrAppend(&out, absl::StrFormat(kRow, "NODE", "STATE", "LEASE", "WAITS FOR", "UNTIL"));
  for (const auto& node : nodes.nodes()) {
    std::string lease_text = "-";
    std::string what = "-";
    std::string until = "-";
    if (!node.lease_id().empty()) {
      auto it = lease_by_id.find(node.lease_id());
      if (it == lease_by_id.end()) {
        lease_text = node.lease_id();
      } else {
        const tended::v1::Lease& lease = *it->second;
        lease_text = absl::StrCat(lease.id(), " ",
                                  absl::AsciiStrToLower(Trimmed(
                                      tended::v1::LeasePhase_Name(lease.phase()), "LEASE_PHASE_")));
        if (lease.preparing()) {
          what = "drain (cordon, evict)";
        } else if (!lease.status_message().empty()) {
          what = lease.status_message();
        } else if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
          what = "the holder to begin its step";
        } else if (lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
          what = "the step to end and the node to come back";
        } else {
          what = "verification";
        }
        if (lease.overdue()) what = absl::StrCat("OVERDUE: ", what);
        until = lease.has_expire_time()
                    ? absl::StrCat("renew by ", FormatTimestamp(lease.expire_time(), zone))
                    : "-";
      }
    } else if (node.state() == tended::v1::NODE_STATE_WAITING ||
               node.waiting_for() != tended::v1::LEASE_KIND_UNSPECIFIED) {
      auto it = by_kind.find(node.waiting_for());
      Wait wait = WaitFor(node, it == by_kind.end() ? nullptr : it->second, zone);
      what = wait.what;
      until = wait.until;
    } else if (node.state() == tended::v1::NODE_STATE_SILENT) {
      what = "a report";
      until = absl::StrCat("last ", FormatTimestamp(node.last_report_time(), zone));
    } else if (node.state() == tended::v1::NODE_STATE_CONFLICT) {
      what = absl::StrCat("conflict: ", node.conflict());
    }
    absl::StrAppend(
        &out, absl::StrFormat(kRow, node.facts().node_name(),
                              Trimmed(tended::v1::NodeState_Name(node.state()), "NODE_STATE_"),
                              lease_text, what, until));
  }
  return out;
}

std::string FormatExplain(const tended::v1::ExplainGatesResponse& gates, absl::TimeZone zone) {
  std::string out =
      absl::StrCat("evaluated at ", FormatTimestamp(gates.evaluated_at(), zone), "\n");
  for (const auto& explanation : gates.explanations()) {
    absl::StrAppend(&out, KindName(explanation.kind()), ": ",
                    explanation.would_grant() ? "would grant" : "blocked");
    if (explanation.waiting_nodes().empty()) {
      absl::StrAppend(&out, ", nobody waiting\n");
    } else {
      absl::StrAppend(&out, ", waiting: ", absl::StrJoin(explanation.waiting_nodes(), ", "), "\n");
    }
    for (const auto& gate : explanation.gates()) {
      absl::StrAppend(&out, absl::StrFormat("  %-5s %-13s %s", Blocks(gate) ? "BLOCK" : "pass",
                                            gate.gate(), gate.reason()));
      if (gate.has_earliest_pass_time()) {
        absl::StrAppend(&out, " (earliest ", FormatTimestamp(gate.earliest_pass_time(), zone), ")");
      } else if (Blocks(gate)) {
        absl::StrAppend(&out, " (no known time)");
      }
      absl::StrAppend(&out, "\n");
    }
  }
  return out;
}

}  // namespace tended::ctl
