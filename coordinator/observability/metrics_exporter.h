// The coordinator's Prometheus metrics. Leases, gates, nodes and the halt are read from the
// Coordinator at scrape time (ListLeases, ListNodes, ExplainGates, which read the cached
// alerts and Kubernetes facts and never fetch), and so are its stats (refused fencing
// tokens, identity conflicts, recovery, directive streams); disruptions and events are
// counted from the durable event stream. docs/metrics.md lists every name. Thread-safe.
#ifndef TENDED_COORDINATOR_OBSERVABILITY_METRICS_EXPORTER_H_
#define TENDED_COORDINATOR_OBSERVABILITY_METRICS_EXPORTER_H_

#include "common/clock.h"
#include "common/metrics.h"
#include "coordinator/core/coordinator.h"
#include "tended/v1/types.pb.h"

namespace tended::coordinator {

class CoordinatorMetrics {
 public:
  // Registers the families in `registry`; the coordinator, clock and registry must outlive
  // this object.
  CoordinatorMetrics(Coordinator& coordinator, const Clock& clock, metrics::Registry& registry);

  // Counts one durable event. Quick and lock-light: safe inside the coordinator's event
  // listener.
  void OnEvent(const tended::v1::Event& event);

 private:
  void Collect(metrics::Collection& out);
  // Kubernetes versions and rollouts.
  void CollectK8s(const tended::v1::ListNodesResponse& nodes, metrics::Collection& out);

  Coordinator& coordinator_;
  const Clock& clock_;
  metrics::Counter& events_;
  metrics::Counter& disruptions_;
};

// "lease_granted" for EVENT_TYPE_LEASE_GRANTED.
std::string EventTypeLabel(tended::v1::EventType type);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_OBSERVABILITY_METRICS_EXPORTER_H_
