// `tendedctl status`: one table of the fleet from ListNodes, ListLeases and ExplainGates:
// every node, its state, its lease, what it waits for and until when.
#ifndef TENDED_COORDINATOR_CTL_STATUS_TABLE_H_
#define TENDED_COORDINATOR_CTL_STATUS_TABLE_H_

#include <string>

#include "absl/time/time.h"
#include "tended/v1/operator_service.pb.h"

namespace tended::ctl {

// "2026-12-06 21:03:00" in `zone`; "-" for an unset timestamp.
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp, absl::TimeZone zone);

// A first line on the fleet (running or halted and why), then one row per node.
std::string FormatStatus(const tended::v1::ListNodesResponse& nodes,
                         const tended::v1::ListLeasesResponse& leases,
                         const tended::v1::ExplainGatesResponse& gates, absl::TimeZone zone);

// `tendedctl explain`: for each lease kind, whether it would grant, every gate with its
// verdict, reason and earliest pass time, and the nodes waiting.
std::string FormatExplain(const tended::v1::ExplainGatesResponse& gates, absl::TimeZone zone);

}  // namespace tended::ctl

#endif  // TENDED_COORDINATOR_CTL_STATUS_TABLE_H_
