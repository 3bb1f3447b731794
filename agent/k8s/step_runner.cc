#include "agent/k8s/step_runner.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/k8s/apt_source.h"
#include "agent/k8s/version_detector.h"
#include "common/file_util.h"
#include "common/k8s_steps.h"
#include "common/kube_version.h"
#include "common/node_file.h"
#include "common/status_macros.h"

namespace tended::agent::k8s {
namespace {

using tended::v1::K8sStep;
using tended::v1::K8sUpgradeWork;

// A lease carries a handful of steps; anything far beyond is not the coordinator's work.
constexpr int kMaxStepsPerLease = 16;
// How much of a failed command's output goes into the step's report.
constexpr size_t kOutputInMessage = 1500;

bool IsControlPlaneStep(tended::v1::K8sStepKind kind) {
  return kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT ||
         kind == tended::v1::K8S_STEP_KIND_KUBEADM_PLAN ||
         kind == tended::v1::K8S_STEP_KIND_KUBEADM_APPLY ||
         kind == tended::v1::K8S_STEP_KIND_CONTAINERD_FIX;
}

bool OnlyFirstControlPlane(tended::v1::K8sStepKind kind) {
  return kind == tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT ||
         kind == tended::v1::K8S_STEP_KIND_KUBEADM_PLAN ||
         kind == tended::v1::K8S_STEP_KIND_KUBEADM_APPLY;
}

// The Kubernetes version of each installed kubeadm, kubelet and kubectl.
absl::StatusOr<std::vector<std::pair<std::string, KubeVersion>>> InstalledVersions(
    const tended::v1::K8sNodeFacts& facts) {
  std::vector<std::pair<std::string, KubeVersion>> out;
  for (const auto& [name, version] :
       {std::pair<std::string, std::string>{"kubeadm", facts.kubeadm_version()},
        {"kubelet", facts.kubelet_version()},
        {"kubectl", facts.kubectl_version()}}) {
    if (version.empty()) continue;
    absl::StatusOr<KubeVersion> parsed = ParseReportedVersion(version);
    if (!parsed.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("the installed ", name, " version \"",
                                                        version, "\" is not a Kubernetes version"));
    }
    out.emplace_back(name, *parsed);
  }
  return out;
}

// The Debian version of `package` the lists offer for `target`, newest first.
absl::StatusOr<std::string> DebianVersionFor(apt::PackageManager& packages,
                                             const std::string& package,
                                             const KubeVersion& target) {
  ASSIGN_OR_RETURN(std::vector<std::string> versions, packages.AvailableVersions(package));
  for (const std::string& version : versions) {
    if (PackageVersionIs(version, target)) return version;
  }
  return absl::NotFoundError(absl::StrCat(
      "the apt lists offer no ", package, " ", target.ToString(),
      versions.empty() ? " (they offer no version of it at all)"
                       : absl::StrCat(" (they offer ", absl::StrJoin(versions, ", "), ")")));
}

}  // namespace

bool IsPlainDebianVersion(const std::string& version) {
  if (version.empty() || version.size() > 64) return false;
  if (!absl::ascii_isdigit(static_cast<unsigned char>(version[0]))) return false;
  return std::all_of(version.begin(), version.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '~' ||
           c == ':' || c == '-';
  });
}

absl::StatusOr<tended::v1::K8sNodeFacts> DpkgInstalledK8sReader::Read() {
  const std::string status_path = root_.Resolve(kDpkgStatusPath);
  struct stat st;
  std::optional<FileKey> key;
  if (::stat(status_path.c_str(), &st) == 0) {
    key = FileKey{static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  }
  absl::MutexLock lock(&mutex_);
  if (key.has_value() && parsed_key_ == key) {
    tended::v1::K8sNodeFacts facts = parsed_;
    facts.set_control_plane(NodeFileExists(root_, kApiServerManifestPath));
    return facts;
  }
  absl::StatusOr<tended::v1::K8sNodeFacts> facts = ReadInstalledK8s(root_);
  if (facts.ok() && key.has_value()) {
    parsed_key_ = key;
    parsed_ = *facts;
  } else {
    parsed_key_.reset();
  }
  return facts;
}

K8sStepRunner::K8sStepRunner(Dependencies dependencies, RootPath root, StepRunnerOptions options)
    : deps_(dependencies), root_(std::move(root)), options_(std::move(options)) {}

absl::Status K8sStepRunner::ValidateWork(const K8sUpgradeWork& work) {
  absl::StatusOr<KubeVersion> target = ParseTargetVersion(work.target_version());
  if (!target.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the lease's target_version: ", target.status().message()));
  }
  if (!tended::v1::K8sNodeRole_IsValid(work.role()) ||
      work.role() == tended::v1::K8S_NODE_ROLE_UNSPECIFIED) {
    return absl::InvalidArgumentError("the lease names no node role");
  }
  if (work.steps().empty() || work.steps_size() > kMaxStepsPerLease) {
    return absl::InvalidArgumentError(absl::StrCat("the lease carries ", work.steps_size(),
                                                   " steps (1 to ", kMaxStepsPerLease, ")"));
  }
  ASSIGN_OR_RETURN(tended::v1::K8sNodeFacts installed, deps_.installed->Read());
  for (const K8sStep& step : work.steps()) {
    if (!tended::v1::K8sStepKind_IsValid(step.kind()) ||
        step.kind() == tended::v1::K8S_STEP_KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("the lease carries an unknown step kind ", static_cast<int>(step.kind())));
    }
    const std::string name = K8sStepName(step.kind());
    if (step.target_version() != work.target_version()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": its target \"", step.target_version(),
                                                     "\" is not the lease's ", target->ToString()));
    }
    if (step.kind() == tended::v1::K8S_STEP_KIND_CONTAINERD_FIX &&
        !IsPlainDebianVersion(step.containerd_version())) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": \"", step.containerd_version(),
                                                     "\" is not a Debian package version"));
    }
    if (IsControlPlaneStep(step.kind()) && !installed.control_plane()) {
      return absl::FailedPreconditionError(
          absl::StrCat(name, " runs on a control plane only, and this node runs none (no ",
                       kApiServerManifestPath, ")"));
    }
    if (OnlyFirstControlPlane(step.kind()) &&
        work.role() != tended::v1::K8S_NODE_ROLE_FIRST_CONTROL_PLANE) {
      return absl::FailedPreconditionError(
          absl::StrCat(name, " belongs to the first control plane, and this lease makes the node ",
                       tended::v1::K8sNodeRole_Name(work.role())));
    }
  }
  ASSIGN_OR_RETURN(auto versions, InstalledVersions(installed));
  if (versions.empty()) {
    return absl::FailedPreconditionError(
        "neither kubeadm, kubelet nor kubectl is installed: this is not a kubeadm node");
  }
  for (const auto& [name, version] : versions) {
    if (*target < version) {
      return absl::FailedPreconditionError(
          absl::StrCat("the installed ", name, " is ", version.ToString(), "; going to ",
                       target->ToString(), " would be a downgrade"));
    }
    if (target->major != version.major || target->minor > version.minor + 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("the installed ", name, " is ", version.ToString(), "; ", target->ToString(),
                       " is more than one minor above it (kubeadm upgrades one minor at a time)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StepOutcome> K8sStepRunner::Run(const K8sStep& step) {
  ASSIGN_OR_RETURN(KubeVersion target, ParseTargetVersion(step.target_version()));
  const std::string tag = target.ToTag();
  switch (step.kind()) {
    case tended::v1::K8S_STEP_KIND_ETCD_SNAPSHOT: {
      if (deps_.etcd == nullptr) {
        return absl::FailedPreconditionError(
            "this agent has no etcd snapshot configuration (k8s.etcd in its configuration)");
      }
      ASSIGN_OR_RETURN(tended::v1::EtcdSnapshotRecord record, deps_.etcd->Take());
      StepOutcome outcome;
      outcome.message = absl::StrCat(record.path(), ", ", record.size_bytes(), " bytes, sha256 ",
                                     record.sha256());
      outcome.snapshot = std::move(record);
      return outcome;
    }
    case tended::v1::K8S_STEP_KIND_CONTAINERD_FIX:
      return FixContainerd(step);
    case tended::v1::K8S_STEP_KIND_APT_SOURCE_SWITCH:
      return SwitchAptSource(step.target_version());
    case tended::v1::K8S_STEP_KIND_KUBEADM_PACKAGE:
      return InstallAtTarget({"kubeadm"}, step.target_version());
    case tended::v1::K8S_STEP_KIND_KUBEADM_PLAN:
      return RunCommands({{options_.kubeadm_path, "upgrade", "plan", tag}},
                         options_.kubeadm_timeout);
    case tended::v1::K8S_STEP_KIND_KUBEADM_APPLY:
      return RunCommands({{options_.kubeadm_path, "upgrade", "apply", tag, "--yes"}},
                         options_.kubeadm_timeout);
    case tended::v1::K8S_STEP_KIND_KUBEADM_NODE:
      return RunCommands({{options_.kubeadm_path, "upgrade", "node"}}, options_.kubeadm_timeout);
    case tended::v1::K8S_STEP_KIND_KUBELET_PACKAGES:
      return InstallAtTarget({"kubelet", "kubectl"}, step.target_version());
    case tended::v1::K8S_STEP_KIND_KUBELET_RESTART:
      return RunCommands({{options_.systemctl_path, "daemon-reload"},
                          {options_.systemctl_path, "restart", "kubelet"}},
                         options_.systemctl_timeout);
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown step kind ", static_cast<int>(step.kind())));
}

absl::StatusOr<StepOutcome> K8sStepRunner::InstallAtTarget(const std::vector<std::string>& packages,
                                                           const std::string& target_text) {
  ASSIGN_OR_RETURN(KubeVersion target, ParseTargetVersion(target_text));
  ASSIGN_OR_RETURN(tended::v1::K8sNodeFacts installed, deps_.installed->Read());
  auto installed_version = [&](const std::string& package) -> std::string {
    if (package == "kubeadm") return installed.kubeadm_version();
    if (package == "kubelet") return installed.kubelet_version();
    if (package == "kubectl") return installed.kubectl_version();
    return "";
  };
  std::vector<apt::PinnedVersion> pins;
  std::vector<std::string> already;
  bool refreshed = false;
  for (const std::string& package : packages) {
    const std::string now = installed_version(package);
    if (PackageVersionIs(now, target)) {
      already.push_back(absl::StrCat(package, " ", now));
      continue;
    }
    absl::StatusOr<std::string> version = DebianVersionFor(*deps_.packages, package, target);
    if (absl::IsNotFound(version.status()) && !refreshed) {
      // The lists may be older than the release: refresh them once and look again.
      RETURN_IF_ERROR(deps_.packages->Update());
      refreshed = true;
      version = DebianVersionFor(*deps_.packages, package, target);
    }
    if (!version.ok()) return version.status();
    pins.push_back({package, *version});
  }
  StepOutcome outcome;
  if (!pins.empty()) {
    ASSIGN_OR_RETURN(apt::ApplyResult result, deps_.packages->InstallPinned(pins, nullptr));
    std::vector<std::string> changes;
    for (const apt::PackageUpgrade& upgrade : result.installed) {
      changes.push_back(absl::StrCat(
          upgrade.package, " ", upgrade.from.empty() ? "(new)" : upgrade.from, " -> ", upgrade.to));
    }
    if (!result.skipped.empty()) {
      std::vector<std::string> skipped;
      for (const apt::KeptPackage& kept : result.skipped) {
        skipped.push_back(absl::StrCat(kept.package, ": ", kept.reason));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("not installed: ", absl::StrJoin(skipped, "; ")));
    }
    outcome.message = absl::StrJoin(changes, ", ");
  }
  if (!already.empty()) {
    absl::StrAppend(&outcome.message, outcome.message.empty() ? "" : "; ",
                    "already at target: ", absl::StrJoin(already, ", "));
  }
  // What dpkg says now is what counts.
  ASSIGN_OR_RETURN(installed, deps_.installed->Read());
  for (const std::string& package : packages) {
    if (!PackageVersionIs(installed_version(package), target)) {
      return absl::InternalError(absl::StrCat(
          package, " is ",
          installed_version(package).empty() ? "not installed" : installed_version(package),
          " after the install, not ", target.ToString()));
    }
  }
  return outcome;
}

absl::StatusOr<StepOutcome> K8sStepRunner::FixContainerd(const K8sStep& step) {
  ASSIGN_OR_RETURN(tended::v1::K8sNodeFacts installed, deps_.installed->Read());
  StepOutcome outcome;
  if (installed.containerd_version() == step.containerd_version()) {
    outcome.message = absl::StrCat("containerd is already ", step.containerd_version());
    return outcome;
  }
  // Docker's repository names it containerd.io, Debian's containerd.
  ASSIGN_OR_RETURN(std::vector<std::string> dot_io,
                   deps_.packages->AvailableVersions("containerd.io"));
  const std::string package =
      std::find(dot_io.begin(), dot_io.end(), step.containerd_version()) != dot_io.end()
          ? "containerd.io"
          : "containerd";
  ASSIGN_OR_RETURN(apt::ApplyResult result,
                   deps_.packages->InstallPinned({{package, step.containerd_version()}}, nullptr));
  if (!result.skipped.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "not installed: ", result.skipped.front().package, ": ", result.skipped.front().reason));
  }
  ASSIGN_OR_RETURN(installed, deps_.installed->Read());
  if (installed.containerd_version() != step.containerd_version()) {
    return absl::InternalError(absl::StrCat("containerd is ", installed.containerd_version(),
                                            " after the install, not ", step.containerd_version()));
  }
  outcome.message = absl::StrCat(package, " ", installed.containerd_version());
  return outcome;
}

absl::StatusOr<StepOutcome> K8sStepRunner::SwitchAptSource(const std::string& target_text) {
  ASSIGN_OR_RETURN(KubeVersion target, ParseTargetVersion(target_text));
  const std::string path = root_.Resolve(options_.apt_source_file);
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(SourceSwitch switched,
                   SwitchSourceMinor(text, options_.repo_url_pattern, target));
  StepOutcome outcome;
  if (switched.lines_changed > 0) {
    struct stat st;
    const int mode = ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : 0644;
    RETURN_IF_ERROR(WriteFileAtomically(path, switched.text, mode));
    outcome.message =
        absl::StrCat(options_.apt_source_file, ": ", switched.from_minor, " -> ", target.major, ".",
                     target.minor, " (", switched.lines_changed,
                     switched.lines_changed == 1 ? " line" : " lines", "); lists refreshed");
  } else {
    outcome.message = absl::StrCat(options_.apt_source_file, " already names ", target.major, ".",
                                   target.minor, "; lists refreshed");
  }
  // Refreshed either way: a crash after the rewrite and before the refresh resumes here.
  RETURN_IF_ERROR(deps_.packages->Update());
  return outcome;
}

absl::StatusOr<StepOutcome> K8sStepRunner::RunCommands(
    const std::vector<std::vector<std::string>>& commands, absl::Duration timeout) {
  StepOutcome outcome;
  std::vector<std::string> ran;
  for (std::vector<std::string> argv : commands) {
    const std::string what = DescribeCommand(argv);
    argv[0] = root_.Resolve(argv[0]);
    absl::StatusOr<CommandResult> result = deps_.commands->Run(argv, timeout);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat(what, ": ", result.status().message()));
    }
    if (result->exit_code != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " exited with ", result->exit_code, ": ",
                       OutputTail(result->output, kOutputInMessage)));
    }
    ran.push_back(what);
  }
  outcome.message = absl::StrCat(absl::StrJoin(ran, ", then "), ": exited 0");
  return outcome;
}

}  // namespace tended::agent::k8s
