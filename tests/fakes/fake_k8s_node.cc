#include "tests/fakes/fake_k8s_node.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tended::testing {

void FakeCommandRunner::FailOn(const std::string& needle, int exit_code, const std::string& output,
                               int times) {
  absl::MutexLock lock(&mutex_);
  failures_.push_back({needle, exit_code, output, times});
}

void FakeCommandRunner::OnRun(std::function<void(const std::vector<std::string>&)> hook) {
  absl::MutexLock lock(&mutex_);
  hook_ = std::move(hook);
}

std::vector<std::string> FakeCommandRunner::calls() {
  absl::MutexLock lock(&mutex_);
  return calls_;
}

void FakeCommandRunner::ClearCalls() {
  absl::MutexLock lock(&mutex_);
  calls_.clear();
}

absl::StatusOr<agent::k8s::CommandResult> FakeCommandRunner::Run(
    const std::vector<std::string>& argv, absl::Duration) {
  std::function<void(const std::vector<std::string>&)> hook;
  {
    absl::MutexLock lock(&mutex_);
    const std::string joined = absl::StrJoin(argv, " ");
    calls_.push_back(joined);
    for (Failure& failure : failures_) {
      if (failure.times == 0 || !absl::StrContains(joined, failure.needle)) continue;
      if (failure.times > 0) --failure.times;
      return agent::k8s::CommandResult{failure.exit_code, failure.output};
    }
    hook = hook_;
  }
  if (hook) hook(argv);
  return agent::k8s::CommandResult{0, ""};
}

absl::StatusOr<tended::v1::K8sNodeFacts> FakeInstalledK8s::Read() {
  if (!error_.ok()) return error_;
  tended::v1::K8sNodeFacts facts;
  auto version = [&](const std::string& package) {
    auto it = packages_->installed.find(package);
    return it == packages_->installed.end() ? std::string() : it->second;
  };
  facts.set_kubeadm_version(version("kubeadm"));
  facts.set_kubelet_version(version("kubelet"));
  facts.set_kubectl_version(version("kubectl"));
  facts.set_containerd_version(version("containerd").empty() ? version("containerd.io")
                                                             : version("containerd"));
  facts.set_control_plane(control_plane_);
  return facts;
}

absl::StatusOr<tended::v1::EtcdSnapshotRecord> FakeEtcdSnapshotter::Take() {
  if (!fail_next_.ok()) {
    absl::Status error = fail_next_;
    fail_next_ = absl::OkStatus();
    return error;
  }
  ++taken_;
  tended::v1::EtcdSnapshotRecord record;
  record.set_path(absl::StrCat("/var/lib/tended/etcd-snapshots/fake-", taken_, ".db"));
  record.set_size_bytes(4096);
  record.set_sha256(std::string(64, 'a'));
  return record;
}

}  // namespace tended::testing
