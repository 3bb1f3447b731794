// The agent's own certificate against its node name: a kubelet client certificate names
// its node (CN=system:node:<name>), and the coordinator lets an agent act only for that
// node, so an agent whose certificate names another node is misconfigured and stops at
// start instead of being refused on every call.
#ifndef TENDED_AGENT_NODE_IDENTITY_H_
#define TENDED_AGENT_NODE_IDENTITY_H_

#include <string>

#include "absl/status/status.h"

namespace tended::agent {

// OK when the first certificate in cert_file has CN=system:node:<node_name> and
// O=system:nodes. INVALID_ARGUMENT naming the file, both node names (or what the subject
// holds instead) otherwise; the errors of reading the file as they are.
absl::Status CheckCertificateNamesNode(const std::string& cert_file, const std::string& node_name);

}  // namespace tended::agent

#endif  // TENDED_AGENT_NODE_IDENTITY_H_
