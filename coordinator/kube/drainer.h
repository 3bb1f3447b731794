// Cordon, drain and uncordon a node the way `kubectl drain` does, against a KubeClient:
// cordon with a merge patch guarded by the node's resourceVersion (retrying 409s), list
// the node's pods, filter them as kubectl does (DaemonSet and mirror pods stay, emptyDir
// and unmanaged pods only when allowed), evict through the Eviction API retrying
// PodDisruptionBudget refusals (429) until the timeout, then wait until the evicted pods
// are gone. Whether the node was cordoned before is reported, so that the caller never
// uncordons an operator's cordon. All waiting goes through the injected Clock and Sleeper
// and every loop is bounded by the timeout and a round limit.
#ifndef TENDED_COORDINATOR_KUBE_DRAINER_H_
#define TENDED_COORDINATOR_KUBE_DRAINER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/kube/kube_client.h"

namespace tended::kube {

// Waits. The real one sleeps; tests pass one that advances a fake clock.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void Sleep(absl::Duration duration) = 0;

  // Sleeps the calling thread. Thread-safe.
  static Sleeper& Real();
};

struct DrainOptions {
  // Given to every evicted pod; unset (kubectl's -1) leaves each pod's own
  // terminationGracePeriodSeconds.
  std::optional<absl::Duration> grace_period;
  // The whole drain (evictions and waiting for the pods to go) must finish within this.
  absl::Duration timeout = absl::Minutes(15);
  // Evict pods that use emptyDir volumes (their data is lost); otherwise they fail the drain.
  bool delete_emptydir_data = false;
  // Evict pods without a controller, and pods of a DaemonSet that no longer exists;
  // otherwise they fail the drain (kubectl --force).
  bool force_unmanaged = false;
  // Pods whose deletion started longer ago than this are skipped; zero never skips them.
  absl::Duration skip_wait_for_delete_timeout = absl::ZeroDuration();
  // A pod on the node that is not finished and matches all labels of any one of these
  // selectors fails the drain before anything is cordoned (kured --blocking-pod-selector).
  std::vector<std::map<std::string, std::string>> blocking_pod_selectors;
  // Wait after a 429 that carries no retryAfterSeconds (kubectl: 5 s).
  absl::Duration pdb_retry_default = absl::Seconds(5);
  // How often to check whether evicted pods are gone (kubectl: 1 s).
  absl::Duration poll_interval = absl::Seconds(1);
  // 409 conflicts tolerated while cordoning or uncordoning.
  int conflict_retries = 5;
  // A hard bound on loop passes, whatever the clock does.
  int max_rounds = 100000;
};

// What the filters decided for one pod.
enum class PodDisposition {
  kEvict,
  kSkipDaemonSet,
  kSkipMirror,
  kSkipDeleting,  // Being deleted for longer than skip_wait_for_delete_timeout.
  kRefuseEmptyDir,
  kRefuseUnmanaged,
  kRefuseOrphanedDaemonSet,
};

// kubectl's filters in its order. `daemon_set_exists` matters only for DaemonSet pods.
PodDisposition ClassifyPod(const PodInfo& pod, const DrainOptions& options, absl::Time now,
                           bool daemon_set_exists);

struct CordonResult {
  // The node was unschedulable before we came (or an operator cordoned it while we
  // tried): it is not ours to uncordon.
  bool was_already_cordoned = false;
  NodeInfo node;
};

struct DrainReport {
  std::vector<std::string> evicted;       // "ns/name", evicted and confirmed gone.
  std::vector<std::string> already_gone;  // 404 on eviction.
  std::vector<std::string> skipped;       // "ns/name (DaemonSet)", ...
  int pdb_refusals = 0;                   // 429 answers received.
};

class Drainer {
 public:
  // `client`, `clock` and `sleeper` must outlive the Drainer. Not thread-safe: one drain at
  // a time per Drainer.
  Drainer(KubeClient& client, const Clock& clock, Sleeper& sleeper, DrainOptions options);

  // Sets spec.unschedulable=true unless it already is.
  absl::StatusOr<CordonResult> Cordon(const std::string& node);

  // Sets spec.unschedulable=false. Call only for a cordon that was ours.
  absl::Status Uncordon(const std::string& node);

  // FAILED_PRECONDITION naming the pod when a blocking pod runs on the node.
  absl::Status CheckBlockingPods(const std::string& node);

  // Evicts the node's pods and waits until they are gone. Does not cordon. Errors:
  // FAILED_PRECONDITION for pods the options do not allow to evict, a blocking pod or more
  // than one PodDisruptionBudget; DEADLINE_EXCEEDED naming the pods still there.
  absl::StatusOr<DrainReport> Drain(const std::string& node);

  // Blocking-pod check, Cordon, then Drain. The cordon facts are kept even when the drain
  // fails, so the caller can undo only its own cordon.
  struct CordonAndDrainResult {
    absl::Status status;
    bool cordoned_by_us = false;
    bool was_already_cordoned = false;
    DrainReport report;
  };
  CordonAndDrainResult CordonAndDrain(const std::string& node);

  const DrainOptions& options() const { return options_; }

 private:
  absl::Status SetUnschedulable(const std::string& node, bool value, bool* was_already);

  KubeClient& client_;
  const Clock& clock_;
  Sleeper& sleeper_;
  const DrainOptions options_;
};

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_DRAINER_H_
