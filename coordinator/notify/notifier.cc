#include "coordinator/notify/notifier.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/http_client.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace tended::coordinator {
namespace {

using tended::v1::Event;

constexpr size_t kMaxAnswerBytes = 64 * 1024;
constexpr size_t kAnswerSnippetBytes = 120;

std::shared_ptr<spdlog::logger> Log() { return Logger("notify"); }

std::string KindName(tended::v1::LeaseKind kind) {
  if (kind == tended::v1::LEASE_KIND_UNSPECIFIED) return "";
  return std::string(LeaseKindConfigName(kind));
}

std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// "1h30m" rather than absl's "1h30m0s".
std::string FormatWait(absl::Duration duration) {
  duration = absl::Trunc(duration, absl::Seconds(1));
  std::string text = absl::FormatDuration(duration);
  if (absl::EndsWith(text, "m0s")) text.resize(text.size() - 2);
  if (absl::EndsWith(text, "h0m")) text.resize(text.size() - 2);
  return text;
}

// Printable ASCII of a server's answer, for a log line.
std::string Snippet(absl::string_view text) {
  std::string out;
  for (char c : text.substr(0, kAnswerSnippetBytes)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > kAnswerSnippetBytes) out += "...";
  return out;
}

}  // namespace

absl::Status PostWebhook(HttpClient& http, const NotificationSink& sink,
                         const std::string& json_body, absl::Duration timeout) {
  HttpClient::Request request;
  request.method = "POST";
  request.url = sink.endpoint;
  // The endpoint holds the webhook's secret: messages name the sink instead.
  request.url_for_messages = sink.label;
  request.headers = {{"Content-Type", "application/json"}};
  request.body = json_body;
  request.timeout = timeout;
  request.max_response_bytes = kMaxAnswerBytes;
  request.user_agent = "tended-coordinator/" TENDED_VERSION;
  absl::StatusOr<HttpClient::Response> response = http.Send(request);
  if (!response.ok()) return response.status();
  if (!response->ok()) {
    std::string message = absl::StrCat("POST ", sink.label, ": HTTP ", response->status_code, ": ",
                                       Snippet(response->body));
    if (response->status_code == 429 || response->status_code >= 500) {
      return absl::UnavailableError(message);
    }
    return absl::FailedPreconditionError(message);
  }
  return absl::OkStatus();
}

std::string SlackPayload(const Notification& notification, const NotificationSink& sink) {
  nlohmann::json body = {{"text", notification.text}};
  if (!sink.slack_username.empty()) body["username"] = sink.slack_username;
  return ToJsonText(body);
}

std::string GenericPayload(const Notification& notification) {
  nlohmann::json body = {
      {"event", std::string(TransitionName(notification.transition))},
      {"message", notification.text},
      {"node", notification.node},
      {"lease", notification.lease},
      {"kind", notification.kind},
      {"detail", notification.detail},
      {"time", Rfc3339(notification.time)},
      {"sequence", notification.sequence},
      {"fencing_token", notification.fencing_token},
  };
  return ToJsonText(body);
}

absl::StatusOr<std::unique_ptr<Notifier>> Notifier::Create(const NotificationsConfig& config,
                                                           const Clock& clock,
                                                           Coordinator* coordinator,
                                                           metrics::Registry* registry,
                                                           Options options) {
  if (absl::Status valid = ValidateNotificationsConfig(config); !valid.ok()) return valid;
  std::vector<NotificationSink> sinks;
  std::map<std::string, int> seen;
  for (const std::string& url : config.urls) {
    absl::StatusOr<NotificationSink> sink = ParseNotificationUrl(url, config.slack_api_base);
    if (!sink.ok()) return sink.status();
    // Two sinks of the same name get #2, #3 so their counters stay apart.
    int count = ++seen[sink->label];
    if (count > 1) absl::StrAppend(&sink->label, "#", count);
    sinks.push_back(*std::move(sink));
  }
  if (options.http == nullptr) options.http = DefaultHttpClient();
  options.max_attempts = std::max(1, options.max_attempts);
  options.max_queue = std::max<size_t>(1, options.max_queue);
  return std::unique_ptr<Notifier>(
      new Notifier(config, clock, coordinator, registry, std::move(options), std::move(sinks)));
}

Notifier::Notifier(const NotificationsConfig& config, const Clock& clock, Coordinator* coordinator,
                   metrics::Registry* registry, Options options,
                   std::vector<NotificationSink> sinks)
    : config_(config),
      clock_(clock),
      coordinator_(coordinator),
      options_(std::move(options)),
      sinks_(std::move(sinks)),
      sent_(registry->AddCounter("tended_notifications_sent_total",
                                 "Notifications delivered, by sink.", {"sink"})),
      failed_(registry->AddCounter(
          "tended_notifications_failed_total",
          "Notifications that could not be delivered after every attempt, by sink.", {"sink"})),
      dropped_(registry->AddCounter("tended_notifications_dropped_total",
                                    "Notifications dropped because the queue was full.")) {
  for (const NotificationSink& sink : sinks_) {
    sent_.Increment({sink.label}, 0);
    failed_.Increment({sink.label}, 0);
  }
  dropped_.Increment({}, 0);
}

Notifier::~Notifier() { Stop(); }

void Notifier::Start() {
  if (coordinator_ != nullptr) {
    tended::v1::ListLeasesResponse leases = coordinator_->ListLeases({});
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& lease : leases.leases()) {
      if (lease.phase() == tended::v1::LEASE_PHASE_RELEASED) continue;
      // An event heard since is newer than this listing.
      leases_by_node_.emplace(lease.node_name(),
                              LeaseInfo{lease.id(), KindName(lease.kind()), lease.fencing_token()});
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_ || stopping_) return;
  started_ = true;
  worker_ = std::thread([this] { WorkerLoop(); });
}

void Notifier::Stop() {
  size_t undelivered = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    undelivered = queue_.size();
    queue_.clear();
  }
  wake_.notify_all();
  idle_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (undelivered > 0) Log()->warn("stopping with {} notifications undelivered", undelivered);
}

bool Notifier::Render(Transition transition, std::map<std::string, std::string> values,
                      Notification* notification) const {
  if (sinks_.empty()) return false;
  auto custom = config_.templates.find(std::string(TransitionName(transition)));
  absl::string_view text =
      custom != config_.templates.end() ? custom->second : DefaultTemplate(transition);
  if (text.empty()) return false;  // Silenced.
  values["event"] = std::string(TransitionName(transition));
  values["time"] = Rfc3339(notification->time);
  notification->transition = transition;
  notification->text = ExpandTemplate(text, values);
  return true;
}

void Notifier::OnEvent(const Event& event) {
  const std::string kind = KindName(event.lease_kind());
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<Transition> transition;
  const LeaseInfo* lease = nullptr;
  LeaseInfo from_event{event.lease_id(), kind, event.fencing_token()};
  std::string step;
  switch (event.type()) {
    case tended::v1::EVENT_TYPE_LEASE_REQUESTED:
      // The event carries no kind; the message names it. Blocked checks key on the node.
      requested_at_[{event.node_name(), ""}] = FromProtoTimestamp(event.time());
      break;
    case tended::v1::EVENT_TYPE_LEASE_GRANTED:
      leases_by_node_[event.node_name()] = from_event;
      requested_at_.erase({event.node_name(), ""});
      break;
    case tended::v1::EVENT_TYPE_LEASE_PHASE_CHANGED:
      if (event.lease_phase() == tended::v1::LEASE_PHASE_DISRUPTING) {
        transition = Transition::kDisrupting;
        step = std::string(absl::StripPrefix(event.message(), "DISRUPTING: "));
      }
      break;
    case tended::v1::EVENT_TYPE_NODE_REBOOTED:
      if (auto it = leases_by_node_.find(event.node_name()); it != leases_by_node_.end()) {
        transition = Transition::kRebooted;
        lease = &it->second;
      }
      break;
    case tended::v1::EVENT_TYPE_LEASE_RELEASED:
      transition = Transition::kVerified;
      break;
    case tended::v1::EVENT_TYPE_LEASE_OVERDUE:
      transition = Transition::kOverdue;
      break;
    case tended::v1::EVENT_TYPE_LEASE_VERIFICATION_FAILED:
      transition = Transition::kVerificationFailed;
      break;
    case tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED:
      transition = Transition::kForceReleased;
      break;
    case tended::v1::EVENT_TYPE_HALTED:
      transition = Transition::kHalted;
      break;
    case tended::v1::EVENT_TYPE_RESUMED:
      transition = Transition::kResumed;
      break;
    case tended::v1::EVENT_TYPE_KUBERNETES_STEP:
      transition = Transition::kKubernetes;
      break;
    case tended::v1::EVENT_TYPE_ROLLOUT_STOPPED:
      transition = Transition::kRolloutStopped;
      break;
    case tended::v1::EVENT_TYPE_ROLLOUT_RESUMED:
      transition = Transition::kRolloutResumed;
      break;
    case tended::v1::EVENT_TYPE_K8S_UPGRADE_AVAILABLE:
      transition = Transition::kK8sUpgradeAvailable;
      break;
    default:
      break;
  }
  if (lease == nullptr && !event.lease_id().empty()) lease = &from_event;
  if (transition.has_value()) {
    Notification notification;
    notification.node = event.node_name();
    notification.lease = lease != nullptr ? lease->id : "";
    notification.kind = lease != nullptr ? lease->kind : kind;
    notification.fencing_token = lease != nullptr ? lease->token : 0;
    notification.detail = event.message();
    notification.time = FromProtoTimestamp(event.time());
    notification.sequence = event.sequence();
    std::map<std::string, std::string> values = {
        {"node", notification.node},
        {"lease", notification.lease},
        {"kind", notification.kind},
        {"message", event.message()},
        {"step", step},
        {"token", notification.fencing_token > 0 ? absl::StrCat(notification.fencing_token) : ""}};
    if (Render(*transition, std::move(values), &notification)) Enqueue(std::move(notification));
  }
  switch (event.type()) {
    case tended::v1::EVENT_TYPE_LEASE_RELEASED:
    case tended::v1::EVENT_TYPE_LEASE_RETURNED:
    case tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED:
      if (auto it = leases_by_node_.find(event.node_name());
          it != leases_by_node_.end() && it->second.id == event.lease_id()) {
        leases_by_node_.erase(it);
      }
      break;
    case tended::v1::EVENT_TYPE_NODE_REMOVED:
      leases_by_node_.erase(event.node_name());
      requested_at_.erase({event.node_name(), ""});
      break;
    default:
      break;
  }
}

void Notifier::Enqueue(Notification notification) {
  if (stopping_) return;
  if (queue_.size() >= options_.max_queue) {
    Log()->warn("notification queue full: dropping \"{}\"", queue_.front().text);
    queue_.pop_front();
    dropped_.Increment();
  }
  queue_.push_back(std::move(notification));
  wake_.notify_all();
}

void Notifier::CheckBlocked() {
  if (coordinator_ == nullptr || config_.blocked_threshold <= absl::ZeroDuration() ||
      sinks_.empty()) {
    return;
  }
  std::lock_guard<std::mutex> one_at_a_time(check_mutex_);
  // Outside mutex_: the coordinator's lock is taken before ours (OnEvent runs under it).
  absl::StatusOr<tended::v1::ExplainGatesResponse> explained = coordinator_->ExplainGates({});
  if (!explained.ok()) {
    Log()->warn("cannot check for blocked requests: {}", explained.status().ToString());
    return;
  }
  const absl::Time now = clock_.Now();
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::pair<std::string, std::string>, Episode> still_blocked;
  for (const auto& explanation : explained->explanations()) {
    if (explanation.would_grant()) continue;
    std::vector<std::string> reasons;
    for (const auto& gate : explanation.gates()) {
      if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
        reasons.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
      }
    }
    const std::string kind = KindName(explanation.kind());
    for (const std::string& node : explanation.waiting_nodes()) {
      std::pair<std::string, std::string> key{node, kind};
      Episode episode;
      if (auto open = episodes_.find(key); open != episodes_.end()) {
        episode = open->second;
      } else {
        auto requested = requested_at_.find({node, ""});
        episode.since = requested != requested_at_.end() ? std::min(requested->second, now) : now;
      }
      if (!episode.announced && now - episode.since >= config_.blocked_threshold) {
        episode.announced = true;
        Notification notification;
        notification.node = node;
        notification.kind = kind;
        notification.time = now;
        notification.detail = absl::StrJoin(reasons, "; ");
        std::map<std::string, std::string> values = {
            {"node", node},
            {"kind", kind},
            {"blocked_for", FormatWait(now - episode.since)},
            {"gates", notification.detail},
            {"message", notification.detail}};
        if (Render(Transition::kBlocked, std::move(values), &notification)) {
          Enqueue(std::move(notification));
        }
      }
      still_blocked[key] = episode;
    }
  }
  // A request granted, withdrawn, or whose gates pass ends its episode.
  episodes_ = std::move(still_blocked);
}

void Notifier::WorkerLoop() {
  auto next_check = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (std::chrono::steady_clock::now() >= next_check) {
      lock.unlock();
      CheckBlocked();
      lock.lock();
      next_check =
          std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options_.check_interval);
      continue;
    }
    if (queue_.empty()) {
      wake_.wait_until(lock, next_check, [this] { return stopping_ || !queue_.empty(); });
      continue;
    }
    Notification notification = std::move(queue_.front());
    queue_.pop_front();
    delivering_ = true;
    lock.unlock();
    Deliver(notification);
    lock.lock();
    delivering_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  delivering_ = false;
  idle_.notify_all();
}

void Notifier::Deliver(const Notification& notification) {
  for (const NotificationSink& sink : sinks_) {
    const std::string body = sink.kind == SinkKind::kSlack ? SlackPayload(notification, sink)
                                                           : GenericPayload(notification);
    absl::Duration backoff = options_.retry_backoff;
    absl::Status status;
    for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      status = PostWebhook(*options_.http, sink, body, config_.timeout);
      // A 4xx (or an answer too large to read) came from the server: retrying won't help.
      if (status.ok() || absl::IsFailedPrecondition(status) || absl::IsResourceExhausted(status)) {
        break;
      }
      if (attempt == options_.max_attempts) break;
      std::unique_lock<std::mutex> lock(mutex_);
      if (wake_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [this] { return stopping_; })) {
        break;
      }
      backoff *= 2;
    }
    if (status.ok()) {
      sent_.Increment({sink.label});
      Log()->debug("sent {} notification to {}", TransitionName(notification.transition),
                   sink.label);
    } else {
      failed_.Increment({sink.label});
      Log()->warn("notification to {} failed ({}): {}", sink.label, notification.text,
                  status.ToString());
    }
  }
}

bool Notifier::WaitIdleForTest(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return idle_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                        [this] { return stopping_ || (queue_.empty() && !delivering_); });
}

}  // namespace tended::coordinator
