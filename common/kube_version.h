// Kubernetes versions: strict parsing of operator-given targets, lenient parsing of what
// nodes report (v-prefixed, Debian revisions), and the upgrade rules kubeadm and the skew
// policy impose (one minor at a time, kubelets at most three minors behind).
#ifndef TENDED_COMMON_KUBE_VERSION_H_
#define TENDED_COMMON_KUBE_VERSION_H_

#include <compare>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended {

struct KubeVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;

  auto operator<=>(const KubeVersion&) const = default;
  // "1.31.4", without the "v".
  std::string ToString() const;
  // "v1.31.4", as kubeadm and the API server spell it.
  std::string ToTag() const { return "v" + ToString(); }
  bool SameMinor(const KubeVersion& other) const {
    return major == other.major && minor == other.minor;
  }
};

// The kubelet may be at most this many minors older than the API server.
inline constexpr int kMaxKubeletMinorsBehind = 3;

// A target version as an operator or the configuration gives it: exactly `^\d+\.\d+\.\d+$`
// (an optional leading "v" is accepted), each part at most 999, major 1.
absl::StatusOr<KubeVersion> ParseTargetVersion(absl::string_view text);

// A version as a node reports it: "v1.31.4", "1.31.4", the Debian package version
// "1.31.4-1.1", or with a build suffix "v1.31.4+abc". Anything else is an error.
absl::StatusOr<KubeVersion> ParseReportedVersion(absl::string_view text);

// Whether the Debian package version `package_version` (such as "1.31.4-1.1") is `version`.
bool PackageVersionIs(absl::string_view package_version, const KubeVersion& version);

// Whether going from `running` to `target` is an upgrade of `kind` kubeadm allows: a patch
// stays in its minor and moves forward; a minor goes exactly one minor up. Re-running to the
// version already running is allowed (nothing will change). Errors say why not.
absl::Status ValidateUpgrade(const KubeVersion& running, const KubeVersion& target,
                             tended::v1::K8sUpgradeKind kind);

// The skew policy for a control plane going to `target`: every kubelet at most
// kMaxKubeletMinorsBehind minors older than `target` and none newer. `kubelets` maps node
// name to its kubelet version. The error names each node that is out of bounds.
absl::Status CheckKubeletSkew(const KubeVersion& target,
                              const std::map<std::string, KubeVersion>& kubelets);

// Minors between the newest and the oldest of `versions` (0 when all share a minor or empty).
int MinorSpread(const std::map<std::string, KubeVersion>& versions);

}  // namespace tended

#endif  // TENDED_COMMON_KUBE_VERSION_H_
