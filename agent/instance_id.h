// The agent installation's persistent identity: a random UUID kept in
// <state_dir>/agent-id, made on the first start and read on every start after. The agent
// sends it with every NodeService call; the coordinator binds leases to it and tells two
// agents under one node name apart by it (a cloned VM, a spoofer). It is not a secret.
#ifndef TENDED_AGENT_INSTANCE_ID_H_
#define TENDED_AGENT_INSTANCE_ID_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tended::agent {

inline constexpr char kAgentIdFileName[] = "agent-id";

// A random version 4 UUID in lowercase ("1b4e28ba-2fa1-4d2b-883f-0016d3cca427"), from
// getrandom(2), else /dev/urandom.
std::string NewRandomUuid();

// True for a UUID in its canonical 36-character form (any version; either case).
bool IsUuid(absl::string_view text);

// The id stored at `path`, lowercased. When the file is missing it is created (mode 0600,
// atomically: a crash leaves no half-written id, and a concurrent creator's id wins). When
// it holds anything but a UUID (or cannot be read as a regular file) it is replaced by a new
// id, with an error logged: the coordinator will see a new agent for the node.
absl::StatusOr<std::string> LoadOrCreateAgentInstanceId(const std::string& path);

}  // namespace tended::agent

#endif  // TENDED_AGENT_INSTANCE_ID_H_
