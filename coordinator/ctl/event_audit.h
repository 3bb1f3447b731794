// Checks the one promise from outside, from the coordinator's event log alone: how many
// nodes were disrupted at once at most, and which nodes completed a verified reboot.
#ifndef TENDED_COORDINATOR_CTL_EVENT_AUDIT_H_
#define TENDED_COORDINATOR_CTL_EVENT_AUDIT_H_

#include <map>
#include <string>
#include <vector>

#include "tended/v1/types.pb.h"

namespace tended::ctl {

struct EventAudit {
  // The most leases held at once, replayed grant by grant and release by release.
  int max_disrupted_at_once = 0;
  // The largest disrupted_nodes the coordinator itself recorded on any event.
  int max_recorded_disrupted = 0;
  // Verified releases of REBOOT leases, per node.
  std::map<std::string, int> verified_reboots;
  int force_releases = 0;
  int fencing_rejections = 0;
  // Leases still held at the end of the log.
  std::vector<std::string> open_leases;
  // Grants that found their node already holding a lease, or gaps in the sequence.
  std::vector<std::string> anomalies;

  int nodes_rebooted() const { return static_cast<int>(verified_reboots.size()); }
};

// `events` in sequence order. A log trimmed at its start is audited from where it starts.
EventAudit AuditEvents(const std::vector<tended::v1::Event>& events);

// "5 nodes rebooted, at most 1 disrupted at once"
std::string SummaryLine(const EventAudit& audit);

}  // namespace tended::ctl

#endif  // TENDED_COORDINATOR_CTL_EVENT_AUDIT_H_
