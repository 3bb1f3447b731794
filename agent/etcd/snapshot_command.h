// `tended-agent etcd-snapshot`: takes one etcd snapshot by hand (TakeSnapshot) and prints
// where it went, its size, sha256 and the etcd version.
#ifndef TENDED_AGENT_ETCD_SNAPSHOT_COMMAND_H_
#define TENDED_AGENT_ETCD_SNAPSHOT_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"

namespace tended::agent::etcd {

inline constexpr char kSnapshotCommandName[] = "etcd-snapshot";

// `args` are those after "etcd-snapshot". Returns the exit code: 0 on success, 1 when the
// snapshot failed, 2 for bad arguments. --out may name an existing folder, in which case the
// file inside is named by SnapshotFileName(clock.Now()).
int RunSnapshotCommand(const std::vector<std::string>& args, const Clock& clock, std::ostream& out,
                       std::ostream& err);

}  // namespace tended::agent::etcd

#endif  // TENDED_AGENT_ETCD_SNAPSHOT_COMMAND_H_
