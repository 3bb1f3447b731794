#include "coordinator/ctl/certs.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/node_name.h"
#include "common/status_macros.h"
#include "common/x509_mint.h"

namespace tended::ctl {
namespace {

bool IsIpAddress(const std::string& text) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

struct Planned {
  std::string name;  // File stem.
  CertificateSpec spec;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> MintCerts(const CertsRequest& request) {
  if (request.out_dir.empty()) return absl::InvalidArgumentError("certs: --out DIR is required");
  std::vector<Planned> planned;
  CertificateSpec server;
  server.common_name = "tended-coordinator";
  server.server = true;
  server.client = false;
  server.not_after = request.lifetime;
  for (const std::string& name : request.server_names) {
    (IsIpAddress(name) ? server.ip_addresses : server.dns_names).push_back(name);
  }
  planned.push_back({"coordinator", server});
  for (const std::string& node : request.nodes) {
    if (!IsDns1123Subdomain(node)) {
      return absl::InvalidArgumentError(absl::StrCat("certs: \"", node, "\" is not a node name"));
    }
    CertificateSpec spec;
    spec.common_name = "system:node:" + node;
    spec.organizations = {"system:nodes"};
    spec.not_after = request.lifetime;
    planned.push_back({"node-" + node, spec});
  }
  for (const std::string& entry : request.operators) {
    std::pair<std::string, std::string> parts = absl::StrSplit(entry, absl::MaxSplits(':', 1));
    const std::string role = parts.second.empty() ? "admin" : parts.second;
    if (!IsDns1123Subdomain(parts.first) || (role != "read" && role != "admin")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certs: \"", entry, "\": operators are NAME or NAME:ROLE with ROLE read or admin"));
    }
    CertificateSpec spec;
    spec.common_name = parts.first;
    spec.organizations = {"tended:operators"};
    spec.organizational_units = {"tended:role:" + role};
    spec.not_after = request.lifetime;
    planned.push_back({"operator-" + parts.first, spec});
  }
  std::vector<std::string> files = {request.out_dir + "/ca.crt", request.out_dir + "/ca.key"};
  for (const Planned& item : planned) {
    files.push_back(absl::StrCat(request.out_dir, "/", item.name, ".crt"));
    files.push_back(absl::StrCat(request.out_dir, "/", item.name, ".key"));
  }
  for (const std::string& file : files) {
    if (PathExists(file)) {
      return absl::AlreadyExistsError(absl::StrCat("certs: ", file, " exists; not overwriting"));
    }
  }
  RETURN_IF_ERROR(MakeDirectories(request.out_dir, 0700));
  ASSIGN_OR_RETURN(CertificateAuthority ca,
                   CertificateAuthority::Create("tended CA", request.lifetime));
  RETURN_IF_ERROR(WriteFileAtomically(request.out_dir + "/ca.key", ca.self().key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomically(request.out_dir + "/ca.crt", ca.self().cert_pem, 0644));
  for (const Planned& item : planned) {
    ASSIGN_OR_RETURN(MintedCertificate minted, ca.Issue(item.spec));
    const std::string stem = absl::StrCat(request.out_dir, "/", item.name);
    RETURN_IF_ERROR(WriteFileAtomically(stem + ".key", minted.key_pem, 0600));
    RETURN_IF_ERROR(WriteFileAtomically(stem + ".crt", minted.cert_pem, 0644));
  }
  return files;
}

}  // namespace tended::ctl
