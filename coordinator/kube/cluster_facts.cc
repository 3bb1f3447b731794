#include "coordinator/kube/cluster_facts.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace tended::kube {

PodReadiness ComputePodReadiness(const std::vector<PodInfo>& pods) {
  PodReadiness readiness;
  for (const PodInfo& pod : pods) {
    if (pod.IsTerminal() || pod.deletion_timestamp.has_value()) continue;
    ++readiness.counted;
    if (pod.phase == "Running" && pod.ready) ++readiness.ready;
  }
  return readiness;
}

bool DaemonSetReadyEverywhere(const DaemonSetInfo& ds, std::string* reason) {
  std::string name = absl::StrCat(ds.namespace_name, "/", ds.name);
  if (ds.desired_number_scheduled <= 0) {
    *reason = absl::StrCat(name, ": no pods scheduled");
    return false;
  }
  if (ds.number_ready < ds.desired_number_scheduled ||
      ds.number_available < ds.desired_number_scheduled) {
    *reason = absl::StrCat(name, ": ", ds.number_ready, " of ", ds.desired_number_scheduled,
                           " ready, ", ds.number_available, " available");
    return false;
  }
  *reason =
      absl::StrCat(name, ": ", ds.number_ready, " of ", ds.desired_number_scheduled, " ready");
  return true;
}

absl::StatusOr<KubeFacts> CollectKubeFacts(KubeClient& client, const KubeFactsOptions& options,
                                           const Clock& clock) {
  KubeFacts facts;
  facts.collected_at = clock.Now();
  ASSIGN_OR_RETURN(KubeClient::NodeList list, client.ListNodes(options.node_label_selector));
  facts.nodes = std::move(list.nodes);
  facts.resource_version = std::move(list.resource_version);
  if (!options.cni_daemonset_name.empty()) {
    ASSIGN_OR_RETURN(facts.cni, client.GetDaemonSet(options.cni_daemonset_namespace,
                                                    options.cni_daemonset_name));
  }
  if (options.collect_pod_readiness) {
    ASSIGN_OR_RETURN(std::vector<PodInfo> pods, client.ListPods(PodListOptions()));
    facts.pods = ComputePodReadiness(pods);
  }
  if (!options.blocking_pod_selectors.empty()) {
    std::map<std::string, std::vector<std::string>>& blocking = facts.blocking_pods.emplace();
    for (const auto& selector : options.blocking_pod_selectors) {
      PodListOptions list;
      std::vector<std::string> terms;
      for (const auto& [key, value] : selector) terms.push_back(absl::StrCat(key, "=", value));
      list.label_selector = absl::StrJoin(terms, ",");
      ASSIGN_OR_RETURN(std::vector<PodInfo> pods, client.ListPods(list));
      for (const PodInfo& pod : pods) {
        if (pod.node_name.empty() || pod.IsTerminal() || pod.deletion_timestamp.has_value()) {
          continue;
        }
        std::vector<std::string>& names = blocking[pod.node_name];
        if (std::find(names.begin(), names.end(), pod.FullName()) == names.end()) {
          names.push_back(pod.FullName());
        }
      }
    }
  }
  return facts;
}

}  // namespace tended::kube
