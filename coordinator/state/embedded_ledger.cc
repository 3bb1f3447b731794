#include "coordinator/state/embedded_ledger.h"

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/status_macros.h"

namespace tended::coordinator::state {

using tended::state::v1::CoordinatorState;
using tended::state::v1::LedgerRecord;

namespace {

// One record holding every entity of a whole state (the import of a legacy state file).
LedgerRecord WholeState(const CoordinatorState& state, uint64_t sequence) {
  LedgerRecord record;
  record.set_sequence(sequence);
  for (const auto& lease : state.leases()) *record.add_leases() = lease;
  for (const auto& node : state.nodes()) {
    auto* known = record.add_nodes();
    *known = node;
    known->clear_last_facts();
  }
  for (const auto& request : state.pending_requests()) *record.add_requests() = request;
  for (const auto& disruption : state.disruptions()) *record.add_disruptions() = disruption;
  *record.mutable_halt() = state.halt();
  *record.mutable_os_rollout() = state.os_rollout();
  *record.mutable_k8s_detection() = state.k8s_detection();
  for (const auto& rollout : state.k8s_rollouts()) *record.add_k8s_rollouts() = rollout;
  record.set_last_fencing_token(state.last_fencing_token());
  for (const auto& event : state.events()) *record.add_events() = event;
  return record;
}

}  // namespace

EmbeddedLedger::EmbeddedLedger(Options options)
    : options_(std::move(options)), image_(options_.event_limit) {}

EmbeddedLedger::~EmbeddedLedger() {
  // The writer's last callbacks (Applied) still call journal_: stop it while it is set.
  if (journal_ != nullptr) journal_->Stop();
  journal_.reset();
}

absl::StatusOr<std::unique_ptr<EmbeddedLedger>> EmbeddedLedger::Open(Options options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("the state folder is not set");
  std::unique_ptr<EmbeddedLedger> ledger(new EmbeddedLedger(std::move(options)));
  const std::string lock_path = absl::StrCat(ledger->options_.dir, "/LOCK");
  ledger->previously_used_ = ::access(lock_path.c_str(), F_OK) == 0;
  ASSIGN_OR_RETURN(ledger->lock_,
                   StateDirLock::Acquire(ledger->options_.dir, ledger->options_.holder_description));
  Journal::Options journal_options;
  journal_options.dir = ledger->options_.dir;
  journal_options.synchronous = ledger->options_.synchronous;
  journal_options.fault_injector = ledger->options_.fault_injector;
  journal_options.on_failure = ledger->options_.on_failure;
  Journal::Recovered recovered;
  ASSIGN_OR_RETURN(ledger->journal_, Journal::Open(journal_options, &recovered));
  RETURN_IF_ERROR(ledger->Recover(recovered));
  if (ledger->recovered_empty_ && !ledger->options_.legacy_state_file.empty()) {
    RETURN_IF_ERROR(ledger->ImportLegacy());
  }
  return ledger;
}

absl::Status EmbeddedLedger::Recover(const Journal::Recovered& journal) {
  notes_ = journal.notes;
  StateImage image(options_.event_limit);
  if (journal.snapshot.has_value()) {
    CoordinatorState snapshot;
    if (!snapshot.ParseFromString(*journal.snapshot)) {
      return absl::DataLossError(absl::StrCat("the snapshot of record ", journal.snapshot_sequence,
                                              " in ", options_.dir,
                                              " has a good checksum but does not parse"));
    }
    ASSIGN_OR_RETURN(image, StateImage::FromProto(snapshot, options_.event_limit));
    if (image.sequence() != journal.snapshot_sequence) {
      return absl::DataLossError(absl::StrCat("the snapshot file says record ",
                                              journal.snapshot_sequence, " but holds record ",
                                              image.sequence()));
    }
  }
  for (const auto& [sequence, payload] : journal.records) {
    LedgerRecord record;
    if (!record.ParseFromString(payload)) {
      return absl::DataLossError(absl::StrCat("ledger record ", sequence, " in ", options_.dir,
                                              " has a good checksum but does not parse"));
    }
    if (record.sequence() != sequence) {
      return absl::DataLossError(absl::StrCat("journal entry ", sequence, " holds ledger record ",
                                              record.sequence()));
    }
    RETURN_IF_ERROR(image.Apply(record));
  }
  recovered_empty_ = journal.empty || image.empty();
  recovered_ = image.ToProto();
  absl::MutexLock lock(&image_mutex_);
  image_ = std::move(image);
  return absl::OkStatus();
}

absl::Status EmbeddedLedger::ImportLegacy() {
  // A file of nothing (an emptied volume, a truncated copy) holds no state, as `{}` does;
  // the JSON parser would refuse it and no flag could get the coordinator past that.
  if (absl::StatusOr<std::string> text = ReadFileToString(options_.legacy_state_file);
      text.ok() && absl::StripAsciiWhitespace(*text).empty()) {
    notes_.push_back(absl::StrCat("the previous state file ", options_.legacy_state_file,
                                  " is empty; nothing to import"));
    return absl::OkStatus();
  }
  CoordinatorState legacy;
  absl::Status read = ReadProtoJsonFile(options_.legacy_state_file, &legacy);
  if (absl::IsNotFound(read)) return absl::OkStatus();
  if (!read.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the previous state file ", options_.legacy_state_file,
                     " cannot be imported: ", read.message(),
                     "; refusing to start rather than forget its leases"));
  }
  ASSIGN_OR_RETURN(StateImage check, StateImage::FromProto(legacy, options_.event_limit));
  if (check.empty()) {
    notes_.push_back(absl::StrCat("the previous state file ", options_.legacy_state_file,
                                  " is empty; nothing to import"));
    return absl::OkStatus();
  }
  const uint64_t sequence = Append(WholeState(legacy, last_sequence() + 1));
  RETURN_IF_ERROR(WaitDurable(sequence));
  const std::string imported = absl::StrCat(options_.legacy_state_file, ".imported");
  if (::rename(options_.legacy_state_file.c_str(), imported.c_str()) != 0) {
    notes_.push_back(absl::StrCat("imported ", options_.legacy_state_file, " but cannot rename it"));
  }
  notes_.push_back(absl::StrCat("imported the previous state file ", options_.legacy_state_file,
                                " (now ", imported, ")"));
  absl::MutexLock lock(&image_mutex_);
  recovered_ = image_.ToProto();
  recovered_empty_ = false;
  return absl::OkStatus();
}

uint64_t EmbeddedLedger::Append(LedgerRecord record) {
  absl::MutexLock lock(&append_mutex_);
  const uint64_t expected = journal_->last_sequence() + 1;
  record.set_sequence(expected);
  std::string payload = record.SerializeAsString();
  const uint64_t sequence = journal_->Append(std::move(payload));
  if (sequence == 0) return 0;
  if (sequence != expected) {
    Logger("ledger")->critical("the journal gave sequence {} for record {}", sequence, expected);
    return 0;
  }
  journal_->AfterDurable(sequence, [this, record = std::move(record)] { Applied(record); });
  return sequence;
}

void EmbeddedLedger::Applied(const LedgerRecord& record) {
  uint64_t through = 0;
  std::string snapshot;
  {
    absl::MutexLock lock(&image_mutex_);
    if (absl::Status applied = image_.Apply(record); !applied.ok()) {
      Logger("ledger")->critical("the durable image fell out of step: {}", applied.ToString());
      return;
    }
    if (journal_->journal_bytes() < options_.compact_after_bytes) return;
    through = image_.sequence();
    snapshot = image_.ToProto().SerializeAsString();
    ++snapshots_;
  }
  journal_->ScheduleSnapshot(through, std::move(snapshot), [](const absl::Status& written) {
    if (!written.ok()) Logger("ledger")->error("snapshot: {}", written.ToString());
  });
}

absl::Status EmbeddedLedger::WaitDurable(uint64_t sequence) {
  if (sequence == 0) return health();
  return journal_->WaitDurable(sequence);
}

void EmbeddedLedger::AfterDurable(uint64_t sequence, std::function<void()> fn) {
  if (sequence == 0) {
    if (health().ok()) fn();
    return;
  }
  journal_->AfterDurable(sequence, std::move(fn));
}

absl::Status EmbeddedLedger::health() const { return journal_->failure(); }

uint64_t EmbeddedLedger::last_sequence() const { return journal_->last_sequence(); }

LedgerStats EmbeddedLedger::stats() const {
  Journal::Stats journal = journal_->stats();
  LedgerStats stats;
  stats.records = journal.records;
  stats.batches = journal.batches;
  stats.snapshots = journal.snapshots;
  stats.journal_bytes = journal_->journal_bytes();
  return stats;
}

CoordinatorState EmbeddedLedger::DurableState() const {
  absl::MutexLock lock(&image_mutex_);
  return image_.ToProto();
}

}  // namespace tended::coordinator::state
