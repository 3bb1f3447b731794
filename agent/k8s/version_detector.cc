#include "agent/k8s/version_detector.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/kube_version.h"
#include "common/node_file.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tended::agent::k8s {
namespace {

constexpr int kMaxRedirects = 5;
constexpr size_t kMaxReleaseBytes = size_t{4} << 20;

struct Stanza {
  std::string package;
  std::string version;
  std::string status;
  int first_line = 0;
};

absl::Status FinishStanza(const Stanza& stanza, std::map<std::string, std::string>& installed) {
  if (stanza.first_line == 0) return absl::OkStatus();  // Nothing seen yet.
  std::vector<absl::string_view> words =
      absl::StrSplit(stanza.status, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (words.size() != 3 || words[2] != "installed") return absl::OkStatus();
  if (stanza.package.empty() || stanza.version.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the installed package at line ", stanza.first_line, " has no ",
                     stanza.package.empty() ? "Package" : "Version", " field"));
  }
  installed[stanza.package] = stanza.version;
  return absl::OkStatus();
}

// The scheme and authority of an http(s) URL: "https://host:port".
std::string Origin(absl::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  size_t path = url.find('/', scheme_end + 3);
  return std::string(url.substr(0, path));
}

bool IsHttpUrl(absl::string_view url) {
  return absl::StartsWithIgnoreCase(url, "http://") || absl::StartsWithIgnoreCase(url, "https://");
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseInstalledPackages(
    absl::string_view status_text) {
  std::map<std::string, std::string> installed;
  Stanza stanza;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(status_text, '\n')) {
    ++line_number;
    line = absl::StripSuffix(line, "\r");
    if (absl::StripAsciiWhitespace(line).empty()) {
      RETURN_IF_ERROR(FinishStanza(stanza, installed));
      stanza = Stanza();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (stanza.first_line == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, " continues a field, but no field comes before it"));
      }
      continue;  // Continuation of a multi-line field (Description, Conffiles, ...).
    }
    if (line[0] == '#') continue;
    const size_t colon = line.find(':');
    absl::string_view name = colon == absl::string_view::npos ? "" : line.substr(0, colon);
    if (name.empty() || absl::StrContains(name, ' ')) {
      std::string shown(line.substr(0, 60));
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, " is not a \"Field: value\" line: \"", shown, "\""));
    }
    if (stanza.first_line == 0) stanza.first_line = line_number;
    const std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (absl::EqualsIgnoreCase(name, "Package")) {
      stanza.package = value;
    } else if (absl::EqualsIgnoreCase(name, "Version")) {
      stanza.version = value;
    } else if (absl::EqualsIgnoreCase(name, "Status")) {
      stanza.status = value;
    }
  }
  RETURN_IF_ERROR(FinishStanza(stanza, installed));
  return installed;
}

absl::StatusOr<tended::v1::K8sNodeFacts> ReadInstalledK8s(const RootPath& root) {
  absl::StatusOr<std::string> text = ReadNodeFile(root, kDpkgStatusPath, kMaxDpkgStatusBytes);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(
          absl::StrCat("no dpkg database at ", root.Resolve(kDpkgStatusPath)));
    }
    return text.status();
  }
  absl::StatusOr<std::map<std::string, std::string>> installed = ParseInstalledPackages(*text);
  if (!installed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.Resolve(kDpkgStatusPath),
                     " is not a dpkg status file: ", installed.status().message()));
  }
  auto version_of = [&](const char* package) {
    auto it = installed->find(package);
    return it == installed->end() ? std::string() : it->second;
  };
  tended::v1::K8sNodeFacts facts;
  facts.set_kubeadm_version(version_of("kubeadm"));
  facts.set_kubelet_version(version_of("kubelet"));
  facts.set_kubectl_version(version_of("kubectl"));
  std::string containerd = version_of("containerd");
  facts.set_containerd_version(containerd.empty() ? version_of("containerd.io") : containerd);
  facts.set_control_plane(NodeFileExists(root, kApiServerManifestPath));
  return facts;
}

absl::StatusOr<std::string> NextMinor(absl::string_view installed_version) {
  ASSIGN_OR_RETURN(KubeVersion running, ParseReportedVersion(installed_version));
  return absl::StrCat(running.major, ".", running.minor + 1);
}

absl::StatusOr<std::string> ReleaseUrlForMinor(absl::string_view repo_url_pattern,
                                               absl::string_view minor) {
  if (!absl::StrContains(repo_url_pattern, "{minor}")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the repository URL pattern \"", repo_url_pattern, "\" has no {minor}"));
  }
  if (!IsHttpUrl(repo_url_pattern)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the repository URL pattern \"", repo_url_pattern, "\" is not http(s)"));
  }
  std::string url = absl::StrReplaceAll(repo_url_pattern, {{"{minor}", minor}});
  if (!absl::EndsWith(url, "/")) url += "/";
  return url + "Release";
}

std::vector<std::string> ProperKubeVersions(const std::vector<std::string>& versions) {
  std::vector<std::pair<KubeVersion, std::string>> proper;
  for (const std::string& v : versions) {
    absl::StatusOr<KubeVersion> parsed = ParseReportedVersion(v);
    if (parsed.ok()) proper.emplace_back(*parsed, v);
  }
  std::stable_sort(proper.begin(), proper.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& [version, text] : proper) out.push_back(std::move(text));
  return out;
}

VersionDetector::VersionDetector(apt::PackageManager& packages, HttpClient& http,
                                 const Clock& clock, RootPath root, VersionDetectorOptions options)
    : packages_(packages),
      http_(http),
      clock_(clock),
      root_(std::move(root)),
      options_(std::move(options)) {}

tended::v1::K8sNodeFacts VersionDetector::Detect() {
  tended::v1::K8sNodeFacts facts;
  std::vector<std::string> problems;
  absl::StatusOr<tended::v1::K8sNodeFacts> installed = ReadInstalledK8s(root_);
  if (installed.ok()) {
    facts = *std::move(installed);
  } else {
    problems.push_back(
        absl::StrCat("cannot read the installed packages: ", installed.status().message()));
    facts.set_control_plane(NodeFileExists(root_, kApiServerManifestPath));
  }

  if (facts.control_plane()) {
    absl::Status update = packages_.Update();
    if (!update.ok()) {
      problems.push_back(
          absl::StrCat("refreshing the package lists failed (the candidates are "
                       "from the lists as they were): ",
                       update.message()));
    }
    absl::StatusOr<std::vector<std::string>> candidates = packages_.AvailableVersions("kubeadm");
    if (candidates.ok()) {
      for (std::string& v : ProperKubeVersions(*candidates)) facts.add_kubeadm_candidates(v);
    } else {
      problems.push_back(
          absl::StrCat("listing the kubeadm versions failed: ", candidates.status().message()));
    }

    if (facts.kubeadm_version().empty()) {
      if (installed.ok()) {
        problems.push_back("kubeadm is not installed, so the next minor is unknown");
      }
    } else {
      absl::StatusOr<std::string> next = NextMinor(facts.kubeadm_version());
      if (!next.ok()) {
        problems.push_back(
            absl::StrCat("the installed kubeadm \"", facts.kubeadm_version(),
                         "\" is not a Kubernetes version: ", next.status().message()));
      } else {
        facts.set_next_minor(*next);
        absl::StatusOr<bool> available = ProbeMinor(*next);
        if (available.ok()) {
          facts.set_next_minor_available(*available);
        } else {
          problems.push_back(absl::StrCat("cannot tell whether Kubernetes ", *next,
                                          " is available: ", available.status().message()));
        }
      }
    }
  }
  *facts.mutable_checked_time() = ToProtoTimestamp(clock_.Now());
  facts.set_check_error(absl::StrJoin(problems, "; "));
  return facts;
}

absl::StatusOr<bool> VersionDetector::ProbeMinor(const std::string& minor) {
  ASSIGN_OR_RETURN(const std::string first_url,
                   ReleaseUrlForMinor(options_.repo_url_pattern, minor));
  std::string url = first_url;
  const absl::Time deadline = clock_.Now() + options_.probe_timeout;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    HttpClient::Request request;
    request.method = "GET";
    request.url = url;
    request.timeout = std::max(deadline - clock_.Now(), absl::Seconds(1));
    request.max_response_bytes = kMaxReleaseBytes;
    ASSIGN_OR_RETURN(HttpClient::Response response, http_.Send(request));
    const int code = response.status_code;
    if (response.ok()) return true;
    if (code == 403 || code == 404 || code == 410) return false;
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
      std::string location = response.Header("location");
      if (location.empty()) {
        return absl::UnavailableError(
            absl::StrCat("GET ", RedactUrlPassword(url), ": HTTP ", code, " without a Location"));
      }
      if (location[0] == '/') location = Origin(url) + location;
      if (!IsHttpUrl(location)) {
        return absl::UnavailableError(absl::StrCat("GET ", RedactUrlPassword(url),
                                                   ": redirected to \"", location,
                                                   "\", which is not an http(s) URL"));
      }
      url = std::move(location);
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("GET ", RedactUrlPassword(url), ": HTTP ", code, " (expected 200 or 404)"));
  }
  return absl::UnavailableError(
      absl::StrCat("more than ", kMaxRedirects, " redirects from ", RedactUrlPassword(first_url)));
}

}  // namespace tended::agent::k8s
