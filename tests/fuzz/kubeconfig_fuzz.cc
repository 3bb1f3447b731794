// A kubeconfig document (the coordinator's --kubeconfig), resolved under a root that holds
// nothing: the parser only names files, it never reads them.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/root_path.h"
#include "coordinator/kube/kube_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  static const tended::RootPath root("/nonexistent-tended-fuzz-root");
  (void)tended::kube::ParseKubeconfig(yaml, "/etc/tended/kubeconfig", "", root);
  return 0;
}
