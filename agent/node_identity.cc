#include "agent/node_identity.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/grpc_tls.h"
#include "common/status_macros.h"

namespace tended::agent {

absl::Status CheckCertificateNamesNode(const std::string& cert_file, const std::string& node_name) {
  constexpr absl::string_view kPrefix = "system:node:";
  ASSIGN_OR_RETURN(CertificateSubject subject, ReadCertificateSubject(cert_file));
  if (!absl::StartsWith(subject.common_name, kPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the certificate in ", cert_file, " names no node (its CN is \"", subject.common_name,
        "\", not system:node:", node_name, "): the coordinator would refuse every call"));
  }
  absl::string_view named = absl::StripPrefix(subject.common_name, kPrefix);
  if (named != node_name) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the certificate in ", cert_file, " is node ", named, "'s (CN=", subject.common_name,
        "), but this agent is node ", node_name,
        ": use this node's certificate, or set node_name if the host name is not the node name"));
  }
  if (std::find(subject.organizations.begin(), subject.organizations.end(), "system:nodes") ==
      subject.organizations.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certificate in ", cert_file,
                     " lacks O=system:nodes: the coordinator would not take it for a node's"));
  }
  return absl::OkStatus();
}

}  // namespace tended::agent
