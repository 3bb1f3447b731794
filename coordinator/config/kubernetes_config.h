// The coordinator's `kubernetes:` configuration section: how to reach the API server
// (in-cluster or a kubeconfig), how to drain, which marks to put on a disrupted node, and
// which Kubernetes facts gate a disruption. Disabled by default: without it the
// coordinator never talks to Kubernetes and its leases carry no preparation step.
#ifndef TENDED_COORDINATOR_CONFIG_KUBERNETES_CONFIG_H_
#define TENDED_COORDINATOR_CONFIG_KUBERNETES_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/yaml_util.h"

namespace tended::coordinator {

struct KubernetesDrainConfig {
  absl::Duration timeout = absl::Minutes(15);
  // Unset leaves each pod's own terminationGracePeriodSeconds.
  std::optional<absl::Duration> grace_period;
  bool delete_emptydir_data = false;
  bool force_unmanaged = false;
  absl::Duration skip_wait_for_delete_timeout = absl::ZeroDuration();
};

struct KubernetesNodeMarksConfig {
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;
  // Also kured's weave.works/kured-reboot-in-progress and -most-recent-reboot-needed.
  bool kured_compatible = false;
};

struct KubernetesConfig {
  bool enabled = false;
  // Empty: the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT and its token).
  std::string kubeconfig;
  std::string context;
  // Which Kubernetes nodes the gates look at ("a=b,c!=d"); empty for all.
  std::string node_selector;
  KubernetesDrainConfig drain;
  // A pod on the node matching all labels of any one selector ("app=db,tier=x") blocks
  // its drain (kured --blocking-pod-selector).
  std::vector<std::map<std::string, std::string>> blocking_pod_selectors;
  // The CNI DaemonSet whose pods must run and be ready on every node; empty name: no gate.
  std::string cni_daemonset_namespace;
  std::string cni_daemonset_name;
  // Running-and-Ready pods over all pods must reach this ratio; 0 turns the gate off.
  double min_pod_ready_ratio = 0;
  KubernetesNodeMarksConfig node_marks;
  // A rebooted node must report this kubeletVersion ("v1.30.4"); empty: any.
  std::string expected_kubelet_version;
  // How often the Kubernetes facts are read again and a returning node is checked.
  absl::Duration poll_interval = absl::Seconds(5);
  // Gate facts older than this block (the API stopped answering).
  absl::Duration facts_max_age = absl::Minutes(1);
};

// Reads the `kubernetes:` mapping (null or absent leaves the defaults: disabled).
absl::Status ParseKubernetesConfig(const YamlCursor& cursor, KubernetesConfig* config);

// The rules between fields, for configurations built in code too.
absl::Status ValidateKubernetesConfig(const KubernetesConfig& config);

// "app=db,tier=x" into {app: db, tier: x}; INVALID_ARGUMENT naming the problem.
absl::Status ParseEqualitySelector(const std::string& text,
                                   std::map<std::string, std::string>* selector);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CONFIG_KUBERNETES_CONFIG_H_
