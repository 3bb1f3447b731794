#include "coordinator/config/notifications_config.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace tended::coordinator {
namespace {

constexpr absl::string_view kPlaceholders[] = {"node",  "lease", "kind",  "message",     "step",
                                               "event", "time",  "token", "blocked_for", "gates"};

constexpr char kUrlHelp[] =
    "use slack://hook:T...-B...-X...@webhook, slack://T.../B.../X..., "
    "generic+https://host/path or generic+http://host/path";

absl::Status Bad(absl::string_view message) { return absl::InvalidArgumentError(message); }

bool IsToken(absl::string_view part) {
  if (part.empty()) return false;
  for (char c : part) {
    if (!absl::ascii_isalnum(c)) return false;
  }
  return true;
}

bool HasSpaceOrControl(absl::string_view text) {
  for (char c : text) {
    if (absl::ascii_isspace(c) || absl::ascii_iscntrl(c)) return true;
  }
  return false;
}

absl::StatusOr<NotificationSink> SlackSink(absl::string_view team, absl::string_view bot,
                                           absl::string_view secret,
                                           absl::string_view slack_api_base,
                                           absl::string_view username) {
  if (!IsToken(team) || !IsToken(bot) || !IsToken(secret)) {
    return Bad(
        "a Slack webhook token has three parts of letters and digits (T.../B.../X..., from "
        "https://hooks.slack.com/services/T.../B.../X...)");
  }
  NotificationSink sink;
  sink.kind = SinkKind::kSlack;
  sink.endpoint = absl::StrCat(absl::StripSuffix(slack_api_base, "/"), "/services/", team, "/", bot,
                               "/", secret);
  sink.label = "slack";
  sink.slack_username = std::string(username);
  return sink;
}

absl::StatusOr<NotificationSink> ParseSlack(absl::string_view rest,
                                            absl::string_view slack_api_base) {
  if (absl::StrContains(rest, '?') || absl::StrContains(rest, '#')) {
    return Bad("slack:// URLs take no query parameters or fragments here");
  }
  absl::string_view authority = rest.substr(0, rest.find('/'));
  absl::string_view path =
      authority.size() < rest.size() ? rest.substr(authority.size()) : absl::string_view();
  size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    absl::string_view host = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon != absl::string_view::npos) {
      absl::string_view user = userinfo.substr(0, colon);
      absl::string_view token = userinfo.substr(colon + 1);
      if (user == "xoxb" || user == "xoxp") {
        return Bad("Slack bot tokens are not supported; use an incoming webhook URL");
      }
      if (user != "hook" || host != "webhook" || !(path.empty() || path == "/")) {
        return Bad(absl::StrCat("expected slack://hook:T...-B...-X...@webhook; ", kUrlHelp));
      }
      std::vector<absl::string_view> parts = absl::StrSplit(token, '-');
      if (parts.size() != 3) {
        return Bad("the webhook token after hook: must be T...-B...-X... (three parts)");
      }
      return SlackSink(parts[0], parts[1], parts[2], slack_api_base, "");
    }
    // Legacy slack://botname@T/B/X.
    std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
    if (userinfo.empty() || parts.size() != 3 || !parts[0].empty()) {
      return Bad(absl::StrCat("expected slack://[botname@]T.../B.../X...; ", kUrlHelp));
    }
    return SlackSink(host, parts[1], parts[2], slack_api_base, userinfo);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  if (parts.size() != 3) {
    return Bad(absl::StrCat("expected slack://T.../B.../X...; ", kUrlHelp));
  }
  return SlackSink(parts[0], parts[1], parts[2], slack_api_base, "");
}

absl::StatusOr<NotificationSink> ParseGeneric(absl::string_view scheme, absl::string_view rest) {
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  absl::string_view host_port = authority.substr(authority.rfind('@') + 1);
  if (host_port.empty() || host_port.front() == ':') {
    return Bad(absl::StrCat("missing host after generic+", scheme, "://"));
  }
  NotificationSink sink;
  sink.kind = SinkKind::kGeneric;
  sink.endpoint = absl::StrCat(scheme, "://", rest);
  sink.label = absl::StrCat("generic+", scheme, "://", host_port);
  return sink;
}

}  // namespace

absl::string_view TransitionName(Transition transition) {
  switch (transition) {
    case Transition::kDisrupting:
      return "disrupting";
    case Transition::kRebooted:
      return "rebooted";
    case Transition::kVerified:
      return "verified";
    case Transition::kBlocked:
      return "blocked";
    case Transition::kOverdue:
      return "overdue";
    case Transition::kVerificationFailed:
      return "verification_failed";
    case Transition::kForceReleased:
      return "force_released";
    case Transition::kHalted:
      return "halted";
    case Transition::kResumed:
      return "resumed";
    case Transition::kKubernetes:
      return "kubernetes";
    case Transition::kRolloutStopped:
      return "rollout_stopped";
    case Transition::kRolloutResumed:
      return "rollout_resumed";
    case Transition::kK8sUpgradeAvailable:
      return "k8s_upgrade_available";
  }
  return "unknown";
}

std::optional<Transition> TransitionFromName(absl::string_view name) {
  for (Transition transition : kAllTransitions) {
    if (TransitionName(transition) == name) return transition;
  }
  return std::nullopt;
}

absl::string_view DefaultTemplate(Transition transition) {
  switch (transition) {
    case Transition::kDisrupting:
      return "Taking node {node} out for {kind}: {step} (lease {lease})";
    case Transition::kRebooted:
      return "Node {node} came back from its reboot; checking it before release";
    case Transition::kVerified:
      return "Node {node} is back and verified after {kind}; lease {lease} released";
    case Transition::kBlocked:
      return "Node {node} has waited {blocked_for} for a {kind} lease: {gates}";
    case Transition::kOverdue:
      return "Lease {lease} for {kind} of node {node} is overdue: {message}";
    case Transition::kVerificationFailed:
      return "Node {node} does not check out after {kind} yet: {message}";
    case Transition::kForceReleased:
      return "Lease {lease} for {kind} of node {node} was force-released: {message}";
    case Transition::kHalted:
      return "Disruptions halted: {message}";
    case Transition::kResumed:
      return "Disruptions resumed";
    case Transition::kKubernetes:
      return "Node {node} ({kind}, lease {lease}): {message}";
    case Transition::kRolloutStopped:
      return "OS upgrades stopped at node {node}: {message}";
    case Transition::kRolloutResumed:
      return "OS upgrades resumed: {message}";
    case Transition::kK8sUpgradeAvailable:
      return "{message}";
  }
  return "";
}

std::string TemplateProblem(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        ++i;
        continue;
      }
      return "a lone \"}\" (write \"}}\" for a literal brace)";
    }
    if (text[i] != '{') continue;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      ++i;
      continue;
    }
    size_t close = text.find('}', i);
    if (close == absl::string_view::npos) return "a \"{\" without its \"}\"";
    absl::string_view name = text.substr(i + 1, close - i - 1);
    bool known = false;
    for (absl::string_view placeholder : kPlaceholders) known = known || placeholder == name;
    if (!known) {
      return absl::StrCat("unknown placeholder {", name, "} (known: {",
                          absl::StrJoin(kPlaceholders, "} {"), "})");
    }
    i = close;
  }
  return "";
}

std::string ExpandTemplate(absl::string_view text,
                           const std::map<std::string, std::string>& values) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == '{') {
      size_t close = text.find('}', i);
      if (close != absl::string_view::npos) {
        auto it = values.find(std::string(text.substr(i + 1, close - i - 1)));
        if (it != values.end()) out += it->second;
        i = close;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<NotificationSink> ParseNotificationUrl(absl::string_view url,
                                                      absl::string_view slack_api_base) {
  if (url.empty()) return Bad("empty URL");
  if (HasSpaceOrControl(url)) return Bad("a notification URL must not contain spaces");
  size_t separator = url.find("://");
  if (separator == absl::string_view::npos) {
    return Bad(absl::StrCat("not a URL; ", kUrlHelp));
  }
  std::string scheme = absl::AsciiStrToLower(url.substr(0, separator));
  absl::string_view rest = url.substr(separator + 3);
  if (scheme == "slack") return ParseSlack(rest, slack_api_base);
  if (scheme == "generic+https" || scheme == "generic") return ParseGeneric("https", rest);
  if (scheme == "generic+http") return ParseGeneric("http", rest);
  if (scheme == "https" || scheme == "http") {
    if (absl::StrContains(rest, "hooks.slack.com/services/")) {
      return Bad("write a Slack webhook as slack://T.../B.../X... (its three path parts)");
    }
    return Bad(absl::StrCat("write a plain webhook as generic+", scheme, "://", rest));
  }
  return Bad(absl::StrCat("unsupported notification service \"", scheme, "\"; ", kUrlHelp));
}

absl::Status ParseNotificationsConfig(const YamlCursor& cursor, NotificationsConfig* config) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"urls", "blocked_threshold", "timeout", "templates", "slack_api_base"}));
  RETURN_IF_ERROR(cursor.Optional("slack_api_base", &config->slack_api_base));
  if (!absl::StartsWith(config->slack_api_base, "http://") &&
      !absl::StartsWith(config->slack_api_base, "https://")) {
    return cursor.Child("slack_api_base").Error("must start with http:// or https://");
  }
  if (cursor.Has("urls")) {
    YamlCursor urls = cursor.Child("urls");
    if (!urls.IsNull() && !urls.IsSequence()) return urls.Error("expected a list of URLs");
    for (const YamlCursor& element : urls.Elements()) {
      ASSIGN_OR_RETURN(std::string url, element.AsString());
      if (auto sink = ParseNotificationUrl(url, config->slack_api_base); !sink.ok()) {
        return element.Error(sink.status().message());
      }
      config->urls.push_back(std::move(url));
    }
  }
  RETURN_IF_ERROR(cursor.Optional("blocked_threshold", &config->blocked_threshold));
  RETURN_IF_ERROR(cursor.Optional("timeout", &config->timeout));
  if (config->timeout <= absl::ZeroDuration() || config->timeout > absl::Minutes(5)) {
    return cursor.Child("timeout").Error("must be longer than 0 and at most 5m");
  }
  if (cursor.Has("templates")) {
    YamlCursor templates = cursor.Child("templates");
    if (!templates.IsNull() && !templates.IsMap()) {
      return templates.Error("expected a mapping of transition names to messages");
    }
    for (auto& [name, value] : templates.Entries()) {
      if (!TransitionFromName(name).has_value()) {
        std::vector<absl::string_view> names;
        for (Transition transition : kAllTransitions) names.push_back(TransitionName(transition));
        return value.Error(absl::StrCat("unknown transition \"", name,
                                        "\" (known: ", absl::StrJoin(names, ", "), ")"));
      }
      ASSIGN_OR_RETURN(std::string text, value.AsString());
      if (std::string problem = TemplateProblem(text); !problem.empty()) {
        return value.Error(problem);
      }
      config->templates[name] = std::move(text);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateNotificationsConfig(const NotificationsConfig& config) {
  if (!absl::StartsWith(config.slack_api_base, "http://") &&
      !absl::StartsWith(config.slack_api_base, "https://")) {
    return Bad("notifications.slack_api_base: must start with http:// or https://");
  }
  for (size_t i = 0; i < config.urls.size(); ++i) {
    if (auto sink = ParseNotificationUrl(config.urls[i], config.slack_api_base); !sink.ok()) {
      return Bad(absl::StrCat("notifications.urls[", i, "]: ", sink.status().message()));
    }
  }
  if (config.blocked_threshold < absl::ZeroDuration()) {
    return Bad("notifications.blocked_threshold: must not be negative");
  }
  if (config.timeout <= absl::ZeroDuration() || config.timeout > absl::Minutes(5)) {
    return Bad("notifications.timeout: must be longer than 0 and at most 5m");
  }
  for (const auto& [name, text] : config.templates) {
    if (!TransitionFromName(name).has_value()) {
      return Bad(absl::StrCat("notifications.templates: unknown transition \"", name, "\""));
    }
    if (std::string problem = TemplateProblem(text); !problem.empty()) {
      return Bad(absl::StrCat("notifications.templates.", name, ": ", problem));
    }
  }
  return absl::OkStatus();
}

}  // namespace tended::coordinator
