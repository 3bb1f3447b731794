// What a node knows about its Kubernetes versions, for the agent's facts: the installed
// kubeadm, kubelet, kubectl and containerd (read from dpkg's status file under the root),
// whether it runs a control plane, and, on a control plane, the kubeadm versions apt offers
// and whether the next minor's package repository (pkgs.k8s.io, one repository per minor)
// exists yet. A failed check is a sentence in check_error, never a crash or a missing report.
#ifndef TENDED_AGENT_K8S_VERSION_DETECTOR_H_
#define TENDED_AGENT_K8S_VERSION_DETECTOR_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/apt/package_manager.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "common/root_path.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::agent::k8s {

// dpkg's status file is a few MB on a real host; anything beyond this is refused.
inline constexpr size_t kMaxDpkgStatusBytes = size_t{64} << 20;
inline constexpr char kDpkgStatusPath[] = "/var/lib/dpkg/status";
inline constexpr char kApiServerManifestPath[] = "/etc/kubernetes/manifests/kube-apiserver.yaml";

struct VersionDetectorOptions {
  // The apt repository of one minor; "{minor}" becomes e.g. "1.32". Its Release file is
  // <url>/Release.
  std::string repo_url_pattern = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";
  // The whole probe of the next minor's Release file, redirects included.
  absl::Duration probe_timeout = absl::Seconds(30);
};

// Package name -> Version of every package dpkg's status text lists as installed (Status
// "<want> <flag> installed": "install ok installed" and held "hold ok installed" alike).
// Stanzas are deb822 (fields case-insensitive, continuation lines, blank-line separated).
// INVALID_ARGUMENT naming the line for text that is not deb822, or an installed stanza
// without a Package or Version.
absl::StatusOr<std::map<std::string, std::string>> ParseInstalledPackages(
    absl::string_view status_text);

// The installed kubeadm, kubelet, kubectl and containerd (the package containerd.io when
// containerd is not installed) from <root>/var/lib/dpkg/status (empty for a package that
// is not installed), and control_plane: <root>/etc/kubernetes/manifests/kube-apiserver.yaml
// exists. Errors: NOT_FOUND without a dpkg database, OUT_OF_RANGE above
// kMaxDpkgStatusBytes, INVALID_ARGUMENT for a status file that does not parse.
absl::StatusOr<tended::v1::K8sNodeFacts> ReadInstalledK8s(const RootPath& root);

// The minor after the one of an installed version: "1.31.4-1.1" -> "1.32".
absl::StatusOr<std::string> NextMinor(absl::string_view installed_version);

// The Release file of `minor`'s repository: the pattern with "{minor}" replaced, a "/"
// added when missing, then "Release". INVALID_ARGUMENT when the pattern has no "{minor}"
// or is not http(s).
absl::StatusOr<std::string> ReleaseUrlForMinor(absl::string_view repo_url_pattern,
                                               absl::string_view minor);

// The proper Kubernetes versions of `versions` (package versions such as "1.32.1-1.1"),
// newest first; anything ParseReportedVersion refuses is dropped.
std::vector<std::string> ProperKubeVersions(const std::vector<std::string>& versions);

class VersionDetector {
 public:
  // Every reference must outlive the detector.
  VersionDetector(apt::PackageManager& packages, HttpClient& http, const Clock& clock,
                  RootPath root, VersionDetectorOptions options = {});

  // The node's facts now. Every node: the installed versions and control_plane. A control
  // plane also: the lists refreshed (Update), kubeadm_candidates, and the next minor's
  // Release probed: a 2xx answer sets next_minor_available; 403, 404 or 410 (what the
  // pkgs.k8s.io CDN answers for a minor that does not exist) leaves it false; next_minor
  // names the minor probed either way. Up to five redirects are followed. Anything that
  // failed is a sentence in check_error (the rest is still filled in); checked_time is the
  // clock's now. Blocking: apt update and the probe can take minutes.
  tended::v1::K8sNodeFacts Detect();

 private:
  // Whether the minor's repository exists; an error when the answer says neither.
  absl::StatusOr<bool> ProbeMinor(const std::string& minor);

  apt::PackageManager& packages_;
  HttpClient& http_;
  const Clock& clock_;
  const RootPath root_;
  const VersionDetectorOptions options_;
};

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_VERSION_DETECTOR_H_
