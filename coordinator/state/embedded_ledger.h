// The default state ledger: the journal of records and snapshots in a local folder
// (journal.h), under an exclusive lock on that folder (state_dir_lock.h) so that a second
// coordinator on the same state refuses to start and names the holder. It keeps an image
// of what is durable (state_image.h) on the journal's writer thread and writes it as the
// next snapshot once the journal has grown past a threshold, so recovery replays a bounded
// number of records. A JSON state file of the previous format found beside an empty ledger
// is imported as the first record.
#ifndef TENDED_COORDINATOR_STATE_EMBEDDED_LEDGER_H_
#define TENDED_COORDINATOR_STATE_EMBEDDED_LEDGER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/state/journal.h"
#include "coordinator/state/ledger.h"
#include "coordinator/state/state_dir_lock.h"
#include "coordinator/state/state_image.h"

namespace tended::coordinator::state {

class EmbeddedLedger final : public StateLedger {
 public:
  struct Options {
    std::string dir;
    // Written into the LOCK file for whoever finds the folder taken (the listen address).
    std::string holder_description;
    // No writer thread: every record is written and synced inside Append (the
    // deterministic fleet simulation, unit tests).
    bool synchronous = false;
    // Compact once the journal holds this many bytes since the last snapshot.
    uint64_t compact_after_bytes = 32ull << 20;
    // Events kept in snapshots.
    size_t event_limit = 1000;
    // A state file of the previous (JSON) format to import when the ledger is empty.
    std::string legacy_state_file;
    // See Journal::Options.
    std::function<absl::Status(absl::string_view operation)> fault_injector;
    // Runs once when the ledger fails (see ledger.h), without any lock held.
    std::function<void(const absl::Status&)> on_failure;
  };

  static absl::StatusOr<std::unique_ptr<EmbeddedLedger>> Open(Options options);
  ~EmbeddedLedger() override;

  const tended::state::v1::CoordinatorState& recovered() const override { return recovered_; }
  bool recovered_empty() const override { return recovered_empty_; }
  const std::vector<std::string>& recovery_notes() const override { return notes_; }
  uint64_t Append(tended::state::v1::LedgerRecord record) override;
  absl::Status WaitDurable(uint64_t sequence) override;
  void AfterDurable(uint64_t sequence, std::function<void()> fn) override;
  absl::Status health() const override;
  uint64_t last_sequence() const override;
  LedgerStats stats() const override;

  // A coordinator held this folder before (its LOCK file was there when this one opened).
  bool previously_used() const { return previously_used_; }
  // The image of what is durable, for tests and `tended-coordinator dump-state`.
  tended::state::v1::CoordinatorState DurableState() const;

 private:
  explicit EmbeddedLedger(Options options);
  absl::Status Recover(const Journal::Recovered& journal);
  absl::Status ImportLegacy();
  // On the journal's writer thread once `record` is durable.
  void Applied(const tended::state::v1::LedgerRecord& record);

  Options options_;
  bool previously_used_ = false;
  std::unique_ptr<StateDirLock> lock_;
  std::unique_ptr<Journal> journal_;
  tended::state::v1::CoordinatorState recovered_;
  bool recovered_empty_ = true;
  std::vector<std::string> notes_;

  absl::Mutex append_mutex_;  // Sequence numbers and records stay in step.
  mutable absl::Mutex image_mutex_;
  StateImage image_ ABSL_GUARDED_BY(image_mutex_);
  uint64_t snapshots_ ABSL_GUARDED_BY(image_mutex_) = 0;
};

}  // namespace tended::coordinator::state

#endif  // TENDED_COORDINATOR_STATE_EMBEDDED_LEDGER_H_
