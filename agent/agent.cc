#include "agent/agent.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/instance_id.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace tended::agent {
namespace {

using tended::v1::Lease;

constexpr absl::Duration kRetrySoon = absl::Seconds(5);
// A coordinator's report interval is followed within these bounds.
constexpr absl::Duration kMinReportInterval = absl::Seconds(1);
constexpr absl::Duration kMaxReportInterval = absl::Hours(1);
// The longest wait before asking again when the coordinator says "not yet".
constexpr absl::Duration kMaxActRetryDelay = absl::Seconds(30);

std::shared_ptr<spdlog::logger> Log() { return Logger("agent"); }

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
      backoff_(config.reconnect_initial_backoff),
      report_interval_(config.report_interval) {}

Agent::~Agent() {
  deps_.coordinator->CloseDirectiveStream();
  if (k8s_worker_.joinable()) k8s_worker_.join();
}

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
  RETURN_IF_ERROR(MakePrivateDirectory(agent->root_.Resolve(config.state_dir)));
  ASSIGN_OR_RETURN(agent->instance_id_,
                   LoadOrCreateAgentInstanceId(agent->root_.Resolve(
                       absl::StrCat(config.state_dir, "/", kAgentIdFileName))));
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
  // A journal from before max_fencing_token_seen still knows its lease's token.
  if (agent->journal_.has_lease()) agent->NoteFencingToken(agent->journal_.lease().fencing_token());

  LeaseRequester::Options reboot;
  reboot.node_name = agent->node_name_;
  reboot.agent_instance_id = agent->instance_id_;
  reboot.kind = tended::v1::LEASE_KIND_REBOOT;
  reboot.what = "a reboot lease";
  reboot.check_period = config.check_period;
  agent->reboot_requester_ =
      std::make_unique<LeaseRequester>(dependencies.coordinator, *dependencies.clock, reboot);
  if (dependencies.packages != nullptr) {
    LeaseRequester::Options os = reboot;
    os.kind = tended::v1::LEASE_KIND_OS_UPGRADE;
    os.what = "an OS upgrade lease";
    agent->os_requester_ =
        std::make_unique<LeaseRequester>(dependencies.coordinator, *dependencies.clock, os);
    OsUpgradeStep::Options options;
    options.plan_interval = config.apt.plan_interval;
    options.update_interval = config.apt.update_interval;
    options.background = dependencies.apt_in_background;
    options.status = dependencies.apt_plan_status;
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

absl::Duration Agent::ActRetryDelay() const {
  return std::min(config_.check_period, kMaxActRetryDelay);
}

void Agent::NoteFencingToken(uint64_t token) {
  if (token > journal_.max_fencing_token_seen()) journal_.set_max_fencing_token_seen(token);
}

void Agent::AdoptLease(const Lease& lease, absl::string_view how) {
  if (lease.node_name() != node_name_) return;
  if (journal_.has_lease() && journal_.lease().id() == lease.id()) {
    // Prepared (drained) now: the act may begin at once rather than at the next retry.
    if (journal_.lease().preparing() && !lease.preparing()) next_lease_act_ = absl::InfinitePast();
    *journal_.mutable_lease() = lease;
  } else {
    if (journal_.has_lease() && journal_.lease().fencing_token() > lease.fencing_token()) return;
    journal_.clear_step();
    journal_.clear_boot_id_before_step();
    journal_.clear_step_report();
    journal_.clear_step_report_delivered();
    journal_.clear_step_packages();
    journal_.clear_k8s_steps_done();
    journal_.clear_k8s_step_in_flight();
    *journal_.mutable_lease() = lease;
    next_lease_act_ = absl::InfinitePast();
    Log()->info("holding lease {} (token {}), {}", lease.id(), lease.fencing_token(), how);
  }
  NoteFencingToken(lease.fencing_token());
  for (LeaseRequester* requester : {reboot_requester_.get(), os_requester_.get()}) {
    if (requester != nullptr && requester->kind() == lease.kind()) requester->Reset();
  }
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
  journal_.clear_step_packages();
  journal_.clear_k8s_steps_done();
  journal_.clear_k8s_step_in_flight();
  reboot_at_.reset();
  next_lease_act_ = absl::InfinitePast();
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
  if (deps_.k8s_installed != nullptr) FillK8sFacts(facts.mutable_k8s());
  tended::v1::ReportFactsRequest request;
  *request.mutable_facts() = std::move(facts);
  request.set_agent_instance_id(instance_id_);
  if (journal_.has_lease()) *request.mutable_held_lease() = journal_.lease();
  request.set_max_fencing_token_seen(journal_.max_fencing_token_seen());
  request.set_coordinator_state_id(journal_.coordinator_state_id());
  ASSIGN_OR_RETURN(auto response, deps_.coordinator->ReportFacts(request));
  if (!response.state_id().empty() && response.state_id() != journal_.coordinator_state_id()) {
    if (!journal_.coordinator_state_id().empty()) {
      Log()->warn("the coordinator's state is now {} (was {})", response.state_id(),
                  journal_.coordinator_state_id());
    }
    journal_.set_coordinator_state_id(response.state_id());
    if (absl::Status saved = SaveJournal(); !saved.ok()) {
      Log()->error("cannot journal the coordinator's state id: {}", saved.ToString());
    }
  }
  if (response.has_report_interval()) {
    const absl::Duration told = FromProtoDuration(response.report_interval());
    if (told > absl::ZeroDuration()) {
      const absl::Duration interval = std::clamp(told, kMinReportInterval, kMaxReportInterval);
      if (interval != report_interval_) {
        Log()->info("reporting every {} as the coordinator asks", absl::FormatDuration(interval));
        report_interval_ = interval;
      }
    }
  }
  next_report_ = deps_.clock->Now() + report_interval_;
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
    tended::v1::WatchDirectivesRequest watch;
    watch.set_node_name(node_name_);
    watch.set_agent_instance_id(instance_id_);
    deps_.coordinator->OpenDirectiveStream(
        watch, [this](const tended::v1::Directive& d) { PostDirective(d); },
        [this](const absl::Status& status) { PostStreamEnded(status); });
    // Ask again: the coordinator may have restarted.
    reboot_requester_->Reset();
    if (os_requester_ != nullptr) os_requester_->Reset();
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
  if (deps_.k8s_version_check != nullptr) {
    os_next = std::min(os_next, deps_.k8s_version_check->RunIfDue(now));
    if (deps_.k8s_version_check->TakeChanged()) next_report_ = absl::InfinitePast();
  }
  if (now >= next_report_) {
    if (absl::Status reported = Report(); !reported.ok()) {
      Disconnected(reported);
      return next_connect_attempt_;
    }
  }

  if (K8sStepRunning() &&
      !(journal_.has_lease() && journal_.lease().kind() == tended::v1::LEASE_KIND_K8S_UPGRADE)) {
    // Its lease ended (force-released) while kubeadm or apt still runs: nothing else may
    // start on this node, a reboot least of all, until the step is over.
    SetStatus(
        "a Kubernetes step still runs after its lease ended; nothing else starts until "
        "it ends");
    return std::min({now + absl::Seconds(2), next_report_, os_next});
  }
  const bool reboot_needed = facts_reader_.RebootRequired();
  absl::Time next =
      journal_.has_lease() ? HandleLease(*boot_id, reboot_needed) : HandleNoLease(reboot_needed);
  if (!connected_) return next_connect_attempt_;
  return std::min({next, next_report_, os_next});
}

absl::Time Agent::HandleNoLease(bool reboot_needed) {
  const absl::Time now = deps_.clock->Now();
  // The kinds in priority order: the reboot goes first, OS upgrades are asked for after it.
  LeaseRequester* wanted = nullptr;
  std::string idle = "idle: no reboot required";
  if (reboot_needed) {
    wanted = reboot_requester_.get();
  } else if (os_ != nullptr) {
    const std::optional<apt::UpgradePlan>& plan = os_->plan();
    if (plan.has_value() && !plan->upgrades.empty()) {
      wanted = os_requester_.get();
    } else {
      idle = plan.has_value() ? "idle: no reboot required, no OS upgrades"
                              : "idle: no reboot required; the OS upgrade plan is not ready";
    }
  }
  for (LeaseRequester* requester : {reboot_requester_.get(), os_requester_.get()}) {
    if (requester == nullptr || requester == wanted || !requester->waiting()) continue;
    if (absl::Status cancelled = requester->Cancel(); !cancelled.ok()) {
      Disconnected(cancelled);
      return next_connect_attempt_;
    }
  }
  if (wanted == nullptr) {
    SetStatus(idle);
    return absl::InfiniteFuture();
  }
  LeaseRequester::Answer answer = wanted->Ask([&]() -> std::string {
    if (wanted == os_requester_.get()) return DescribePlan(*os_->plan());
    auto facts = facts_reader_.Read();
    return absl::StrCat("reboot-required: ",
                        facts.ok() ? absl::StrJoin(facts->reboot_required_reasons(), ", ") : "");
  });
  switch (answer.result) {
    case LeaseRequester::Answer::Result::kGranted:
      AdoptLease(answer.lease, "granted at once");
      return now;
    case LeaseRequester::Answer::Result::kWaiting:
      SetStatus(answer.status);
      return answer.next;
    case LeaseRequester::Answer::Result::kUnreachable:
      break;
  }
  Disconnected(answer.error);
  return next_connect_attempt_;
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
  report_interval_ = config_.report_interval;
  next_renew_ = absl::InfinitePast();
  next_lease_act_ = absl::InfinitePast();
  reboot_at_.reset();
  awaiting_host_reboot_ = false;
  last_status_.clear();
  reboot_requester_->Reset();
  if (os_requester_ != nullptr) os_requester_->Reset();
  auto id = LoadOrCreateAgentInstanceId(
      root_.Resolve(absl::StrCat(config_.state_dir, "/", kAgentIdFileName)));
  if (id.ok()) {
    instance_id_ = *id;
  } else {
    Log()->error("{}; keeping instance id {}", id.status().ToString(), instance_id_);
  }
  tended::state::v1::AgentState on_disk;
  if (ReadProtoJsonFile(journal_path_, &on_disk).ok()) {
    journal_ = on_disk;
  } else {
    journal_.Clear();
  }
  if (os_ != nullptr) {
    os_->Reset();
    StartOsUpgrades();
  }
  if (k8s_worker_.joinable()) k8s_worker_.join();
  {
    absl::MutexLock lock(&k8s_mutex_);
    k8s_running_ = false;
    k8s_outcome_.reset();
  }
  last_snapshot_.Clear();
  last_snapshot_loaded_ = false;
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
