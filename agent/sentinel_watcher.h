// Watches one file (the reboot-required sentinel) with inotify and reports when it appears or
// disappears. The file's parent directory is watched, so creation, removal, rename into or out
// of place and rewrites are seen; a parent that does not exist yet (or a dangling /var/run
// symlink) is handled by watching the nearest existing ancestor and re-arming as it appears.
// No polling: the watcher thread sleeps in poll() on the inotify fd and a stop eventfd.
#ifndef TENDED_AGENT_SENTINEL_WATCHER_H_
#define TENDED_AGENT_SENTINEL_WATCHER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tended::agent {

class SentinelWatcher {
 public:
  using Callback = std::function<void(bool exists)>;

  // `file_path` must be absolute (already resolved under the agent's root). Sets up the inotify
  // watch; nothing is reported until Start().
  static absl::StatusOr<std::unique_ptr<SentinelWatcher>> Create(std::string file_path,
                                                                 Callback on_change);

  // Stops and joins the watcher thread. Must not run on the callback's thread.
  ~SentinelWatcher();
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  // Calls on_change(exists) once with the initial state, on the caller's thread before
  // returning, then starts the watcher thread, which calls on_change only when the file's
  // existence (lstat) flips. Callbacks never run concurrently. Fails when called twice.
  absl::Status Start();

  // Thread-safe and idempotent. No callback starts after Stop() returns. May be called from
  // inside on_change, in which case it does not wait for the thread (the destructor joins).
  void Stop();

  const std::string& file_path() const { return file_path_; }

 private:
  SentinelWatcher(std::string file_path, Callback on_change, int inotify_fd, int stop_fd);

  // Points the inotify watch at the directory the sentinel lives in (symlinks resolved), or at
  // its nearest existing ancestor. Cheap when nothing changed: adding a watch for an inode
  // already watched returns the same descriptor.
  absl::Status Rearm();
  // Reads every queued event; false on an unexpected read error.
  bool DrainEvents();
  bool FileExists();
  void Run();
  void Recheck();

  const std::string file_path_;
  const std::string parent_dir_;  // as given, may contain symlinks
  const Callback on_change_;
  const int inotify_fd_;
  const int stop_fd_;

  // Owned by the watcher thread once it runs (by Create/Start before).
  int wd_ = -1;
  std::string watched_path_;
  bool rearm_failed_ = false;
  bool last_exists_ = false;

  std::atomic<bool> stop_requested_{false};
  std::atomic<std::thread::id> watcher_thread_id_{};
  absl::Mutex thread_mutex_;
  bool started_ ABSL_GUARDED_BY(thread_mutex_) = false;
  std::thread thread_ ABSL_GUARDED_BY(thread_mutex_);
};

}  // namespace tended::agent

#endif  // TENDED_AGENT_SENTINEL_WATCHER_H_
