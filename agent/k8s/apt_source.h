// The apt source switch of a minor Kubernetes upgrade. pkgs.k8s.io has one repository per
// minor (.../core:/stable:/v1.31/deb/), so moving to 1.32 rewrites the minor in the source
// line (one-line "deb [signed-by=...] URL /" or deb822 "URIs: URL"), keeping everything else
// on the line, the keyring included, before the lists are refreshed.
#ifndef TENDED_AGENT_K8S_APT_SOURCE_H_
#define TENDED_AGENT_K8S_APT_SOURCE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/kube_version.h"

namespace tended::agent::k8s {

// A sources file is refused above this size.
inline constexpr size_t kMaxSourcesFileBytes = 1 << 20;

struct SourceSwitch {
  std::string text;  // The file with every repository line at the target's minor.
  int lines_changed = 0;
  // The minor the lines named before ("1.31"); the target's when nothing changed.
  std::string from_minor;
};

// Every line of `text` (comments excepted) that names the repository `repo_url_pattern`
// describes (a URL with "{minor}" in it) gets the target's minor. Lines already at the
// target are left as they are (a re-run changes nothing). FAILED_PRECONDITION when no line
// names the repository, when a line names a minor other than the target's or the one
// before it (never two minors at once, never down), or when lines disagree.
absl::StatusOr<SourceSwitch> SwitchSourceMinor(absl::string_view text,
                                               absl::string_view repo_url_pattern,
                                               const KubeVersion& target);

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_APT_SOURCE_H_
