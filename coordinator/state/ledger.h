// The state ledger: the one owner of the coordinator's persisted state. Handlers change the
// in-memory state (FleetState, through a Transaction), append the change as one record and
// answer once it is durable; what must only happen after that (a directive to an agent, a
// Kubernetes step, a notification) is attached with AfterDurable. Records are durable in
// the order they were appended, so a durable record implies every earlier one is.
//
// Failure is fail-stop: once a write or fsync failed, memory is ahead of disk and the
// kernel may have dropped the pages, so nothing more is appended, every wait answers
// UNAVAILABLE and the coordinator must stop and restart from what is on disk. The embedded
// implementation journals to a local folder (embedded_ledger.h); an etcd-backed one can
// take its place behind this interface.
#ifndef TENDED_COORDINATOR_STATE_LEDGER_H_
#define TENDED_COORDINATOR_STATE_LEDGER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tended/state/v1/state.pb.h"

namespace tended::coordinator::state {

struct LedgerStats {
  uint64_t records = 0;
  uint64_t batches = 0;  // One fsync each.
  uint64_t snapshots = 0;
  uint64_t journal_bytes = 0;  // Since the last snapshot.
};

class StateLedger {
 public:
  virtual ~StateLedger() = default;

  // What was durable when the ledger opened (format_version 0 and no state id when nothing
  // was ever recorded), and what recovery had to say (a torn last record dropped, ...).
  virtual const tended::state::v1::CoordinatorState& recovered() const = 0;
  virtual bool recovered_empty() const = 0;
  virtual const std::vector<std::string>& recovery_notes() const = 0;

  // Assigns the next sequence to `record` and queues it; never waits for I/O, so callers
  // append while holding their own lock (which fixes the order). Returns the sequence, or 0
  // once the ledger has failed (nothing was queued).
  virtual uint64_t Append(tended::state::v1::LedgerRecord record) = 0;
  // OK once every record up to `sequence` is durable; UNAVAILABLE once the ledger failed.
  virtual absl::Status WaitDurable(uint64_t sequence) = 0;
  // Runs `fn` once `sequence` is durable, in sequence order, on the ledger's thread (never
  // with its lock held); never if the ledger fails first.
  virtual void AfterDurable(uint64_t sequence, std::function<void()> fn) = 0;

  // OK, or why the ledger stopped.
  virtual absl::Status health() const = 0;
  virtual uint64_t last_sequence() const = 0;
  virtual LedgerStats stats() const = 0;
};

}  // namespace tended::coordinator::state

#endif  // TENDED_COORDINATOR_STATE_LEDGER_H_
