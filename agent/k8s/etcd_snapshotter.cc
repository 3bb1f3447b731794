#include "agent/k8s/etcd_snapshotter.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace tended::agent::k8s {

GrpcEtcdSnapshotter::GrpcEtcdSnapshotter(EtcdSnapshotterOptions options, RootPath root,
                                         std::string node_name, const Clock& clock)
    : options_(std::move(options)),
      root_(std::move(root)),
      node_name_(std::move(node_name)),
      clock_(clock) {}

absl::StatusOr<tended::v1::EtcdSnapshotRecord> GrpcEtcdSnapshotter::Take() {
  const std::string dir = root_.Resolve(options_.dir);
  RETURN_IF_ERROR(MakeDirectories(dir, 0700));
  etcd::SnapshotOptions snapshot = options_.snapshot;
  for (std::string* file : {&snapshot.ca_file, &snapshot.cert_file, &snapshot.key_file}) {
    if (!file->empty()) *file = root_.Resolve(*file);
  }
  const std::string path = absl::StrCat(dir, "/", etcd::SnapshotFileName(clock_.Now()));
  ASSIGN_OR_RETURN(tended::v1::EtcdSnapshotRecord record,
                   etcd::TakeSnapshot(snapshot, path, clock_));
  record.set_node_name(node_name_);
  // A snapshot never takes an hour; a temporary file that old was left by a killed one.
  if (absl::Status cleaned = etcd::RemoveStalePartialSnapshots(dir, clock_.Now(), absl::Hours(1));
      !cleaned.ok()) {
    Logger("agent")->warn("removing unfinished etcd snapshots: {}", cleaned.ToString());
  }
  if (absl::Status pruned = etcd::PruneSnapshots(dir, options_.keep); !pruned.ok()) {
    // The snapshot is whole; an old one left behind is not a reason to stop the rollout.
    Logger("agent")->warn("etcd snapshot {} taken, but pruning old ones failed: {}", path,
                          pruned.ToString());
  }
  return record;
}

}  // namespace tended::agent::k8s
