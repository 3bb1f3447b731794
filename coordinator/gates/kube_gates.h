// The gates that come from Kubernetes facts, added to the others when the coordinator's
// `kubernetes:` section is enabled: the API answers ("kubernetes"), every node is Ready
// ("node_ready"), no node became Ready within the soak ("ready_soak"), the CNI DaemonSet
// runs everywhere ("cni") and enough pods are ready ("pod_ready"). Pure functions of the
// facts, like every gate; nodes holding a lease are counted by the concurrency gate, not
// here.
#ifndef TENDED_COORDINATOR_GATES_KUBE_GATES_H_
#define TENDED_COORDINATOR_GATES_KUBE_GATES_H_

#include <vector>

#include "absl/time/time.h"
#include "coordinator/config/config.h"
#include "coordinator/gates/gate_facts.h"
#include "coordinator/gates/gate.h"

namespace tended::coordinator {

GateOutcome KubernetesApiGate(const GateFacts& facts, const KubernetesConfig& config,
                              absl::Time now);
GateOutcome NodeReadyGate(const GateFacts& facts);
GateOutcome ReadySoakGate(const LeasePolicy& policy, const GateFacts& facts, absl::Time now);
GateOutcome CniGate(const GateFacts& facts, const KubernetesConfig& config);
GateOutcome PodReadyGate(const GateFacts& facts, const KubernetesConfig& config);

// Appends the gates above (cni and pod_ready only when configured) when Kubernetes is
// enabled; nothing otherwise.
void AppendKubernetesGates(const LeasePolicy& policy, const GateFacts& facts,
                           const CoordinatorConfig& config, absl::Time now,
                           std::vector<GateOutcome>& outcomes);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_KUBE_GATES_H_
