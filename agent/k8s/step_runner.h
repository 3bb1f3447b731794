// Runs the typed steps of a K8S_UPGRADE lease on this node. A step is never a command
// string: each kind maps to apt engine calls (unhold, install the pinned version, hold again)
// or to a fixed argument list through the CommandRunner seam (kubeadm, systemctl). The work
// is validated against what the node has installed before anything runs (versions strict,
// never down, at most one minor above the running one, each kind on the role it belongs to).
// Every step is idempotent: run again after a crash, or on a node already at the target, it
// changes nothing more.
#ifndef TENDED_AGENT_K8S_STEP_RUNNER_H_
#define TENDED_AGENT_K8S_STEP_RUNNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/apt/package_manager.h"
#include "agent/k8s/command_runner.h"
#include "common/clock.h"
#include "common/root_path.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::agent::k8s {

// What the node has installed now (kubeadm, kubelet, kubectl, containerd, control_plane).
class InstalledK8sReader {
 public:
  virtual ~InstalledK8sReader() = default;
  virtual absl::StatusOr<tended::v1::K8sNodeFacts> Read() = 0;
};

// From dpkg's status file under the root (ReadInstalledK8s). The agent reads it for every
// report and before every step, and the file runs to megabytes: it is parsed again only when
// it changed (dpkg replaces it by rename: another inode, size or mtime). Thread-safe.
class DpkgInstalledK8sReader final : public InstalledK8sReader {
 public:
  explicit DpkgInstalledK8sReader(RootPath root) : root_(std::move(root)) {}
  absl::StatusOr<tended::v1::K8sNodeFacts> Read() override;

 private:
  struct FileKey {
    uint64_t inode = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const FileKey&) const = default;
  };

  const RootPath root_;
  absl::Mutex mutex_;
  std::optional<FileKey> parsed_key_ ABSL_GUARDED_BY(mutex_);
  tended::v1::K8sNodeFacts parsed_ ABSL_GUARDED_BY(mutex_);
};

// Takes an etcd snapshot into the configured folder and prunes the old ones.
class EtcdSnapshotter {
 public:
  virtual ~EtcdSnapshotter() = default;
  virtual absl::StatusOr<tended::v1::EtcdSnapshotRecord> Take() = 0;
};

struct StepRunnerOptions {
  // The programs, resolved under the root like every path the agent touches.
  std::string kubeadm_path = "/usr/bin/kubeadm";
  std::string systemctl_path = "/usr/bin/systemctl";
  // Resolved under the root.
  std::string apt_source_file = "/etc/apt/sources.list.d/kubernetes.list";
  std::string repo_url_pattern = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";
  absl::Duration kubeadm_timeout = absl::Minutes(20);
  absl::Duration systemctl_timeout = absl::Minutes(2);
};

struct StepOutcome {
  // What was done, for the report ("kubeadm 1.31.2-1.1 -> 1.31.4-1.1").
  std::string message;
  std::optional<tended::v1::EtcdSnapshotRecord> snapshot;
};

class K8sStepRunner {
 public:
  struct Dependencies {
    apt::PackageManager* packages = nullptr;
    CommandRunner* commands = nullptr;
    InstalledK8sReader* installed = nullptr;
    EtcdSnapshotter* etcd = nullptr;  // Optional: without it ETCD_SNAPSHOT fails.
  };

  // Every dependency but `etcd` is required; all must outlive the runner.
  K8sStepRunner(Dependencies dependencies, RootPath root, StepRunnerOptions options);

  // INVALID_ARGUMENT (a malformed version or step) or FAILED_PRECONDITION (a downgrade, a
  // two-minor jump, a step for another role, a control plane step on a worker) when the
  // lease's work must not run here; the message names the step.
  absl::Status ValidateWork(const tended::v1::K8sUpgradeWork& work);

  // Runs one step of work ValidateWork accepted. Errors say what failed, with the end of a
  // command's output.
  absl::StatusOr<StepOutcome> Run(const tended::v1::K8sStep& step);

 private:
  absl::StatusOr<StepOutcome> InstallAtTarget(const std::vector<std::string>& packages,
                                              const std::string& target);
  absl::StatusOr<StepOutcome> FixContainerd(const tended::v1::K8sStep& step);
  absl::StatusOr<StepOutcome> SwitchAptSource(const std::string& target);
  absl::StatusOr<StepOutcome> RunCommands(const std::vector<std::vector<std::string>>& commands,
                                          absl::Duration timeout);

  Dependencies deps_;
  const RootPath root_;
  const StepRunnerOptions options_;
};

// Whether `version` looks like a Debian package version apt would take as is (a digit
// first, then [0-9A-Za-z.+~:-], at most 64 characters).
bool IsPlainDebianVersion(const std::string& version);

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_STEP_RUNNER_H_
