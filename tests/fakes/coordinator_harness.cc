#include "tests/fakes/coordinator_harness.h"

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tended::testing {

CoordinatorHarness::CoordinatorHarness(coordinator::CoordinatorConfig config, const Clock* clock)
    : config_(std::move(config)), clock_(clock != nullptr ? *clock : own_clock_) {
  config_.state_dir = dir_.Path("state");
  config_.legacy_state_file = dir_.Path("state/state.json");
}

CoordinatorHarness::~CoordinatorHarness() { Stop(); }

absl::Status CoordinatorHarness::Start(bool recover_state) {
  Stop();
  ledger_failed_.store(false);
  coordinator::state::EmbeddedLedger::Options options;
  options.dir = config_.state_dir;
  options.holder_description = "a test's coordinator";
  options.synchronous = true;
  options.event_limit = static_cast<size_t>(config_.history_limit);
  options.legacy_state_file = config_.legacy_state_file;
  options.on_failure = [this](const absl::Status&) { ledger_failed_.store(true); };
  options.fault_injector = [this](absl::string_view operation) -> absl::Status {
    absl::MutexLock lock(&mutex_);
    if (failure_rate_ <= 0 || (operation != "write" && operation != "fsync")) {
      return absl::OkStatus();
    }
    // xorshift64: deterministic per seed, independent of everything else.
    failure_state_ ^= failure_state_ << 13;
    failure_state_ ^= failure_state_ >> 7;
    failure_state_ ^= failure_state_ << 17;
    if (static_cast<double>(failure_state_ % 1000000) / 1e6 < failure_rate_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("injected: ", operation, ": no space left on device"));
    }
    return absl::OkStatus();
  };
  auto ledger = coordinator::state::EmbeddedLedger::Open(std::move(options));
  if (!ledger.ok()) return ledger.status();
  ledger_ = *std::move(ledger);
  if (ledger_->recovered_empty() && ledger_->previously_used() && !recover_state) {
    ledger_.reset();
    return absl::FailedPreconditionError(
        "the state is empty but the folder was used before: start with --recover-state");
  }
  coordinator::Coordinator::Options options_for_coordinator;
  options_for_coordinator.deprecated_apis = deprecated_apis_;
  if (alert_source_) {
    options_for_coordinator.alerts = alert_source_;
  } else {
    options_for_coordinator.alerts = [this]() -> std::optional<coordinator::AlertSnapshot> {
      absl::MutexLock lock(&mutex_);
      return alerts_;
    };
  }
  options_for_coordinator.recover_state = recover_state;
  auto created = coordinator::Coordinator::Create(config_, clock_, ledger_.get(),
                                                  std::move(options_for_coordinator));
  if (!created.ok()) {
    ledger_.reset();
    return created.status();
  }
  coordinator_ = *std::move(created);
  return absl::OkStatus();
}

void CoordinatorHarness::Stop() {
  coordinator_.reset();
  ledger_.reset();
}

absl::Status CoordinatorHarness::Restart(bool recover_state) {
  Stop();
  return Start(recover_state);
}

void CoordinatorHarness::LoseState(bool keep_lock) {
  Stop();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(config_.state_dir, error)) {
    if (keep_lock && entry.path().filename() == "LOCK") continue;
    std::filesystem::remove_all(entry.path(), error);
  }
}

void CoordinatorHarness::SetAlerts(std::optional<coordinator::AlertSnapshot> alerts) {
  absl::MutexLock lock(&mutex_);
  alerts_ = std::move(alerts);
}

void CoordinatorHarness::SetFiring(const std::string& name) {
  coordinator::AlertSnapshot snapshot;
  snapshot.fetched_at = clock_.Now();
  if (!name.empty()) snapshot.alerts.push_back({name, "firing", {{"alertname", name}}});
  SetAlerts(std::move(snapshot));
}

void CoordinatorHarness::SetAlertSource(
    std::function<std::optional<coordinator::AlertSnapshot>()> source) {
  alert_source_ = std::move(source);
}

void CoordinatorHarness::SetWriteFailureRate(double rate, uint64_t seed) {
  absl::MutexLock lock(&mutex_);
  failure_rate_ = rate;
  failure_state_ = seed * 2654435761u + 1;
}

}  // namespace tended::testing
