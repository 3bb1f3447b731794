// The facts Kubernetes contributes to the gates: every node's readiness (with the time of
// its last Ready transition, for the soak), boot id and kubelet version; optionally the CNI
// DaemonSet's desired and ready counts and the cluster's pod-ready ratio. Collected in one
// call; the gates themselves stay pure functions of these facts.
#ifndef TENDED_COORDINATOR_KUBE_CLUSTER_FACTS_H_
#define TENDED_COORDINATOR_KUBE_CLUSTER_FACTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/kube/kube_client.h"

namespace tended::kube {

struct KubeFactsOptions {
  std::string node_label_selector;
  // The CNI DaemonSet ("calico-system"/"calico-node"); empty name skips it.
  std::string cni_daemonset_namespace;
  std::string cni_daemonset_name;
  bool collect_pod_readiness = false;
  // Pods matching any of these (every label of one selector) block a disruption of their
  // node (kured's --blocking-pod-selector).
  std::vector<std::map<std::string, std::string>> blocking_pod_selectors;
};

struct PodReadiness {
  int64_t ready = 0;    // Running with the Ready condition True.
  int64_t counted = 0;  // Every pod not finished and not being deleted.
  // 1 when there is nothing to count.
  double Ratio() const { return counted == 0 ? 1.0 : static_cast<double>(ready) / counted; }
};

PodReadiness ComputePodReadiness(const std::vector<PodInfo>& pods);

// True when the DaemonSet wants at least one pod and every wanted pod is ready and
// available; otherwise false with `reason` ("calico-system/calico-node: 4 of 5 ready").
bool DaemonSetReadyEverywhere(const DaemonSetInfo& daemon_set, std::string* reason);

struct KubeFacts {
  absl::Time collected_at;
  std::vector<NodeInfo> nodes;
  std::string resource_version;  // Of the node list, to watch from.
  std::optional<DaemonSetInfo> cni;
  std::optional<PodReadiness> pods;
  // Set when blocking-pod selectors are configured: node -> its running pods that match
  // one ("namespace/name"). A node absent here has none.
  std::optional<std::map<std::string, std::vector<std::string>>> blocking_pods;
};

// Fails when any configured source fails (a gate then blocks, closed).
absl::StatusOr<KubeFacts> CollectKubeFacts(KubeClient& client, const KubeFactsOptions& options,
                                           const Clock& clock);

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_CLUSTER_FACTS_H_
