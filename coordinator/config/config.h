// tended-coordinator's configuration: the typed result of parsing its YAML file once in
// main() and passing it down. Parsing is strict: unknown keys, bad durations, time zones and
// regular expressions are errors naming the key and its line.
#ifndef TENDED_COORDINATOR_CONFIG_CONFIG_H_
#define TENDED_COORDINATOR_CONFIG_CONFIG_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/http_metrics_server.h"
#include "coordinator/config/kubernetes_config.h"
#include "coordinator/config/notifications_config.h"
#include "tended/v1/types.pb.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace tended::coordinator {

// One maintenance window: on the listed weekdays, from `start` to `end` local time in
// `time_zone`. When end <= start the window crosses midnight and belongs to the day it
// opens on.
struct MaintenanceWindow {
  std::vector<absl::Weekday> days;
  absl::Duration start;  // Since local midnight, [0, 24h).
  absl::Duration end;    // Since local midnight, [0, 24h).
  std::string time_zone_name;
  absl::TimeZone time_zone;
};

struct LeasePolicy {
  bool enabled = true;
  int concurrency = 1;
  absl::Duration soak = absl::Hours(24);
  // How long one step of this kind is expected to take: a window too close to its end does
  // not open for it.
  absl::Duration expected_duration = absl::Minutes(30);
  // The holder must renew within this; past it the lease is overdue (never handed over).
  absl::Duration renew_deadline = absl::Minutes(10);
  // A disrupted node that has not come back and verified by then raises an alarm.
  absl::Duration return_deadline = absl::Minutes(30);
  // A granted lease whose disruptive act a gate keeps blocking (halt, window, alerts, fleet
  // health, checked again before the act) is given back after this long.
  absl::Duration begin_wait = absl::Minutes(30);
  // Empty means always open.
  std::vector<MaintenanceWindow> windows;
  // os_upgrade only: the node that upgrades first. The others wait until it installed and
  // verified their planned upgrades and canary_soak passed; its failure stops the rollout
  // (coordinator/os_rollout.h). Empty: no canary.
  std::string canary;
  absl::Duration canary_soak = absl::Hours(24);
  // k8s_upgrade only: the order of a Kubernetes rollout. Control planes (the nodes whose
  // agents report a kube-apiserver manifest) go first, the first of them runs `kubeadm
  // upgrade apply`; then the workers. Nodes named here go in this order, the others after
  // them by name.
  std::vector<std::string> control_plane_order;
  std::vector<std::string> worker_order;
  // k8s_upgrade only: postflight passes when at least this share of the pods the Kubernetes
  // facts count is Ready, and waits up to postflight_wait for it (and for every version).
  double min_pod_ready_ratio = 0.9;
  absl::Duration postflight_wait = absl::Minutes(10);
  // k8s_upgrade only: when a version check finds a new target, detection starts a rollout
  // to it (a patch before a minor; each target once) instead of only announcing it.
  bool auto_start = false;
};

struct AlertsConfig {
  // Empty disables the alerts gate.
  std::string prometheus_url;
  // Alerts whose name matches (searched, as kured does) never block. RE2 syntax.
  std::string ignore_regex_text;
  // ignore_regex_text compiled (CompileIgnoreRegex); null when that is empty. Shared, so
  // copies of the configuration stay cheap.
  std::shared_ptr<const re2::RE2> ignore_regex;
  // Pending alerts do not block.
  bool firing_only = true;
  // When non-empty, only alerts carrying all these labels block.
  std::map<std::string, std::string> match_labels;
  // One request to Prometheus, connecting included.
  absl::Duration timeout = absl::Seconds(10);
  // How often the alerts are read, in the background (coordinator/alert_poller.h).
  absl::Duration poll_interval = absl::Seconds(15);
  // The alerts gate blocks when the last answer is older than this. Longer than
  // poll_interval.
  absl::Duration max_age = absl::Seconds(60);
};

struct FleetConfig {
  // A known node that has not reported for this long blocks the fleet-health gate.
  absl::Duration report_deadline = absl::Minutes(2);
  // How often agents are asked to report.
  absl::Duration report_interval = absl::Seconds(30);
  // A node whose lease was given back without a disruption (a failed drain, a gate that kept
  // blocking the act) waits this long before its next grant, doubling with each such
  // return in a row up to return_backoff_max.
  absl::Duration return_backoff = absl::Minutes(5);
  absl::Duration return_backoff_max = absl::Hours(2);
};

// What an operator certificate may do (coordinator/api/access_control.h).
enum class OperatorRole { kNone = 0, kRead = 1, kAdmin = 2 };

// The gRPC server's certificate and key, and the CA bundle client certificates (agents'
// and operators') must chain to. PEM files, re-read when they change.
struct ServerTlsConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  absl::Duration reload_interval = absl::Seconds(10);
  // CRLs by issuer hash (<hash>.r0), checked at the handshake and, reloaded every
  // reload_interval, on every call; empty: no revocation check.
  std::string crl_directory;
};

struct CoordinatorConfig {
  std::string listen_address = "0.0.0.0:7443";
  // The state ledger's folder (journal, snapshots, LOCK).
  std::string state_dir = "/var/lib/tended-coordinator";
  // A state file of the previous format imported once into an empty ledger: the
  // `state_file` key (whose folder is then the state_dir), else <state_dir>/state.json.
  std::string legacy_state_file = "/var/lib/tended-coordinator/state.json";
  FleetConfig fleet;
  AlertsConfig alerts;
  // Keyed by kind: REBOOT, OS_UPGRADE, K8S_UPGRADE. A kind absent from the file is disabled.
  std::map<tended::v1::LeaseKind, LeasePolicy> leases;
  // When false, a lease of one kind blocks grants of every other kind.
  bool allow_kind_overlap = false;
  // How many released leases and events the state file keeps.
  int history_limit = 1000;
  // HOST:PORT to serve /metrics on; empty: no metrics endpoint. --metrics-listen wins.
  std::string metrics_listen;
  // Unset: /metrics is plain HTTP. Set: HTTPS only, with client certificates required when
  // its client_ca_file is given.
  std::optional<HttpTlsFiles> metrics_tls;
  NotificationsConfig notifications;
  // Cordon, drain and verify through the Kubernetes API; off unless enabled.
  KubernetesConfig kubernetes;
  // Required unless the coordinator runs with --insecure.
  std::optional<ServerTlsConfig> tls;
  // Roles by operator certificate CN; wins over the certificate's OU.
  std::map<std::string, OperatorRole> operators;
};

// `source` names the document in errors (usually the file name).
absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(absl::string_view yaml,
                                                         absl::string_view source);
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);

// The rules between fields, checked without touching the environment (no time zone data):
// ranges, report_interval < report_deadline, alerts.poll_interval < alerts.max_age,
// positive deadlines, return_deadline >= expected_duration, every window at least
// expected_duration long, a compiled ignore regex.
// ParseCoordinatorConfig applies them too; use this on configurations built in code.
absl::Status ValidateCoordinatorConfig(const CoordinatorConfig& config);

// Compiles an alerts.ignore pattern. INVALID_ARGUMENT with RE2's words for a pattern it
// does not accept (RE2 has no backreferences and no lookaround).
absl::StatusOr<std::shared_ptr<const re2::RE2>> CompileIgnoreRegex(const std::string& text);

// Length of a window on a day without a DST change; end <= start crosses midnight, so
// end == start is a whole day.
absl::Duration MaintenanceWindowLength(const MaintenanceWindow& window);

// "reboot", "os_upgrade", "k8s_upgrade".
absl::string_view LeaseKindConfigName(tended::v1::LeaseKind kind);

}  // namespace tended::coordinator

#endif  // TENDED_COORDINATOR_CONFIG_CONFIG_H_
