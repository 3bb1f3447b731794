#include "agent/agent.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tended::agent {
namespace {

using tended::v1::Lease;

constexpr char kRebootStep[] = "reboot";
constexpr absl::Duration kRetrySoon = absl::Seconds(5);

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

absl::Duration RenewEvery(const Lease& lease) {
  absl::Duration deadline =
      FromProtoTimestamp(lease.expire_time()) - FromProtoTimestamp(lease.renew_time());
  return std::max(deadline / 3, absl::Seconds(1));
}

}  // namespace

std::string DefaultNodeName() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return "";
  return absl::AsciiStrToLower(host);
}

Agent::Agent(const AgentConfig& config, std::string node_name, RootPath root,
             Dependencies dependencies)
    : config_(config),
      node_name_(std::move(node_name)),
      root_(std::move(root)),
      deps_(dependencies),
      facts_reader_(root_, config_, node_name_),
      journal_path_(root_.Resolve(absl::StrCat(config_.state_dir, "/agent-state.json"))),
      backoff_(config.reconnect_initial_backoff) {}

Agent::~Agent() { deps_.coordinator->CloseDirectiveStream(); }

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config,
                                                     std::string node_name, RootPath root,
                                                     Dependencies dependencies) {
  if (dependencies.clock == nullptr || dependencies.coordinator == nullptr ||
      dependencies.rebooter == nullptr) {
    return absl::InvalidArgumentError("the agent needs a clock, a coordinator and a rebooter");
  }
  if (node_name.empty()) return absl::InvalidArgumentError("the node name is empty");
  std::unique_ptr<Agent> agent(
      new Agent(config, std::move(node_name), std::move(root), dependencies));
  RETURN_IF_ERROR(MakeDirectories(agent->root_.Resolve(config.state_dir), 0700));
  absl::Status loaded = ReadProtoJsonFile(agent->journal_path_, &agent->journal_);
  if (absl::IsNotFound(loaded)) {
    agent->journal_.Clear();
  } else if (!loaded.ok()) {
    std::string aside = absl::StrCat(agent->journal_path_, ".corrupt");
    Log()->error("{}; moving it to {} and starting afresh", loaded.message(), aside);
    if (::rename(agent->journal_path_.c_str(), aside.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot set aside ", agent->journal_path_));
    }
    agent->journal_.Clear();
  }
  agent->journal_.set_format_version(1);
  if (dependencies.packages != nullptr) {
    OsUpgradeStep::Options options;
    options.plan_interval = config.apt.plan_interval;
    options.update_interval = config.apt.update_interval;
    options.background = dependencies.apt_in_background;
    agent->os_ = std::make_unique<OsUpgradeStep>(
        dependencies.packages, options, *dependencies.clock, [raw = agent.get()] { raw->Wake(); });
    agent->StartOsUpgrades();
  }
  // Whatever happened before the restart, check the sentinel and the lease now.
  agent->Wake();
  return agent;
}

void Agent::Wake() {
  absl::MutexLock lock(&events_mutex_);
  woken_ = true;
}

void Agent::PostDirective(const tended::v1::Directive& directive) {
  absl::MutexLock lock(&events_mutex_);
  directives_.push_back(directive);
  woken_ = true;
}

void Agent::PostStreamEnded(const absl::Status& status) {
  absl::MutexLock lock(&events_mutex_);
  stream_ended_ = status;
  woken_ = true;
}

absl::Status Agent::SaveJournal() { return WriteProtoJsonFile(journal_path_, journal_); }

void Agent::SetStatus(const std::string& status) {
  if (status == last_status_) return;
  last_status_ = status;
  Log()->info("{}", status);
  if (deps_.notifier != nullptr) (void)deps_.notifier->Status(status);
}

void Agent::AdoptLease(const Lease& lease, absl::string_view how) {
  if (lease.node_name() != node_name_) return;
  if (journal_.has_lease() && journal_.lease().id() == lease.id()) {
    *journal_.mutable_lease() = lease;
  } else {
    if (journal_.has_lease() && journal_.lease().fencing_token() > lease.fencing_token()) return;
    journal_.clear_step();
    journal_.clear_boot_id_before_step();
    journal_.clear_step_report();
    journal_.clear_step_report_delivered();
    *journal_.mutable_lease() = lease;
    Log()->info("holding lease {} (token {}), {}", lease.id(), lease.fencing_token(), how);
  }
  waiting_for_lease_ = false;
  next_renew_ = deps_.clock->Now() + RenewEvery(lease);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    Log()->error("cannot journal the lease: {}", saved.ToString());
  }
}

void Agent::ClearLease(absl::string_view why) {
  if (!journal_.has_lease()) return;
  Log()->info("lease {} ended: {}", journal_.lease().id(), why);
  journal_.clear_lease();
  journal_.clear_step();
  journal_.clear_boot_id_before_step();
  journal_.clear_step_start_time();
  journal_.clear_step_report();
  journal_.clear_step_report_delivered();
  reboot_at_.reset();
  if (absl::Status removed = RemoveFileIfExists(root_.Resolve(config_.reboot.gated_sentinel));
      !removed.ok()) {
    Log()->warn("{}", removed.ToString());
  }
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    Log()->error("cannot journal the lease's end: {}", saved.ToString());
  }
}

void Agent::HandleEvents() {
  std::deque<tended::v1::Directive> directives;
  std::optional<absl::Status> ended;
  {
    absl::MutexLock lock(&events_mutex_);
    directives.swap(directives_);
    ended.swap(stream_ended_);
    woken_ = false;
  }
  for (const auto& directive : directives) {
    if (directive.has_lease_granted()) {
      AdoptLease(directive.lease_granted(), "granted by the coordinator");
    } else if (directive.has_lease_revoked()) {
      if (journal_.has_lease() && journal_.lease().id() == directive.lease_revoked().id()) {
        ClearLease(directive.lease_revoked().status_message());
      }
    } else if (directive.has_report_now()) {
      next_report_ = absl::InfinitePast();
    }
  }
  if (ended.has_value() && connected_) Disconnected(*ended);
}

void Agent::Disconnected(const absl::Status& why) {
  if (connected_) Log()->warn("lost the coordinator: {}", why.ToString());
  connected_ = false;
  deps_.coordinator->CloseDirectiveStream();
  next_connect_attempt_ = deps_.clock->Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, config_.reconnect_max_backoff);
  SetStatus(absl::StrCat("coordinator unreachable (", why.message(), "); retrying"));
}

absl::Status Agent::Report() {
  ASSIGN_OR_RETURN(tended::v1::NodeFacts facts, facts_reader_.Read());
  if (os_ != nullptr) FillOsUpgradeFacts(facts.mutable_os_upgrade());
  tended::v1::ReportFactsRequest request;
  *request.mutable_facts() = std::move(facts);
  ASSIGN_OR_RETURN(auto response, deps_.coordinator->ReportFacts(request));
  absl::Duration interval = config_.report_interval;
  next_report_ = deps_.clock->Now() + interval;
  return absl::OkStatus();
}

absl::Time Agent::RunOnce() {
  HandleEvents();
  const absl::Time now = deps_.clock->Now();
  if (awaiting_host_reboot_) return now + absl::Minutes(1);

  if (!connected_) {
    if (now < next_connect_attempt_) return next_connect_attempt_;
    if (absl::Status reported = Report(); !reported.ok()) {
      connected_ = true;  // So Disconnected() logs the first failure once.
      Disconnected(reported);
      return next_connect_attempt_;
    }
    connected_ = true;
    backoff_ = config_.reconnect_initial_backoff;
    deps_.coordinator->OpenDirectiveStream(
        node_name_, [this](const tended::v1::Directive& d) { PostDirective(d); },
        [this](const absl::Status& status) { PostStreamEnded(status); });
    waiting_for_lease_ = false;  // Ask again: the coordinator may have restarted.
    SetStatus("connected to the coordinator");
  }

  auto boot_id = facts_reader_.ReadBootId();
  if (!boot_id.ok()) {
    Log()->error("{}", boot_id.status().ToString());
    return now + kRetrySoon;
  }
  if (journal_.step() == kRebootStep && journal_.boot_id_before_step() != *boot_id) {
    Log()->info("back from the reboot (boot id {} -> {})", journal_.boot_id_before_step(),
                *boot_id);
    journal_.clear_step();
    journal_.clear_boot_id_before_step();
    journal_.clear_step_start_time();
    reboot_at_.reset();
    (void)SaveJournal();
    next_report_ = absl::InfinitePast();
  }
  absl::Time os_next = absl::InfiniteFuture();
  if (os_ != nullptr) {
    os_next = os_->RefreshPlanIfDue(now);
    if (os_->TakePlanChanged()) next_report_ = absl::InfinitePast();  // Tell the coordinator.
  }
  if (now >= next_report_) {
    if (absl::Status reported = Report(); !reported.ok()) {
      Disconnected(reported);
      return next_connect_attempt_;
    }
  }

  const bool reboot_needed = facts_reader_.RebootRequired();
  absl::Time next =
      journal_.has_lease() ? HandleLease(*boot_id, reboot_needed) : HandleNoLease(reboot_needed);
  if (!connected_) return next_connect_attempt_;
  return std::min({next, next_report_, os_next});
}

absl::Time Agent::HandleNoLease(bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  if (!reboot_needed) {
    if (waiting_for_lease_) {
      tended::v1::CancelLeaseRequestRequest cancel;
      cancel.set_node_name(node_name_);
      cancel.set_kind(tended::v1::LEASE_KIND_REBOOT);
      if (auto cancelled = deps_.coordinator->CancelLeaseRequest(cancel); !cancelled.ok()) {
        Disconnected(cancelled.status());
        return next_connect_attempt_;
      }
      waiting_for_lease_ = false;
    }
    if (os_ != nullptr) return HandleNoOsLease();
    SetStatus("idle: no reboot required");
    return absl::InfiniteFuture();
  }
  // The reboot goes first; OS upgrades are asked for again after it.
  if (waiting_for_os_lease_) CancelOsLeaseRequest();
  if (!connected_) return next_connect_attempt_;
  if (waiting_for_lease_ && now < next_acquire_) return next_acquire_;

  tended::v1::AcquireLeaseRequest request;
  request.set_node_name(node_name_);
  request.set_kind(tended::v1::LEASE_KIND_REBOOT);
  auto facts = facts_reader_.Read();
  std::string why = facts.ok() ? absl::StrJoin(facts->reboot_required_reasons(), ", ") : "";
  request.set_reason(absl::StrCat("reboot-required: ", why));
  auto response = deps_.coordinator->AcquireLease(request);
  if (!response.ok()) {
    if (absl::IsFailedPrecondition(response.status()) ||
        absl::IsInvalidArgument(response.status())) {
      SetStatus(absl::StrCat("reboot lease refused: ", response.status().message()));
      waiting_for_lease_ = true;
      next_acquire_ = now + config_.check_period;
      return next_acquire_;
    }
    Disconnected(response.status());
    return next_connect_attempt_;
  }
  if (response->has_lease()) {
    AdoptLease(response->lease(), "granted at once");
    return now;
  }
  waiting_for_lease_ = true;
  next_acquire_ = now + config_.check_period;
  std::vector<std::string> blocking;
  for (const auto& gate : response->gates()) {
    if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
      blocking.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
    }
  }
  SetStatus(absl::StrCat("waiting for a reboot lease (queue position ", response->queue_position(),
                         "): ", absl::StrJoin(blocking, "; ")));
  return next_acquire_;
}

absl::Time Agent::HandleLease(const std::string& boot_id, bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  const Lease& lease = journal_.lease();
  absl::Time step_next = absl::InfiniteFuture();
  if (lease.kind() == tended::v1::LEASE_KIND_OS_UPGRADE && os_ != nullptr) {
    step_next = HandleOsUpgradeLease();
    // The lease may have ended (then `lease` is gone) or the coordinator be unreachable.
    if (!journal_.has_lease() || !connected_) return step_next;
  } else if (lease.kind() != tended::v1::LEASE_KIND_REBOOT) {
    // Other kinds are acted on by their own steps; keep the lease alive meanwhile.
    SetStatus(absl::StrCat("holding ", lease.id()));
  } else if (journal_.step() == kRebootStep) {
    if (!reboot_at_.has_value()) {
      // Restarted during the pause before the reboot: take the pause again.
      reboot_at_ = now + config_.reboot.delay;
    }
    if (now >= *reboot_at_) return FinishReboot();
    return *reboot_at_;
  } else if (boot_id == lease.boot_id_at_grant() &&
             lease.phase() != tended::v1::LEASE_PHASE_VERIFYING) {
    if (!reboot_needed && lease.phase() == tended::v1::LEASE_PHASE_GRANTED) {
      tended::v1::ReleaseLeaseRequest release;
      release.set_lease_id(lease.id());
      release.set_fencing_token(lease.fencing_token());
      release.set_reason("the reboot-required sentinel went away");
      auto released = deps_.coordinator->ReleaseLease(release);
      if (released.ok() || absl::IsFailedPrecondition(released.status())) {
        ClearLease("reboot no longer required");
        return now;
      }
      Disconnected(released.status());
      return next_connect_attempt_;
    }
    if (!lease.preparing()) return StartReboot(boot_id);
    // The coordinator cordons and drains first; the lease comes again when it is done.
    SetStatus(absl::StrCat("holding ", lease.id(), "; waiting for the coordinator to drain"));
  } else {
    SetStatus(
        absl::StrCat("rebooted under ", lease.id(), "; waiting for the coordinator to verify"));
  }

  // Renew while granted; once disrupted the renewal is how we learn of the release.
  const absl::Duration probe_every = lease.phase() == tended::v1::LEASE_PHASE_GRANTED
                                         ? RenewEvery(lease)
                                         : config_.report_interval;
  if (now >= next_renew_) {
    tended::v1::RenewLeaseRequest renew;
    renew.set_lease_id(lease.id());
    renew.set_fencing_token(lease.fencing_token());
    auto renewed = deps_.coordinator->RenewLease(renew);
    if (renewed.ok()) {
      *journal_.mutable_lease() = renewed->lease();
      (void)SaveJournal();
    } else if (absl::IsFailedPrecondition(renewed.status())) {
      ClearLease(renewed.status().message());
      return now;
    } else {
      Disconnected(renewed.status());
      return next_connect_attempt_;
    }
    next_renew_ = now + probe_every;
  }
  return std::min(next_renew_, step_next);
}

absl::Time Agent::StartReboot(const std::string& boot_id) {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();
  tended::v1::BeginDisruptionRequest begin;
  begin.set_lease_id(lease.id());
  begin.set_fencing_token(lease.fencing_token());
  begin.set_step(kRebootStep);
  auto begun = deps_.coordinator->BeginDisruption(begin);
  if (!begun.ok()) {
    if (absl::IsFailedPrecondition(begun.status())) {
      Log()->error("not rebooting: {}", begun.status().message());
      ClearLease(begun.status().message());
      return now;
    }
    Disconnected(begun.status());
    return next_connect_attempt_;
  }
  *journal_.mutable_lease() = begun->lease();
  journal_.set_step(kRebootStep);
  journal_.set_boot_id_before_step(boot_id);
  *journal_.mutable_step_start_time() = ToProtoTimestamp(now);
  if (absl::Status saved = SaveJournal(); !saved.ok()) {
    // Without the journal a crash could reboot twice: do not go on.
    Log()->error("not rebooting: cannot journal the step: {}", saved.ToString());
    journal_.clear_step();
    return now + kRetrySoon;
  }
  std::string gated = root_.Resolve(config_.reboot.gated_sentinel);
  absl::Status written = MakeDirectories(Dirname(gated));
  if (written.ok()) written = WriteFileAtomically(gated, absl::StrCat(lease.id(), "\n"));
  if (!written.ok()) Log()->warn("cannot write the gated sentinel: {}", written.ToString());
  reboot_at_ = now + config_.reboot.delay;
  SetStatus(absl::StrCat("rebooting under ", lease.id(), " in ",
                         absl::FormatDuration(config_.reboot.delay)));
  return *reboot_at_;
}

absl::Time Agent::FinishReboot() {
  const absl::Time now = deps_.clock->Now();
  const Lease lease = journal_.lease();
  // The last fence check, right before the act.
  tended::v1::BeginDisruptionRequest check;
  check.set_lease_id(lease.id());
  check.set_fencing_token(lease.fencing_token());
  check.set_step(kRebootStep);
  auto current = deps_.coordinator->BeginDisruption(check);
  if (!current.ok()) {
    if (absl::IsFailedPrecondition(current.status())) {
      Log()->error("not rebooting: {}", current.status().message());
      ClearLease(current.status().message());
      return now;
    }
    // Cannot prove the lease is current: never reboot on a guess.
    Disconnected(current.status());
    return next_connect_attempt_;
  }
  absl::Status rebooted = deps_.rebooter->Reboot(absl::StrCat("tended lease ", lease.id()));
  if (!rebooted.ok()) {
    Log()->error("reboot failed: {}", rebooted.ToString());
    reboot_at_ = now + config_.check_period;
    return *reboot_at_;
  }
  if (!deps_.rebooter->simulated()) {
    awaiting_host_reboot_ = true;
    SetStatus("reboot requested from logind; going down");
    return now + absl::Minutes(1);
  }
  // A simulated reboot: carry on as the freshly started agent of the next boot would.
  SimulateRestartForTest();
  return now;
}

void Agent::SimulateRestartForTest() {
  deps_.coordinator->CloseDirectiveStream();
  {
    absl::MutexLock lock(&events_mutex_);
    directives_.clear();
    stream_ended_.reset();
    woken_ = true;
  }
  connected_ = false;
  backoff_ = config_.reconnect_initial_backoff;
  next_connect_attempt_ = absl::InfinitePast();
  next_report_ = absl::InfinitePast();
  waiting_for_lease_ = false;
  next_acquire_ = absl::InfinitePast();
  next_renew_ = absl::InfinitePast();
  reboot_at_.reset();
  awaiting_host_reboot_ = false;
  last_status_.clear();
  tended::state::v1::AgentState on_disk;
  if (ReadProtoJsonFile(journal_path_, &on_disk).ok()) {
    journal_ = on_disk;
  } else {
    journal_.Clear();
  }
  waiting_for_os_lease_ = false;
  next_os_acquire_ = absl::InfinitePast();
  if (os_ != nullptr) {
    os_->Reset();
    StartOsUpgrades();
  }
}

void Agent::Run(const std::atomic<bool>& stop) {
  if (deps_.notifier != nullptr) (void)deps_.notifier->Ready();
  std::optional<absl::Duration> watchdog =
      deps_.notifier != nullptr ? deps_.notifier->WatchdogInterval() : std::nullopt;
  while (!stop.load()) {
    absl::Time next = RunOnce();
    if (watchdog.has_value()) {
      (void)deps_.notifier->WatchdogPing();
      next = std::min(next, deps_.clock->Now() + *watchdog);
    }
    absl::Duration wait =
        std::clamp(next - deps_.clock->Now(), absl::ZeroDuration(), absl::Minutes(5));
    absl::MutexLock lock(&events_mutex_);
    auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(events_mutex_) { return woken_; };
    events_mutex_.AwaitWithTimeout(absl::Condition(&woken), wait);
  }
  if (deps_.notifier != nullptr) (void)deps_.notifier->Stopping();
}

}  // namespace tended::agent
