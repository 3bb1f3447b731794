// The requests an agent sends, built for tests that drive a Coordinator directly (no
// gRPC): facts reports and lease calls, each carrying the agent instance id (by default
// one derived from the node name, as if each node ran one agent).
#ifndef TENDED_TESTS_FAKES_AGENT_REQUESTS_H_
#define TENDED_TESTS_FAKES_AGENT_REQUESTS_H_

#include <cstdint>
#include <string>

#include "tended/v1/node_service.pb.h"

namespace tended::testing {

// "agent-<node with dots as dashes>".
inline std::string InstanceOf(const std::string& node) {
  std::string id = "agent-" + node;
  for (char& c : id) {
    if (c == '.') c = '-';
  }
  return id.substr(0, 64);
}

inline tended::v1::ReportFactsRequest FactsReport(const std::string& node,
                                                  const std::string& boot_id,
                                                  bool reboot_required,
                                                  const std::string& instance = "") {
  tended::v1::ReportFactsRequest request;
  request.mutable_facts()->set_node_name(node);
  request.mutable_facts()->set_boot_id(boot_id);
  request.mutable_facts()->set_reboot_required(reboot_required);
  request.set_agent_instance_id(instance.empty() ? InstanceOf(node) : instance);
  return request;
}

inline tended::v1::AcquireLeaseRequest LeaseRequest(const std::string& node,
                                                    tended::v1::LeaseKind kind,
                                                    const std::string& reason,
                                                    const std::string& instance = "") {
  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(node);
  request.set_kind(kind);
  request.set_reason(reason);
  request.set_agent_instance_id(instance.empty() ? InstanceOf(node) : instance);
  return request;
}

inline tended::v1::AcquireLeaseRequest RebootLeaseRequest(const std::string& node,
                                                          const std::string& reason) {
  return LeaseRequest(node, tended::v1::LEASE_KIND_REBOOT, reason);
}

inline tended::v1::BeginDisruptionRequest BeginRequest(const tended::v1::Lease& lease,
                                                       const std::string& step,
                                                       const std::string& instance = "") {
  tended::v1::BeginDisruptionRequest request;
  request.set_lease_id(lease.id());
  request.set_fencing_token(lease.fencing_token());
  request.set_step(step);
  request.set_agent_instance_id(instance.empty() ? InstanceOf(lease.node_name()) : instance);
  return request;
}

inline tended::v1::RenewLeaseRequest RenewRequest(const tended::v1::Lease& lease,
                                                  const std::string& instance = "") {
  tended::v1::RenewLeaseRequest request;
  request.set_lease_id(lease.id());
  request.set_fencing_token(lease.fencing_token());
  request.set_agent_instance_id(instance.empty() ? InstanceOf(lease.node_name()) : instance);
  return request;
}

inline tended::v1::ReleaseLeaseRequest ReleaseRequest(const tended::v1::Lease& lease,
                                                      const std::string& reason,
                                                      const std::string& instance = "") {
  tended::v1::ReleaseLeaseRequest request;
  request.set_lease_id(lease.id());
  request.set_fencing_token(lease.fencing_token());
  request.set_reason(reason);
  request.set_agent_instance_id(instance.empty() ? InstanceOf(lease.node_name()) : instance);
  return request;
}

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_AGENT_REQUESTS_H_
