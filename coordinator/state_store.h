// Where the coordinator persists its state (leases, fencing counter, halt, known nodes,
// queue, event log). The embedded store is one JSON file written atomically; an etcd
// store for several replicas comes later behind the same interface.
#ifndef TENDED_COORDINATOR_STATE_STORE_H_
#define TENDED_COORDINATOR_STATE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tended/state/v1/state.pb.h"

namespace tended::coordinator {

class StateStore {
 public:
  virtual ~StateStore() = default;
  // An empty state when nothing was ever saved; an error when what is there is unreadable
  // (the coordinator then refuses to start rather than forget a lease).
  virtual absl::StatusOr<tended::state::v1::CoordinatorState> Load() = 0;
  // Durable when it returns OK.
  virtual absl::Status Save(const tended::state::v1::CoordinatorState& state) = 0;
};

// temp file, fsync, rename, fsync of the folder.
class FileStateStore final : public StateStore {
 public:
  explicit FileStateStore(std::string path);
  absl::StatusOr<tended::state::v1::CoordinatorState> Load() override;
  absl::Status Save(const tended::state::v1::CoordinatorState& state) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline constexpr uint32_t kCoordinatorStateFormatVersion = 1;

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_STATE_STORE_H_
