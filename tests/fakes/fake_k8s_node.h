// Fakes for a node's Kubernetes side where nothing real can run here: a FakeCommandRunner
// standing in for kubeadm and systemctl (it records every argv, fails on demand, and can act
// like the program), and FakeInstalledK8s, which reads the installed kubeadm, kubelet,
// kubectl and containerd from a FakePackageManager. Thread-safe (the agent may run steps on
// a worker).
#ifndef TENDED_TESTS_FAKES_FAKE_K8S_NODE_H_
#define TENDED_TESTS_FAKES_FAKE_K8S_NODE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/k8s/command_runner.h"
#include "agent/k8s/step_runner.h"
#include "tests/fakes/fake_package_manager.h"

namespace tended::testing {

class FakeCommandRunner final : public agent::k8s::CommandRunner {
 public:
  // Calls whose joined argv ("/usr/bin/kubeadm upgrade node") contains `needle` exit with
  // `exit_code` printing `output`, `times` times (-1: always).
  void FailOn(const std::string& needle, int exit_code, const std::string& output, int times = 1);
  // Runs inside every successful call, e.g. to act like kubeadm.
  void OnRun(std::function<void(const std::vector<std::string>&)> hook);
  // Every argv run so far, joined by spaces.
  std::vector<std::string> calls();
  void ClearCalls();

  absl::StatusOr<agent::k8s::CommandResult> Run(const std::vector<std::string>& argv,
                                                absl::Duration timeout) override;

 private:
  struct Failure {
    std::string needle;
    int exit_code;
    std::string output;
    int times;
  };
  absl::Mutex mutex_;
  std::vector<Failure> failures_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mutex_);
  std::function<void(const std::vector<std::string>&)> hook_ ABSL_GUARDED_BY(mutex_);
};

class FakeInstalledK8s final : public agent::k8s::InstalledK8sReader {
 public:
  // `packages` must outlive this.
  FakeInstalledK8s(FakePackageManager* packages, bool control_plane)
      : packages_(packages), control_plane_(control_plane) {}
  absl::StatusOr<tended::v1::K8sNodeFacts> Read() override;
  void set_error(absl::Status error) { error_ = std::move(error); }

 private:
  FakePackageManager* packages_;
  bool control_plane_;
  absl::Status error_;
};

// An EtcdSnapshotter that writes nothing and returns a plausible record, or fails on demand.
class FakeEtcdSnapshotter final : public agent::k8s::EtcdSnapshotter {
 public:
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> Take() override;
  void FailNext(absl::Status error) { fail_next_ = std::move(error); }
  int taken() const { return taken_; }

 private:
  absl::Status fail_next_;
  int taken_ = 0;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_K8S_NODE_H_
