#include "coordinator/config.h"

namespace tended::coordinator {

absl::string_view LeaseKindConfigName(tended::v1::LeaseKind kind) {
  switch (kind) {
    case tended::v1::LEASE_KIND_REBOOT:
      return "reboot";
    case tended::v1::LEASE_KIND_OS_UPGRADE:
      return "os_upgrade";
    case tended::v1::LEASE_KIND_K8S_UPGRADE:
      return "k8s_upgrade";
    default:
      return "unspecified";
  }
}

}  // namespace tended::coordinator
