#include "coordinator/ctl/event_audit.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace tended::ctl {

EventAudit AuditEvents(const std::vector<tended::v1::Event>& events) {
  EventAudit audit;
  std::map<std::string, std::string> held;  // lease id -> node
  uint64_t previous = 0;
  for (const auto& event : events) {
    if (previous != 0 && event.sequence() != previous + 1) {
      audit.anomalies.push_back(
          absl::StrCat("events ", previous + 1, "..", event.sequence() - 1, " are missing"));
    }
    previous = event.sequence();
    audit.max_recorded_disrupted =
        std::max(audit.max_recorded_disrupted, static_cast<int>(event.disrupted_nodes()));
    switch (event.type()) {
      case tended::v1::EVENT_TYPE_LEASE_GRANTED:
        for (const auto& [id, node] : held) {
          if (node == event.node_name()) {
            audit.anomalies.push_back(
                absl::StrCat(event.lease_id(), " granted while ", node, " still held ", id));
          }
        }
        held[event.lease_id()] = event.node_name();
        audit.max_disrupted_at_once =
            std::max(audit.max_disrupted_at_once, static_cast<int>(held.size()));
        break;
      case tended::v1::EVENT_TYPE_LEASE_RELEASED:
        held.erase(event.lease_id());
        if (event.lease_kind() == tended::v1::LEASE_KIND_REBOOT) {
          ++audit.verified_reboots[event.node_name()];
        }
        break;
      case tended::v1::EVENT_TYPE_LEASE_RETURNED:
        held.erase(event.lease_id());
        break;
      case tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED:
        held.erase(event.lease_id());
        ++audit.force_releases;
        break;
      case tended::v1::EVENT_TYPE_FENCING_REJECTED:
        ++audit.fencing_rejections;
        break;
      default:
        break;
    }
  }
  for (const auto& [id, node] : held) audit.open_leases.push_back(id);
  return audit;
}

std::string SummaryLine(const EventAudit& audit) {
  int disrupted = std::max(audit.max_disrupted_at_once, audit.max_recorded_disrupted);
  return absl::StrCat(audit.nodes_rebooted(), audit.nodes_rebooted() == 1 ? " node" : " nodes",
                      " rebooted, at most ", disrupted, " disrupted at once");
}

}  // namespace tended::ctl
