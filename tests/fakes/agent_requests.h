// The requests an agent sends, built for tests that drive a Coordinator directly (no
// gRPC): a facts report and a REBOOT lease request.
#ifndef TENDED_TESTS_FAKES_AGENT_REQUESTS_H_
#define TENDED_TESTS_FAKES_AGENT_REQUESTS_H_

#include <string>

#include "tended/v1/node_service.pb.h"

namespace tended::testing {

inline tended::v1::ReportFactsRequest FactsReport(const std::string& node,
                                                  const std::string& boot_id,
                                                  bool reboot_required) {
  tended::v1::ReportFactsRequest request;
  request.mutable_facts()->set_node_name(node);
  request.mutable_facts()->set_boot_id(boot_id);
  request.mutable_facts()->set_reboot_required(reboot_required);
  return request;
}

inline tended::v1::AcquireLeaseRequest RebootLeaseRequest(const std::string& node,
                                                          const std::string& reason) {
  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(node);
  request.set_kind(tended::v1::LEASE_KIND_REBOOT);
  request.set_reason(reason);
  return request;
}

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_AGENT_REQUESTS_H_
