#include "agent/config.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/host_port.h"
#include "common/node_name.h"
#include "common/root_path.h"
#include "common/schedule.h"
#include "common/status_macros.h"
#include "common/yaml_util.h"

namespace tended::agent {
namespace {

constexpr char kNoDotDot[] = "must not contain a \"..\" component";
constexpr char kNoDotDotUnderRoot[] =
    "must not contain a \"..\" component (it is resolved under root and stays inside it)";

// A broken rule: the dotted key and why. Empty key means fine.
struct Problem {
  std::string key;
  std::string message;
};

Problem Check(const AgentConfig& config) {
  if (!config.node_name.empty() && !IsDns1123Subdomain(config.node_name)) {
    return {"node_name",
            absl::StrCat("\"", config.node_name,
                         "\" is not a valid Kubernetes node name (lower-case letters, digits, "
                         "'-' and '.', at most 253 characters)")};
  }
  if (std::string problem = HostPortProblem(config.coordinator_address,
                                            "tended-coordinator.tended.svc:7443 or [fd00::1]:7443");
      !problem.empty()) {
    return {"coordinator", problem};
  }
  if (std::string problem =
          HostPortProblem(config.metrics_listen, "0.0.0.0:9478 or [::1]:9478", PortZero::kAllow);
      !config.metrics_listen.empty() && !problem.empty()) {
    return {"metrics_listen", problem};
  }
  for (const auto& [key, path] :
       {std::pair<const char*, const std::string*>{"tls.cert_file", &config.tls.cert_file},
        {"tls.key_file", &config.tls.key_file},
        {"tls.ca_file", &config.tls.ca_file}}) {
    if (!absl::StartsWith(*path, "/")) return {key, "must be an absolute path"};
  }
  if (config.tls.reload_interval < absl::Seconds(1)) {
    return {"tls.reload_interval", "must be at least 1s"};
  }
  if (config.metrics_tls.has_value()) {
    for (const auto& [key, path] :
         {std::pair<const char*, const std::string*>{"metrics_tls.cert_file",
                                                     &config.metrics_tls->cert_file},
          {"metrics_tls.key_file", &config.metrics_tls->key_file},
          {"metrics_tls.client_ca_file", &config.metrics_tls->client_ca_file}}) {
      if (path->empty() && !absl::EndsWith(key, "client_ca_file")) return {key, "is required"};
      if (!path->empty() && !absl::StartsWith(*path, "/")) return {key, "must be an absolute path"};
    }
  }
  if (!absl::StartsWith(config.root, "/")) return {"root", "must be an absolute path"};
  if (RootPath::HasDotDotComponent(config.root)) return {"root", kNoDotDot};
  if (!absl::StartsWith(config.state_dir, "/")) {
    return {"state_dir", "must be an absolute path (it is resolved under root)"};
  }
  if (RootPath::HasDotDotComponent(config.state_dir)) return {"state_dir", kNoDotDotUnderRoot};
  if (config.report_interval <= absl::ZeroDuration()) {
    return {"report_interval", "must be longer than 0"};
  }
  if (config.check_period <= absl::ZeroDuration()) {
    return {"check_period", "must be longer than 0"};
  }
  if (config.reconnect_initial_backoff <= absl::ZeroDuration()) {
    return {"reconnect.initial_backoff", "must be longer than 0"};
  }
  if (config.reconnect_max_backoff < config.reconnect_initial_backoff) {
    return {"reconnect.max_backoff",
            absl::StrCat("(", absl::FormatDuration(config.reconnect_max_backoff),
                         ") must not be shorter than initial_backoff (",
                         absl::FormatDuration(config.reconnect_initial_backoff), ")")};
  }
  if (!absl::StartsWith(config.reboot.sentinel, "/")) {
    return {"reboot.sentinel", "must be an absolute path (it is resolved under root)"};
  }
  if (RootPath::HasDotDotComponent(config.reboot.sentinel)) {
    return {"reboot.sentinel", kNoDotDotUnderRoot};
  }
  if (!absl::StartsWith(config.reboot.gated_sentinel, "/")) {
    return {"reboot.gated_sentinel", "must be an absolute path (it is resolved under root)"};
  }
  if (RootPath::HasDotDotComponent(config.reboot.gated_sentinel)) {
    return {"reboot.gated_sentinel", kNoDotDotUnderRoot};
  }
  if (config.reboot.gated_sentinel == config.reboot.sentinel) {
    return {"reboot.gated_sentinel", "must differ from reboot.sentinel"};
  }
  if (config.reboot.delay < absl::ZeroDuration()) {
    return {"reboot.delay", "must not be negative"};
  }
  if (config.apt.plan_interval <= absl::ZeroDuration()) {
    return {"apt.plan_interval", "must be longer than 0"};
  }
  if (config.apt.update_interval < absl::ZeroDuration()) {
    return {"apt.update_interval", "must not be negative (0 never refreshes the lists)"};
  }
  if (config.apt.lock_timeout <= absl::ZeroDuration()) {
    return {"apt.lock_timeout", "must be longer than 0"};
  }
  if (absl::StatusOr<Schedule> schedule =
          Schedule::Parse(config.k8s.detect_schedule, config.k8s.detect_time_zone);
      !schedule.ok()) {
    return {"k8s.detect_schedule", std::string(schedule.status().message())};
  }
  if (!absl::StrContains(config.k8s.repo_url_pattern, "{minor}") ||
      !(absl::StartsWith(config.k8s.repo_url_pattern, "https://") ||
        absl::StartsWith(config.k8s.repo_url_pattern, "http://"))) {
    return {"k8s.repo_url_pattern", "must be an http(s) URL with {minor} in it"};
  }
  for (const auto& [key, path] : {std::pair<const char*, const std::string*>{
                                      "k8s.apt_source_file", &config.k8s.apt_source_file},
                                  {"k8s.etcd.snapshot_dir", &config.k8s.etcd.snapshot_dir}}) {
    if (!absl::StartsWith(*path, "/")) {
      return {key, "must be an absolute path (it is resolved under root)"};
    }
    if (RootPath::HasDotDotComponent(*path)) return {key, kNoDotDotUnderRoot};
  }
  if (config.k8s.kubeadm_timeout <= absl::ZeroDuration()) {
    return {"k8s.kubeadm_timeout", "must be longer than 0"};
  }
  if (!absl::StartsWith(config.k8s.etcd.endpoint, "https://") &&
      !absl::StartsWith(config.k8s.etcd.endpoint, "http://")) {
    return {"k8s.etcd.endpoint", "must be an http:// or https:// URL"};
  }
  if (config.k8s.etcd.timeout <= absl::ZeroDuration()) {
    return {"k8s.etcd.timeout", "must be longer than 0"};
  }
  return {};
}

absl::Status ParseReboot(const YamlCursor& cursor, AgentConfig::Reboot* reboot) {
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys({"method", "sentinel", "gated_sentinel", "delay"}));
  if (cursor.Has("method")) {
    YamlCursor method = cursor.Child("method");
    ASSIGN_OR_RETURN(std::string text, method.AsString());
    if (text == "logind") {
      reboot->method = RebootMethod::kLogind;
    } else if (text == "simulate") {
      reboot->method = RebootMethod::kSimulate;
    } else {
      return method.Error(absl::StrCat("unknown method \"", text, "\" (use logind or simulate)"));
    }
  }
  RETURN_IF_ERROR(cursor.Optional("sentinel", &reboot->sentinel));
  RETURN_IF_ERROR(cursor.Optional("gated_sentinel", &reboot->gated_sentinel));
  RETURN_IF_ERROR(cursor.Optional("delay", &reboot->delay));
  return absl::OkStatus();
}

// The `apt:` section: the agent's own keys, then the policy keys through the apt engine's
// parser (given a copy of the mapping without the agent's keys).
absl::Status ParseApt(const YamlCursor& cursor, absl::string_view source, AgentConfig::Apt* apt) {
  RETURN_IF_ERROR(
      cursor.ExpectMapWithKeys({"enabled", "plan_interval", "update_interval", "lock_timeout",
                                "allowed_origins", "origins_pattern", "blacklist", "whitelist",
                                "whitelist_strict", "holds", "replace_apt_config"}));
  if (cursor.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(cursor.Optional("enabled", &apt->enabled));
  RETURN_IF_ERROR(cursor.Optional("plan_interval", &apt->plan_interval));
  RETURN_IF_ERROR(cursor.Optional("update_interval", &apt->update_interval));
  RETURN_IF_ERROR(cursor.Optional("lock_timeout", &apt->lock_timeout));
  YAML::Node policy(YAML::NodeType::Map);
  for (auto it = cursor.node().begin(); it != cursor.node().end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (key == "enabled" || key == "plan_interval" || key == "update_interval" ||
        key == "lock_timeout") {
      continue;
    }
    policy.force_insert(it->first, it->second);
  }
  ASSIGN_OR_RETURN(apt->policy,
                   apt::ParseAptPolicyYaml(YamlCursor(policy, std::string(source), "apt")));
  return absl::OkStatus();
}

absl::Status ParseK8s(const YamlCursor& cursor, AgentConfig::K8s* k8s) {
  RETURN_IF_ERROR(
      cursor.ExpectMapWithKeys({"enabled", "detect_schedule", "detect_time_zone",
                                "repo_url_pattern", "apt_source_file", "kubeadm_timeout", "etcd"}));
  if (cursor.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(cursor.Optional("enabled", &k8s->enabled));
  RETURN_IF_ERROR(cursor.Optional("detect_schedule", &k8s->detect_schedule));
  RETURN_IF_ERROR(cursor.Optional("detect_time_zone", &k8s->detect_time_zone));
  RETURN_IF_ERROR(cursor.Optional("repo_url_pattern", &k8s->repo_url_pattern));
  RETURN_IF_ERROR(cursor.Optional("apt_source_file", &k8s->apt_source_file));
  RETURN_IF_ERROR(cursor.Optional("kubeadm_timeout", &k8s->kubeadm_timeout));
  YamlCursor etcd = cursor.Child("etcd");
  RETURN_IF_ERROR(etcd.ExpectMapWithKeys(
      {"endpoint", "ca_file", "cert_file", "key_file", "snapshot_dir", "keep", "timeout"}));
  if (etcd.IsNull()) return absl::OkStatus();
  RETURN_IF_ERROR(etcd.Optional("endpoint", &k8s->etcd.endpoint));
  RETURN_IF_ERROR(etcd.Optional("ca_file", &k8s->etcd.ca_file));
  RETURN_IF_ERROR(etcd.Optional("cert_file", &k8s->etcd.cert_file));
  RETURN_IF_ERROR(etcd.Optional("key_file", &k8s->etcd.key_file));
  RETURN_IF_ERROR(etcd.Optional("snapshot_dir", &k8s->etcd.snapshot_dir));
  RETURN_IF_ERROR(etcd.Optional("keep", &k8s->etcd.keep, 1, 1000));
  RETURN_IF_ERROR(etcd.Optional("timeout", &k8s->etcd.timeout));
  return absl::OkStatus();
}

// The cursor for a dotted key from Check(), for its line; the nearest present ancestor
// when the key itself was left at its default. Recursive on purpose: assigning a YamlCursor
// would assign its YAML::Node, which rewrites the document.
YamlCursor CursorFor(const YamlCursor& at, absl::string_view dotted, bool* exact) {
  size_t dot = dotted.find('.');
  absl::string_view part = dotted.substr(0, dot);
  if (!at.Has(part)) {
    *exact = false;
    return at;
  }
  if (dot == absl::string_view::npos) {
    *exact = true;
    return at.Child(part);
  }
  return CursorFor(at.Child(part), dotted.substr(dot + 1), exact);
}

}  // namespace

absl::StatusOr<AgentConfig> ParseAgentConfig(absl::string_view yaml, absl::string_view source) {
  ASSIGN_OR_RETURN(YAML::Node root, ParseYamlDocument(yaml, source));
  YamlCursor cursor(root, std::string(source));
  // Every key the agent knows.
  RETURN_IF_ERROR(cursor.ExpectMapWithKeys(
      {"node_name", "coordinator", "insecure", "tls", "root", "state_dir", "report_interval",
       "check_period", "reconnect", "reboot", "apt", "metrics_listen", "metrics_tls", "k8s"}));
  AgentConfig config;
  RETURN_IF_ERROR(cursor.Optional("node_name", &config.node_name));
  RETURN_IF_ERROR(cursor.Optional("coordinator", &config.coordinator_address));
  RETURN_IF_ERROR(cursor.Optional("insecure", &config.insecure));
  YamlCursor tls = cursor.Child("tls");
  RETURN_IF_ERROR(tls.ExpectMapWithKeys({"cert_file", "key_file", "ca_file", "reload_interval"}));
  RETURN_IF_ERROR(tls.Optional("cert_file", &config.tls.cert_file));
  RETURN_IF_ERROR(tls.Optional("key_file", &config.tls.key_file));
  RETURN_IF_ERROR(tls.Optional("ca_file", &config.tls.ca_file));
  RETURN_IF_ERROR(tls.Optional("reload_interval", &config.tls.reload_interval));
  RETURN_IF_ERROR(cursor.Optional("root", &config.root));
  RETURN_IF_ERROR(cursor.Optional("state_dir", &config.state_dir));
  RETURN_IF_ERROR(cursor.Optional("report_interval", &config.report_interval));
  RETURN_IF_ERROR(cursor.Optional("check_period", &config.check_period));
  RETURN_IF_ERROR(cursor.Optional("metrics_listen", &config.metrics_listen));
  if (YamlCursor metrics_tls = cursor.Child("metrics_tls"); !metrics_tls.IsNull()) {
    RETURN_IF_ERROR(metrics_tls.ExpectMapWithKeys({"cert_file", "key_file", "client_ca_file"}));
    HttpTlsFiles files;
    RETURN_IF_ERROR(metrics_tls.Optional("cert_file", &files.cert_file));
    RETURN_IF_ERROR(metrics_tls.Optional("key_file", &files.key_file));
    RETURN_IF_ERROR(metrics_tls.Optional("client_ca_file", &files.client_ca_file));
    config.metrics_tls = std::move(files);
  }
  YamlCursor reconnect = cursor.Child("reconnect");
  RETURN_IF_ERROR(reconnect.ExpectMapWithKeys({"initial_backoff", "max_backoff"}));
  RETURN_IF_ERROR(reconnect.Optional("initial_backoff", &config.reconnect_initial_backoff));
  RETURN_IF_ERROR(reconnect.Optional("max_backoff", &config.reconnect_max_backoff));
  RETURN_IF_ERROR(ParseReboot(cursor.Child("reboot"), &config.reboot));
  RETURN_IF_ERROR(ParseApt(cursor.Child("apt"), source, &config.apt));
  RETURN_IF_ERROR(ParseK8s(cursor.Child("k8s"), &config.k8s));

  Problem problem = Check(config);
  if (!problem.key.empty()) {
    bool exact = false;
    YamlCursor at = CursorFor(cursor, problem.key, &exact);
    if (exact) return at.Error(problem.message);
    return YamlCursor(at.node(), std::string(source), problem.key).Error(problem.message);
  }
  return config;
}

absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path) {
  RETURN_IF_ERROR(CheckNotWritableByOthers(path));
  ASSIGN_OR_RETURN(std::string contents, ReadFileToString(path));
  return ParseAgentConfig(contents, path);
}

absl::Status ValidateAgentConfig(const AgentConfig& config) {
  Problem problem = Check(config);
  if (problem.key.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(problem.key, ": ", problem.message));
}

}  // namespace tended::agent
