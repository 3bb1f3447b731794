// One coordinator per state folder: an exclusive flock on <dir>/LOCK held for the life of the
// process, with who holds it written inside so that a second coordinator can name it. Two
// coordinators on one state would hand out the same fencing tokens and slots.
//
// flock locks belong to the open file description: a second Acquire conflicts with the first
// even in the same process, and the kernel releases the lock when the holder exits, however it
// exits (kill -9 included), so a stale LOCK file never blocks a restart.
#ifndef TENDED_COORDINATOR_STATE_STATE_DIR_LOCK_H_
#define TENDED_COORDINATOR_STATE_STATE_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"

namespace tended::coordinator {

inline constexpr char kStateDirLockFileName[] = "LOCK";

class StateDirLock {
 public:
  // Creates `dir` (0700) when missing and takes the lock without waiting. `holder_description`
  // tells operators which coordinator this is (e.g. its listen address). When another holds
  // it: FAILED_PRECONDITION naming that holder's pid, host, start time and description.
  static absl::StatusOr<std::unique_ptr<StateDirLock>> Acquire(const std::string& dir,
                                                               std::string holder_description,
                                                               const Clock& clock = Clock::Real());

  // Releases the lock (the LOCK file stays; its contents describe the last holder).
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  StateDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
};

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_STATE_STATE_DIR_LOCK_H_
