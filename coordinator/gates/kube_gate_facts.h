// What the Kubernetes API last told the coordinator, as the gates see it: the facts (or
// why they could not be read) and where they came from. Kept apart from gates.h so that
// the gates stay free of any client.
#ifndef TENDED_COORDINATOR_GATES_KUBE_GATE_FACTS_H_
#define TENDED_COORDINATOR_GATES_KUBE_GATE_FACTS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/kube/cluster_facts.h"

namespace tended::coordinator {

struct KubeGateFacts {
  // Not OK when the API is not configured, unreachable, or answered garbage.
  absl::Status status = absl::UnavailableError("the Kubernetes API has not been read yet");
  // When the facts below were read (or the read failed).
  absl::Time checked_at = absl::InfinitePast();
  // The last good facts; kept while later reads fail, for the reasons. Shared, so that a
  // copy of these facts per decision costs nothing.
  std::shared_ptr<const kube::KubeFacts> facts;
  // "in-cluster" or the kubeconfig's path.
  std::string source;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_GATES_KUBE_GATE_FACTS_H_
