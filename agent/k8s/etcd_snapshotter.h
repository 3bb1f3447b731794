// The ETCD_SNAPSHOT step's real snapshotter: etcd's Maintenance.Snapshot through
// agent/etcd into <root>/<dir>/etcd-snapshot-<time>.db (folder 0700), then the oldest
// beyond the retention count deleted.
#ifndef TENDED_AGENT_K8S_ETCD_SNAPSHOTTER_H_
#define TENDED_AGENT_K8S_ETCD_SNAPSHOTTER_H_

#include <string>

#include "agent/etcd/snapshot.h"
#include "agent/k8s/step_runner.h"
#include "common/clock.h"
#include "common/root_path.h"

namespace tended::agent::k8s {

struct EtcdSnapshotterOptions {
  // Certificate paths are resolved under the root; the endpoint is used as is.
  etcd::SnapshotOptions snapshot;
  std::string dir = "/var/lib/tended/etcd-snapshots";
  int keep = 5;
};

class GrpcEtcdSnapshotter final : public EtcdSnapshotter {
 public:
  GrpcEtcdSnapshotter(EtcdSnapshotterOptions options, RootPath root, std::string node_name,
                      const Clock& clock);
  // The record's path is the file's path on the node (under the root).
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> Take() override;

 private:
  const EtcdSnapshotterOptions options_;
  const RootPath root_;
  const std::string node_name_;
  const Clock& clock_;
};

}  // namespace tended::agent::k8s

#endif  // TENDED_AGENT_K8S_ETCD_SNAPSHOTTER_H_
