#include "common/kube_version.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "re2/re2.h"

namespace tended {
namespace {

constexpr int kMaxPart = 999;

absl::StatusOr<KubeVersion> FromParts(absl::string_view text, absl::string_view major,
                                      absl::string_view minor, absl::string_view patch) {
  KubeVersion version;
  if (major.size() > 3 || minor.size() > 3 || patch.size() > 3 ||
      !absl::SimpleAtoi(major, &version.major) || !absl::SimpleAtoi(minor, &version.minor) ||
      !absl::SimpleAtoi(patch, &version.patch) || version.minor > kMaxPart ||
      version.patch > kMaxPart) {
    return absl::InvalidArgumentError(
        absl::StrCat("version \"", text, "\": each part must be a number up to ", kMaxPart));
  }
  if (version.major != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("version \"", text, "\": only Kubernetes 1.x is supported"));
  }
  return version;
}

}  // namespace

std::string KubeVersion::ToString() const { return absl::StrCat(major, ".", minor, ".", patch); }

absl::StatusOr<KubeVersion> ParseTargetVersion(absl::string_view text) {
  static const RE2 kTarget(R"(v?(\d+)\.(\d+)\.(\d+))");
  std::string major, minor, patch;
  if (text.size() > 16 || !RE2::FullMatch(re2::StringPiece(text.data(), text.size()), kTarget,
                                          &major, &minor, &patch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target version \"", text.substr(0, 40),
                     "\" is not MAJOR.MINOR.PATCH (digits only, such as 1.31.4)"));
  }
  return FromParts(text, major, minor, patch);
}

absl::StatusOr<KubeVersion> ParseReportedVersion(absl::string_view text) {
  static const RE2 kReported(R"(v?(\d+)\.(\d+)\.(\d+)(?:[-+~][0-9A-Za-z.+~-]*)?)");
  std::string major, minor, patch;
  if (text.size() > 64 || !RE2::FullMatch(re2::StringPiece(text.data(), text.size()), kReported,
                                          &major, &minor, &patch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("reported version \"", text.substr(0, 64), "\" is not a Kubernetes version"));
  }
  return FromParts(text, major, minor, patch);
}

bool PackageVersionIs(absl::string_view package_version, const KubeVersion& version) {
  static const RE2 kPackage(R"((\d+)\.(\d+)\.(\d+)-[0-9A-Za-z.+~]+)");
  std::string major, minor, patch;
  if (!RE2::FullMatch(re2::StringPiece(package_version.data(), package_version.size()), kPackage,
                      &major, &minor, &patch))
    return false;
  auto parsed = FromParts(package_version, major, minor, patch);
  return parsed.ok() && *parsed == version;
}

absl::Status ValidateUpgrade(const KubeVersion& running, const KubeVersion& target,
                             tended::v1::K8sUpgradeKind kind) {
  if (target < running) {
    return absl::FailedPreconditionError(
        absl::StrCat("target ", target.ToString(), " is older than the running ",
                     running.ToString(), "; kubeadm does not downgrade"));
  }
  switch (kind) {
    case tended::v1::K8S_UPGRADE_KIND_PATCH:
      if (!target.SameMinor(running)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "a patch upgrade stays within ", running.major, ".", running.minor, "; target ",
            target.ToString(), " is a different minor (start a minor rollout)"));
      }
      return absl::OkStatus();
    case tended::v1::K8S_UPGRADE_KIND_MINOR:
      if (target.major != running.major || target.minor != running.minor + 1) {
        if (target.SameMinor(running)) {
          return absl::FailedPreconditionError(
              absl::StrCat("target ", target.ToString(), " is in the running minor ", running.major,
                           ".", running.minor, " (start a patch rollout)"));
        }
        return absl::FailedPreconditionError(absl::StrCat(
            "a minor upgrade goes one minor at a time: from ", running.ToString(), " only to ",
            running.major, ".", running.minor + 1, ".x, not ", target.ToString()));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("upgrade kind must be patch or minor");
  }
}

absl::Status CheckKubeletSkew(const KubeVersion& target,
                              const std::map<std::string, KubeVersion>& kubelets) {
  std::vector<std::string> problems;
  for (const auto& [node, kubelet] : kubelets) {
    if (kubelet.major != target.major || kubelet.minor > target.minor) {
      problems.push_back(absl::StrCat(node, " runs kubelet ", kubelet.ToString(),
                                      ", newer than the target ", target.ToString()));
    } else if (target.minor - kubelet.minor > kMaxKubeletMinorsBehind) {
      problems.push_back(absl::StrCat(node, " runs kubelet ", kubelet.ToString(), ", more than ",
                                      kMaxKubeletMinorsBehind, " minors behind ",
                                      target.ToString()));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("version skew policy: ", absl::StrJoin(problems, "; ")));
}

int MinorSpread(const std::map<std::string, KubeVersion>& versions) {
  if (versions.empty()) return 0;
  int lowest = versions.begin()->second.minor;
  int highest = lowest;
  for (const auto& [node, version] : versions) {
    lowest = std::min(lowest, version.minor);
    highest = std::max(highest, version.minor);
  }
  return highest - lowest;
}

}  // namespace tended
