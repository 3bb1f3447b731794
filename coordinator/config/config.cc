#include "coordinator/config/config.h"

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/host_port.h"
#include "common/status_macros.h"
#include "common/yaml_util.h"
#include "coordinator/config/notifications_config.h"
#include "re2/re2.h"

namespace tended::coordinator {
namespace {

using tended::v1::LeaseKind;

constexpr std::array<LeaseKind, 3> kLeaseKinds = {tended::v1::LEASE_KIND_REBOOT,
                                                  tended::v1::LEASE_KIND_OS_UPGRADE,
                                                  tended::v1::LEASE_KIND_K8S_UPGRADE};

constexpr int kMaxConcurrency = 1000;
constexpr int64_t kMinHistoryLimit = 10;
constexpr int64_t kMaxHistoryLimit = 100000;

// absl::Weekday order: Monday first.
constexpr std::array<absl::Weekday, 7> kWeekdays = {
    absl::Weekday::monday,   absl::Weekday::tuesday, absl::Weekday::wednesday,
    absl::Weekday::thursday, absl::Weekday::friday,  absl::Weekday::saturday,
    absl::Weekday::sunday};
constexpr std::array<absl::string_view, 7> kShortDayNames = {"mon", "tue", "wed", "thu",
                                                             "fri", "sat", "sun"};
constexpr std::array<absl::string_view, 7> kLongDayNames = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};

std::string UrlProblem(absl::string_view url) {
  if (url.empty()) return "";
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return "must start with http:// or https:// (or be empty to turn the alerts gate off)";
  }
  if (rest.empty() || rest.front() == '/') return "missing host after the scheme";
  for (char c : url) {
    if (absl::ascii_isspace(c) || absl::ascii_iscntrl(c)) return "must not contain spaces";
  }
  return "";
}

bool IsPrometheusLabelName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

std::string DescribeDays(const std::vector<absl::Weekday>& days) {
  if (days.size() == 7) return "daily";
  std::vector<std::string> names;
  for (absl::Weekday day : days) {
    std::string name(kShortDayNames[static_cast<int>(day)]);
    name[0] = absl::ascii_toupper(name[0]);
    names.push_back(std::move(name));
  }
  return absl::StrJoin(names, ",");
}

std::string FormatTimeOfDay(absl::Duration since_midnight) {
  int64_t seconds = absl::ToInt64Seconds(since_midnight);
  std::string text = absl::StrFormat("%02d:%02d", seconds / 3600, (seconds / 60) % 60);
  if (seconds % 60 != 0) absl::StrAppend(&text, absl::StrFormat(":%02d", seconds % 60));
  return text;
}

std::string Describe(const MaintenanceWindow& window) {
  std::string zone =
      window.time_zone_name.empty() ? window.time_zone.name() : window.time_zone_name;
  return absl::StrCat(DescribeDays(window.days), " ", FormatTimeOfDay(window.start), "-",
                      FormatTimeOfDay(window.end), " ", zone);
}

std::optional<int> DayIndex(absl::string_view name) {
  for (int i = 0; i < 7; ++i) {
    if (name == kShortDayNames[i] || name == kLongDayNames[i]) return i;
  }
  return std::nullopt;
}

// "HH:MM" or "HH:MM:SS"; "24:00" only when allow_24 (it comes back as 24h).
std::optional<absl::Duration> ParseTimeOfDay(absl::string_view text, bool allow_24) {
  if (text.size() != 5 && text.size() != 8) return std::nullopt;
  int parts[3] = {0, 0, 0};
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i % 3 == 2) {
      if (c != ':') return std::nullopt;
      continue;
    }
    if (!absl::ascii_isdigit(c)) return std::nullopt;
    parts[i / 3] = parts[i / 3] * 10 + (c - '0');
  }
  int hours = parts[0], minutes = parts[1], seconds = parts[2];
  if (hours == 24 && allow_24 && minutes == 0 && seconds == 0) return absl::Hours(24);
  if (hours > 23 || minutes > 59 || seconds > 59) return std::nullopt;
  return absl::Hours(hours) + absl::Minutes(minutes) + absl::Seconds(seconds);
}

absl::Status MissingKey(const YamlCursor& map, absl::string_view key) {
  return map.Error(absl::StrCat("missing required key \"", key, "\""));
}

absl::StatusOr<std::vector<absl::Weekday>> ParseDays(const YamlCursor& cursor) {
  if (!cursor.IsSequence()) {
    return cursor.Error("expected a list of days, e.g. [mon-fri] or [daily]");
  }
  std::vector<YamlCursor> elements = cursor.Elements();
  if (elements.empty()) return cursor.Error("the list of days is empty");
  std::bitset<7> chosen;
  for (const YamlCursor& element : elements) {
    ASSIGN_OR_RETURN(std::string raw, element.AsString());
    std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    if (text == "daily" || text == "every day") {
      chosen.set();
      continue;
    }
    size_t dash = text.find('-');
    absl::string_view first = absl::StripAsciiWhitespace(absl::string_view(text).substr(0, dash));
    std::optional<int> from = DayIndex(first);
    std::optional<int> to = from;
    if (dash != std::string::npos) {
      to = DayIndex(absl::StripAsciiWhitespace(absl::string_view(text).substr(dash + 1)));
    }
    if (!from.has_value() || !to.has_value()) {
      return element.Error(
          absl::StrCat("unknown day \"", raw,
                       "\" (use mon..sun or monday..sunday, a range like mon-fri, or daily)"));
    }
    // A range may wrap past Sunday: fri-mon is Fri, Sat, Sun, Mon.
    for (int day = *from;; day = (day + 1) % 7) {
      chosen.set(day);
      if (day == *to) break;
    }
  }
  std::vector<absl::Weekday> days;
  for (int i = 0; i < 7; ++i) {
    if (chosen.test(i)) days.push_back(kWeekdays[i]);
  }
  return days;
}

absl::StatusOr<absl::Duration> ParseTime(const YamlCursor& cursor, bool allow_24) {
  ASSIGN_OR_RETURN(std::string text, cursor.AsString());
  std::optional<absl::Duration> value = ParseTimeOfDay(text, allow_24);
  if (!value.has_value()) {
    return cursor.Error(absl::StrCat("not a time of day: \"", text, "\" (use HH:MM or HH:MM:SS, ",
                                     allow_24 ? "00:00 to 24:00)" : "00:00 to 23:59:59)"));
  }
  return *value;
}

absl::StatusOr<MaintenanceWindow> ParseWindow(const YamlCursor& cursor) {
  if (!cursor.IsMap()) {
    return cursor.Error("expected a window: a mapping with days, start, end and time_zone");
  }
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"days", "start", "end", "time_zone"}));
  for (absl::string_view key : {"days", "start", "end"}) {
    if (!cursor.Has(key)) return MissingKey(cursor, key);
  }
  MaintenanceWindow window;
  ASSIGN_OR_RETURN(window.days, ParseDays(cursor.Child("days")));
  ASSIGN_OR_RETURN(window.start, ParseTime(cursor.Child("start"), /*allow_24=*/false));
  ASSIGN_OR_RETURN(absl::Duration end, ParseTime(cursor.Child("end"), /*allow_24=*/true));
  if (end == window.start) {
    return cursor.Child("end").Error(
        "end equals start, so the window would never be open (use 00:00 to 24:00 for a "
        "whole day)");
  }
  // 24:00 is the next midnight: stored as 00:00, which reads as "crosses midnight".
  window.end = end == absl::Hours(24) ? absl::ZeroDuration() : end;
  window.time_zone_name = "UTC";
  RETURN_IF_ERROR(cursor.Optional("time_zone", &window.time_zone_name));
  if (window.time_zone_name.empty() ||
      !absl::LoadTimeZone(window.time_zone_name, &window.time_zone)) {
    return cursor.Child("time_zone")
        .Error(absl::StrCat("unknown time zone \"", window.time_zone_name,
                            "\" (use an IANA name such as Europe/London or UTC)"));
  }
  return window;
}

bool IsNodeNameForCanary(absl::string_view name) {
  if (name.size() > 253 || !absl::ascii_isalnum(name.front()) ||
      !absl::ascii_isalnum(name.back())) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// A broken rule between fields of one lease policy: which key it concerns ("" for the
// policy itself), which window (or -1), and why.
struct PolicyProblem {
  std::string key;
  int window = -1;
  std::string message;
};

std::optional<PolicyProblem> CheckPolicy(const LeasePolicy& policy) {
  if (policy.concurrency < 1 || policy.concurrency > kMaxConcurrency) {
    return PolicyProblem{
        "concurrency", -1,
        absl::StrCat("must be between 1 and ", kMaxConcurrency, ", got ", policy.concurrency)};
  }
  if (policy.soak < absl::ZeroDuration()) {
    return PolicyProblem{"soak", -1, "must not be negative"};
  }
  if (policy.expected_duration <= absl::ZeroDuration()) {
    return PolicyProblem{"expected_duration", -1, "must be longer than 0"};
  }
  if (policy.renew_deadline <= absl::ZeroDuration()) {
    return PolicyProblem{"renew_deadline", -1, "must be longer than 0"};
  }
  if (!policy.canary.empty() && !IsNodeNameForCanary(policy.canary)) {
    return PolicyProblem{"canary", -1,
                         absl::StrCat("\"", policy.canary,
                                      "\" is not a node name (lowercase letters, digits, '-' "
                                      "and '.')")};
  }
  if (policy.begin_wait <= absl::ZeroDuration()) {
    return PolicyProblem{"begin_wait", -1, "must be longer than 0"};
  }
  for (const auto* order : {&policy.control_plane_order, &policy.worker_order}) {
    const char* key = order == &policy.worker_order ? "worker_order" : "control_plane_order";
    std::set<std::string> seen;
    for (const std::string& name : *order) {
      if (!IsNodeNameForCanary(name)) {
        return PolicyProblem{key, -1,
                             absl::StrCat("\"", name,
                                          "\" is not a node name (lowercase letters, digits, '-' "
                                          "and '.')")};
      }
      if (!seen.insert(name).second) {
        return PolicyProblem{key, -1, absl::StrCat("names ", name, " twice")};
      }
    }
  }
  if (!(policy.min_pod_ready_ratio >= 0 && policy.min_pod_ready_ratio <= 1)) {
    return PolicyProblem{"min_pod_ready_ratio", -1, "must be between 0 and 1"};
  }
  if (policy.postflight_wait < absl::ZeroDuration()) {
    return PolicyProblem{"postflight_wait", -1, "must not be negative"};
  }
  if (policy.canary_soak < absl::ZeroDuration()) {
    return PolicyProblem{"canary_soak", -1, "must not be negative"};
  }
  if (policy.return_deadline < policy.expected_duration) {
    return PolicyProblem{"return_deadline", -1,
                         absl::StrCat("(", absl::FormatDuration(policy.return_deadline),
                                      ") is shorter than expected_duration (",
                                      absl::FormatDuration(policy.expected_duration),
                                      "): every normal step would raise the alarm")};
  }
  for (size_t i = 0; i < policy.windows.size(); ++i) {
    const MaintenanceWindow& window = policy.windows[i];
    int index = static_cast<int>(i);
    if (window.days.empty()) return PolicyProblem{"", index, "the list of days is empty"};
    for (absl::Duration t : {window.start, window.end}) {
      if (t < absl::ZeroDuration() || t >= absl::Hours(24)) {
        return PolicyProblem{"", index, "start and end must lie in [00:00, 24:00)"};
      }
    }
    if (MaintenanceWindowLength(window) < policy.expected_duration) {
      return PolicyProblem{
          "", index,
          absl::StrCat("window ", Describe(window), " is shorter than expected_duration (",
                       absl::FormatDuration(policy.expected_duration), ")")};
    }
  }
  return std::nullopt;
}

// Empty when fine.
std::string FleetProblem(const FleetConfig& fleet, std::string* key) {
  if (fleet.report_interval <= absl::ZeroDuration()) {
    *key = "report_interval";
    return "must be longer than 0";
  }
  if (fleet.report_deadline <= fleet.report_interval) {
    *key = "report_interval";
    return absl::StrCat("(", absl::FormatDuration(fleet.report_interval),
                        ") must be shorter than report_deadline (",
                        absl::FormatDuration(fleet.report_deadline), ")");
  }
  return "";
}

// "" when the alerts' timing is consistent; otherwise the problem, and the key in `key`.
std::string AlertTimingProblem(const AlertsConfig& alerts, std::string* key) {
  if (alerts.timeout <= absl::ZeroDuration()) {
    *key = "timeout";
    return "must be longer than 0";
  }
  if (alerts.poll_interval <= absl::ZeroDuration()) {
    *key = "poll_interval";
    return "must be longer than 0";
  }
  if (alerts.max_age <= alerts.poll_interval) {
    *key = "max_age";
    return absl::StrCat("(", absl::FormatDuration(alerts.max_age),
                        ") must be longer than poll_interval (",
                        absl::FormatDuration(alerts.poll_interval), ")");
  }
  return "";
}

absl::Status ParseFleet(const YamlCursor& cursor, FleetConfig* fleet) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"report_deadline", "report_interval", "return_backoff", "return_backoff_max"}));
  RETURN_IF_ERROR(cursor.Optional("report_deadline", &fleet->report_deadline));
  RETURN_IF_ERROR(cursor.Optional("report_interval", &fleet->report_interval));
  RETURN_IF_ERROR(cursor.Optional("return_backoff", &fleet->return_backoff));
  RETURN_IF_ERROR(cursor.Optional("return_backoff_max", &fleet->return_backoff_max));
  std::string key;
  std::string problem = FleetProblem(*fleet, &key);
  if (!problem.empty()) {
    YamlCursor at = cursor.Has(key) ? cursor.Child(key) : cursor;
    return at.Error(cursor.Has(key) ? problem : absl::StrCat(key, " ", problem));
  }
  return absl::OkStatus();
}

absl::Status ParseAlerts(const YamlCursor& cursor, AlertsConfig* alerts) {
  RETURN_IF_ERROR(
      cursor.ExpectMapWithKeys({"prometheus_url", "ignore", "firing_only", "match_labels",
                                "timeout", "poll_interval", "max_age"}));
  RETURN_IF_ERROR(cursor.Optional("prometheus_url", &alerts->prometheus_url));
  if (std::string problem = UrlProblem(alerts->prometheus_url); !problem.empty()) {
    return cursor.Child("prometheus_url").Error(problem);
  }
  RETURN_IF_ERROR(cursor.Optional("ignore", &alerts->ignore_regex_text));
  alerts->ignore_regex.reset();
  if (!alerts->ignore_regex_text.empty()) {
    absl::StatusOr<std::shared_ptr<const re2::RE2>> regex =
        CompileIgnoreRegex(alerts->ignore_regex_text);
    if (!regex.ok()) return cursor.Child("ignore").Error(regex.status().message());
    alerts->ignore_regex = *std::move(regex);
  }
  RETURN_IF_ERROR(cursor.Optional("firing_only", &alerts->firing_only));
  if (cursor.Has("match_labels")) {
    YamlCursor labels = cursor.Child("match_labels");
    if (!labels.IsNull() && !labels.IsMap()) {
      return labels.Error("expected a mapping of label names to values");
    }
    for (auto& [name, value_cursor] : labels.Entries()) {
      if (!IsPrometheusLabelName(name)) {
        return value_cursor.Error(
            absl::StrCat("\"", name, "\" is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
      }
      ASSIGN_OR_RETURN(std::string value, value_cursor.AsString());
      if (!alerts->match_labels.emplace(name, std::move(value)).second) {
        return value_cursor.Error("duplicate label");
      }
    }
  }
  RETURN_IF_ERROR(cursor.Optional("timeout", &alerts->timeout));
  RETURN_IF_ERROR(cursor.Optional("poll_interval", &alerts->poll_interval));
  RETURN_IF_ERROR(cursor.Optional("max_age", &alerts->max_age));
  std::string key;
  std::string problem = AlertTimingProblem(*alerts, &key);
  if (!problem.empty() && key == "max_age" && !cursor.Has("max_age")) {
    return cursor.Child("poll_interval")
        .Error(absl::StrCat("(", absl::FormatDuration(alerts->poll_interval),
                            ") must be shorter than max_age (",
                            absl::FormatDuration(alerts->max_age), ")"));
  }
  if (!problem.empty()) return cursor.Child(key).Error(problem);
  return absl::OkStatus();
}

absl::StatusOr<LeasePolicy> ParseLeasePolicy(const YamlCursor& cursor) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"enabled", "concurrency", "soak", "expected_duration", "renew_deadline", "return_deadline",
       "begin_wait", "windows", "canary", "canary_soak", "control_plane_order", "worker_order",
       "min_pod_ready_ratio", "postflight_wait", "auto_start"}));
  LeasePolicy policy;
  RETURN_IF_ERROR(cursor.Optional("enabled", &policy.enabled));
  int64_t concurrency = policy.concurrency;
  RETURN_IF_ERROR(cursor.Optional("concurrency", &concurrency, 1, kMaxConcurrency));
  policy.concurrency = static_cast<int>(concurrency);
  RETURN_IF_ERROR(cursor.Optional("soak", &policy.soak));
  RETURN_IF_ERROR(cursor.Optional("expected_duration", &policy.expected_duration));
  RETURN_IF_ERROR(cursor.Optional("renew_deadline", &policy.renew_deadline));
  RETURN_IF_ERROR(cursor.Optional("return_deadline", &policy.return_deadline));
  RETURN_IF_ERROR(cursor.Optional("begin_wait", &policy.begin_wait));
  RETURN_IF_ERROR(cursor.Optional("canary", &policy.canary));
  RETURN_IF_ERROR(cursor.Optional("canary_soak", &policy.canary_soak));
  RETURN_IF_ERROR(cursor.Optional("control_plane_order", &policy.control_plane_order));
  RETURN_IF_ERROR(cursor.Optional("worker_order", &policy.worker_order));
  RETURN_IF_ERROR(cursor.Optional("min_pod_ready_ratio", &policy.min_pod_ready_ratio));
  RETURN_IF_ERROR(cursor.Optional("postflight_wait", &policy.postflight_wait));
  RETURN_IF_ERROR(cursor.Optional("auto_start", &policy.auto_start));
  YamlCursor windows = cursor.Child("windows");
  if (!windows.IsNull()) {
    if (!windows.IsSequence()) {
      return windows.Error("expected a list of windows (leave it out for always open)");
    }
    for (const YamlCursor& element : windows.Elements()) {
      ASSIGN_OR_RETURN(MaintenanceWindow window, ParseWindow(element));
      policy.windows.push_back(std::move(window));
    }
  }
  if (std::optional<PolicyProblem> problem = CheckPolicy(policy); problem.has_value()) {
    if (problem->window >= 0) {
      return windows.Elements()[problem->window].Error(problem->message);
    }
    if (cursor.Has(problem->key)) return cursor.Child(problem->key).Error(problem->message);
    return cursor.Error(absl::StrCat(problem->key, " ", problem->message));
  }
  return policy;
}

absl::Status ParseLeases(const YamlCursor& cursor, std::map<LeaseKind, LeasePolicy>* leases) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"reboot", "os_upgrade", "k8s_upgrade"}));
  for (LeaseKind kind : kLeaseKinds) {
    absl::string_view name = LeaseKindConfigName(kind);
    if (!cursor.Has(name)) continue;
    ASSIGN_OR_RETURN(LeasePolicy policy, ParseLeasePolicy(cursor.Child(name)));
    if (kind != tended::v1::LEASE_KIND_OS_UPGRADE && cursor.Child(name).Has("canary")) {
      return cursor.Child(name).Child("canary").Error("only os_upgrade rollouts have a canary");
    }
    if (kind != tended::v1::LEASE_KIND_K8S_UPGRADE) {
      for (const char* key : {"control_plane_order", "worker_order", "min_pod_ready_ratio",
                              "postflight_wait", "auto_start"}) {
        if (cursor.Child(name).Has(key)) {
          return cursor.Child(name).Child(key).Error(
              "only k8s_upgrade (Kubernetes rollouts) has this setting");
        }
      }
    }
    (*leases)[kind] = std::move(policy);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view LeaseKindConfigName(tended::v1::LeaseKind kind) {
  switch (kind) {
    case tended::v1::LEASE_KIND_REBOOT:
      return "reboot";
    case tended::v1::LEASE_KIND_OS_UPGRADE:
      return "os_upgrade";
    case tended::v1::LEASE_KIND_K8S_UPGRADE:
      return "k8s_upgrade";
    default:
      return "unspecified";
  }
}

absl::Duration MaintenanceWindowLength(const MaintenanceWindow& window) {
  if (window.end > window.start) return window.end - window.start;
  return window.end + absl::Hours(24) - window.start;
}

namespace {

absl::Status ParseServerTls(const YamlCursor& cursor, std::optional<ServerTlsConfig>* out) {
  if (cursor.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"cert_file", "key_file", "client_ca_file", "reload_interval", "crl_directory"}));
  ServerTlsConfig tls;
  RETURN_IF_ERROR(cursor.Optional("cert_file", &tls.cert_file));
  RETURN_IF_ERROR(cursor.Optional("key_file", &tls.key_file));
  RETURN_IF_ERROR(cursor.Optional("client_ca_file", &tls.client_ca_file));
  RETURN_IF_ERROR(cursor.Optional("reload_interval", &tls.reload_interval));
  RETURN_IF_ERROR(cursor.Optional("crl_directory", &tls.crl_directory));
  if (!tls.crl_directory.empty() && !absl::StartsWith(tls.crl_directory, "/")) {
    return cursor.Child("crl_directory").Error("must be an absolute path");
  }
  for (const auto& [key, value] :
       {std::pair<absl::string_view, const std::string*>{"cert_file", &tls.cert_file},
        {"key_file", &tls.key_file},
        {"client_ca_file", &tls.client_ca_file}}) {
    if (value->empty()) return cursor.Error(absl::StrCat(key, " is required"));
    if (!absl::StartsWith(*value, "/")) {
      return cursor.Child(key).Error("must be an absolute path");
    }
  }
  if (tls.reload_interval < absl::Seconds(1)) {
    return cursor.Child("reload_interval").Error("must be at least 1s");
  }
  *out = std::move(tls);
  return absl::OkStatus();
}

absl::Status ParseMetricsTls(const YamlCursor& cursor, std::optional<HttpTlsFiles>* out) {
  if (cursor.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"cert_file", "key_file", "client_ca_file"}));
  HttpTlsFiles files;
  RETURN_IF_ERROR(cursor.Optional("cert_file", &files.cert_file));
  RETURN_IF_ERROR(cursor.Optional("key_file", &files.key_file));
  RETURN_IF_ERROR(cursor.Optional("client_ca_file", &files.client_ca_file));
  for (const auto& [key, value] :
       {std::pair<absl::string_view, const std::string*>{"cert_file", &files.cert_file},
        {"key_file", &files.key_file},
        {"client_ca_file", &files.client_ca_file}}) {
    if (value->empty()) {
      if (key == "client_ca_file") continue;
      return cursor.Error(absl::StrCat(key, " is required"));
    }
    if (!absl::StartsWith(*value, "/")) {
      return cursor.Child(key).Error("must be an absolute path");
    }
  }
  *out = std::move(files);
  return absl::OkStatus();
}

absl::Status ParseOperators(const YamlCursor& cursor, std::map<std::string, OperatorRole>* out) {
  if (cursor.IsNull()) return absl::OkStatus();
  if (!cursor.IsMap())
    return cursor.Error("expected a map of operator name to read, admin or none");
  for (const auto& [name, value] : cursor.Entries()) {
    ASSIGN_OR_RETURN(std::string role, value.AsString());
    if (role == "read") {
      (*out)[name] = OperatorRole::kRead;
    } else if (role == "admin") {
      (*out)[name] = OperatorRole::kAdmin;
    } else if (role == "none") {
      (*out)[name] = OperatorRole::kNone;
    } else {
      return value.Error(absl::StrCat("expected read, admin or none, got \"", role, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(absl::string_view yaml,
                                                         absl::string_view source) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseYamlDocument(yaml, source));
  YamlCursor cursor(root, std::string(source));
  // Every key the coordinator knows; anything else is a mistake worth stopping for.
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"listen", "state_dir", "state_file", "history_limit",
                                            "metrics_listen", "notifications", "allow_kind_overlap",
                                            "fleet", "alerts", "leases", "kubernetes", "tls",
                                            "operators", "metrics_tls"}));
  CoordinatorConfig config;
  RETURN_IF_ERROR(ParseServerTls(cursor.Child("tls"), &config.tls));
  RETURN_IF_ERROR(ParseMetricsTls(cursor.Child("metrics_tls"), &config.metrics_tls));
  RETURN_IF_ERROR(ParseOperators(cursor.Child("operators"), &config.operators));
  RETURN_IF_ERROR(cursor.Optional("listen", &config.listen_address));
  if (std::string problem =
          HostPortProblem(config.listen_address, "0.0.0.0:7443 or [::1]:7443", PortZero::kAllow);
      !problem.empty()) {
    return cursor.Child("listen").Error(problem);
  }
  RETURN_IF_ERROR(cursor.Optional("state_dir", &config.state_dir));
  if (!absl::StartsWith(config.state_dir, "/")) {
    return cursor.Child("state_dir").Error("must be an absolute path");
  }
  if (cursor.Has("state_file")) {
    // The previous format's single JSON file: its folder holds the ledger now, and the file
    // is imported once.
    RETURN_IF_ERROR(cursor.Optional("state_file", &config.legacy_state_file));
    if (!absl::StartsWith(config.legacy_state_file, "/")) {
      return cursor.Child("state_file").Error("must be an absolute path");
    }
    if (cursor.Has("state_dir")) {
      return cursor.Child("state_file")
          .Error("state_file is the previous format's key; give state_dir only");
    }
    config.state_dir = std::string(Dirname(config.legacy_state_file));
  } else {
    config.legacy_state_file = absl::StrCat(config.state_dir, "/state.json");
  }
  int64_t history_limit = config.history_limit;
  RETURN_IF_ERROR(
      cursor.Optional("history_limit", &history_limit, kMinHistoryLimit, kMaxHistoryLimit));
  config.history_limit = static_cast<int>(history_limit);
  RETURN_IF_ERROR(cursor.Optional("allow_kind_overlap", &config.allow_kind_overlap));
  RETURN_IF_ERROR(ParseFleet(cursor.Child("fleet"), &config.fleet));
  RETURN_IF_ERROR(ParseAlerts(cursor.Child("alerts"), &config.alerts));
  RETURN_IF_ERROR(ParseLeases(cursor.Child("leases"), &config.leases));
  RETURN_IF_ERROR(cursor.Optional("metrics_listen", &config.metrics_listen));
  if (std::string problem =
          HostPortProblem(config.metrics_listen, "0.0.0.0:9477 or [::1]:9477", PortZero::kAllow);
      !config.metrics_listen.empty() && !problem.empty()) {
    return cursor.Child("metrics_listen").Error(problem);
  }
  RETURN_IF_ERROR(ParseNotificationsConfig(cursor.Child("notifications"), &config.notifications));
  RETURN_IF_ERROR(ParseKubernetesConfig(cursor.Child("kubernetes"), &config.kubernetes));
  // Everything was checked above with its line; this is the backstop for the rules.
  if (absl::Status status = ValidateCoordinatorConfig(config); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", status.message()));
  }
  return config;
}

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  RETURN_IF_ERROR(CheckNotWritableByOthers(path));
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
  return ParseCoordinatorConfig(contents, path);
}

absl::Status ValidateCoordinatorConfig(const CoordinatorConfig& config) {
  if (std::string problem =
          HostPortProblem(config.listen_address, "0.0.0.0:7443 or [::1]:7443", PortZero::kAllow);
      !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("listen: ", problem));
  }
  if (!absl::StartsWith(config.state_dir, "/")) {
    return absl::InvalidArgumentError("state_dir: must be an absolute path");
  }
  if (config.history_limit < kMinHistoryLimit || config.history_limit > kMaxHistoryLimit) {
    return absl::InvalidArgumentError(absl::StrCat("history_limit: must be between ",
                                                   kMinHistoryLimit, " and ", kMaxHistoryLimit,
                                                   ", got ", config.history_limit));
  }
  std::string fleet_key;
  if (std::string problem = FleetProblem(config.fleet, &fleet_key); !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("fleet.", fleet_key, ": ", problem));
  }
  if (std::string problem =
          HostPortProblem(config.metrics_listen, "0.0.0.0:9477 or [::1]:9477", PortZero::kAllow);
      !config.metrics_listen.empty() && !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics_listen: ", problem));
  }
  RETURN_IF_ERROR(ValidateNotificationsConfig(config.notifications));
  const AlertsConfig& alerts = config.alerts;
  if (std::string problem = UrlProblem(alerts.prometheus_url); !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("alerts.prometheus_url: ", problem));
  }
  if (!alerts.ignore_regex_text.empty()) {
    absl::StatusOr<std::shared_ptr<const re2::RE2>> regex =
        CompileIgnoreRegex(alerts.ignore_regex_text);
    if (!regex.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("alerts.ignore: ", regex.status().message()));
    }
    if (alerts.ignore_regex == nullptr ||
        alerts.ignore_regex->pattern() != alerts.ignore_regex_text) {
      return absl::InvalidArgumentError(
          "alerts.ignore: the expression was not compiled (use CompileIgnoreRegex)");
    }
  }
  for (const auto& [name, value] : alerts.match_labels) {
    if (!IsPrometheusLabelName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("alerts.match_labels: \"", name, "\" is not a Prometheus label name"));
    }
  }
  std::string alerts_key;
  if (std::string problem = AlertTimingProblem(alerts, &alerts_key); !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("alerts.", alerts_key, ": ", problem));
  }
  if (absl::Status kubernetes = ValidateKubernetesConfig(config.kubernetes); !kubernetes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("kubernetes.", kubernetes.message()));
  }
  for (const auto& [kind, policy] : config.leases) {
    if (LeaseKindConfigName(kind) == "unspecified") {
      return absl::InvalidArgumentError(
          absl::StrCat("leases: unknown lease kind ", static_cast<int>(kind)));
    }
    if (kind != tended::v1::LEASE_KIND_OS_UPGRADE && !policy.canary.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "leases.", LeaseKindConfigName(kind), ".canary: only os_upgrade rollouts have a canary"));
    }
    if (std::optional<PolicyProblem> problem = CheckPolicy(policy); problem.has_value()) {
      std::string where = absl::StrCat("leases.", LeaseKindConfigName(kind));
      if (problem->window >= 0) absl::StrAppend(&where, ".windows[", problem->window, "]");
      if (!problem->key.empty()) absl::StrAppend(&where, ".", problem->key);
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", problem->message));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const re2::RE2>> CompileIgnoreRegex(const std::string& text) {
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_shared<const RE2>(text, options);
  if (!regex->ok()) {
    return absl::InvalidArgumentError(absl::StrCat("not a regular expression RE2 accepts: \"", text,
                                                   "\": ", regex->error(),
                                                   " (RE2 has no backreferences or lookaround)"));
  }
  return regex;
}

}  // namespace tended::coordinator
