// Takes a snapshot of a local etcd member through etcd's own gRPC API (Maintenance.Snapshot)
// and keeps the file only once it is whole and its sha256 trailer checks out; names and
// prunes the snapshot files tended keeps.
//
// The file has etcd's layout, database ‖ sha256(database), the same bytes `etcdctl snapshot
// save` writes, so `etcdutl snapshot restore` (or etcdctl 3.4's) accepts it as is.
#ifndef TENDED_AGENT_ETCD_SNAPSHOT_H_
#define TENDED_AGENT_ETCD_SNAPSHOT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "tended/v1/k8s_upgrade.pb.h"

namespace tended::agent::etcd {

struct SnapshotOptions {
  // "http://host:port" (no TLS) or "https://host:port". On a kubeadm control plane:
  // https://127.0.0.1:2379.
  std::string endpoint;
  // PEM files for https. ca_file verifies the server (empty: the system's roots); cert_file
  // and key_file, both or neither, are the client certificate etcd asks for. kubeadm's:
  // /etc/kubernetes/pki/etcd/ca.crt, /etc/kubernetes/pki/etcd/healthcheck-client.{crt,key}.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // The whole snapshot, from connecting to the last byte.
  absl::Duration timeout = absl::Minutes(2);
};

// Streams a snapshot from `options.endpoint` into `out_path` (its folder must exist; an
// existing file there is replaced). The bytes go to a temporary file beside `out_path`; the
// sha256 of all but the last 32 bytes is compared with those 32 (etcd's trailer) at the end
// of the stream; then fsync, rename, fsync of the folder. On any failure (RPC error, stream
// cut short, hash mismatch, empty snapshot, timeout) nothing is left behind and the status
// says what happened. The record's node_name is left empty for the caller; time is
// clock.Now() when the snapshot was asked for; sha256 is the database's (the trailer);
// etcd_version comes from the stream or else from Maintenance.Status, and stays empty when
// neither says.
absl::StatusOr<tended::v1::EtcdSnapshotRecord> TakeSnapshot(const SnapshotOptions& options,
                                                            const std::string& out_path,
                                                            const Clock& clock);

// "etcd-snapshot-20261206T120000Z.db" for 2026-12-06 12:00:00 UTC. Names sort by time.
std::string SnapshotFileName(absl::Time time);

// True for names SnapshotFileName makes (and nothing else: no temporary files).
bool IsSnapshotFileName(const std::string& name);

// Deletes the oldest snapshot files in `dir` (regular files named as SnapshotFileName
// makes) so that the `keep` newest remain. Other files are never touched. keep >= 1.
absl::Status PruneSnapshots(const std::string& dir, int keep);

// Deletes the temporary files of snapshots that were never finished (the process was
// killed while streaming): "<SnapshotFileName>.part-*" whose name's time is more than
// `max_age` before `now`. A snapshot still being taken (younger) is left alone.
absl::Status RemoveStalePartialSnapshots(const std::string& dir, absl::Time now,
                                         absl::Duration max_age);

}  // namespace tended::agent::etcd

#endif  // TENDED_AGENT_ETCD_SNAPSHOT_H_
