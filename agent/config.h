// tended-agent's configuration, parsed strictly from YAML once in main() and passed down.
#ifndef TENDED_AGENT_CONFIG_H_
#define TENDED_AGENT_CONFIG_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/apt/upgrade_policy.h"
#include "common/http_metrics_server.h"

namespace tended::agent {

enum class RebootMethod { kLogind, kSimulate };

struct AgentConfig {
  // Empty means the host name.
  std::string node_name;
  std::string coordinator_address = "tended-coordinator.tended.svc:7443";
  // Plaintext gRPC to the coordinator (a trusted network only); `tls` is then unused.
  bool insecure = false;
  // mTLS to the coordinator: this node's client certificate and key (the kubelet's by
  // default: CN=system:node:<name>, O=system:nodes) and the CA bundle the coordinator's
  // certificate must chain to. Absolute host paths (not under root), re-read when changed.
  struct Tls {
    std::string cert_file = "/var/lib/kubelet/pki/kubelet-client-current.pem";
    std::string key_file = "/var/lib/kubelet/pki/kubelet-client-current.pem";
    std::string ca_file = "/etc/tended/tls/ca.crt";
    absl::Duration reload_interval = absl::Seconds(10);
  } tls;
  // Every path the agent touches resolves under this.
  std::string root = "/";
  std::string state_dir = "/var/lib/tended";
  absl::Duration report_interval = absl::Seconds(30);
  // A backstop: a waiting lease request is repeated this often even without a directive.
  absl::Duration check_period = absl::Hours(1);
  // HOST:PORT to serve /metrics on; empty: no metrics endpoint. --metrics-listen wins.
  std::string metrics_listen;
  // Unset: /metrics is plain HTTP. Set: HTTPS only, with client certificates required when
  // its client_ca_file is given.
  std::optional<HttpTlsFiles> metrics_tls;
  absl::Duration reconnect_initial_backoff = absl::Seconds(1);
  absl::Duration reconnect_max_backoff = absl::Seconds(60);

  struct Reboot {
    RebootMethod method = RebootMethod::kLogind;
    std::string sentinel = "/var/run/reboot-required";
    std::string gated_sentinel = "/var/run/gated-reboot-required";
    // Pause between the lease's fence check and the reboot.
    absl::Duration delay = absl::Seconds(30);
  } reboot;

  // OS package upgrades through the apt engine (agent/apt), under OS_UPGRADE leases.
  struct Apt {
    bool enabled = false;
    // How often the upgrade plan is computed and reported.
    absl::Duration plan_interval = absl::Hours(1);
    // How often the package lists are refreshed before planning; 0: never (something else
    // refreshes them).
    absl::Duration update_interval = absl::Hours(12);
    // How long an upgrade waits for another apt or dpkg to release the lock.
    absl::Duration lock_timeout = absl::Minutes(10);
    // Origins, blacklist, whitelist and holds added to (or replacing) the apt configuration's.
    apt::AptPolicyOverrides policy;
  } apt;

  // Kubernetes: the installed versions in every report, the scheduled version check, and
  // the typed steps of K8S_UPGRADE leases (agent/k8s). Package steps go through the apt
  // engine whether or not apt.enabled is set.
  struct K8s {
    bool enabled = false;
    // When the version check runs (common/schedule.h), in detect_time_zone.
    std::string detect_schedule = "0 12 * * sun";
    std::string detect_time_zone = "UTC";
    // One repository per minor; "{minor}" becomes e.g. 1.32.
    std::string repo_url_pattern = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";
    // The file with the repository's source line, resolved under root.
    std::string apt_source_file = "/etc/apt/sources.list.d/kubernetes.list";
    absl::Duration kubeadm_timeout = absl::Minutes(20);
    // The ETCD_SNAPSHOT step on a control plane (kubeadm's PKI paths, resolved under root).
    struct Etcd {
      std::string endpoint = "https://127.0.0.1:2379";
      std::string ca_file = "/etc/kubernetes/pki/etcd/ca.crt";
      std::string cert_file = "/etc/kubernetes/pki/etcd/healthcheck-client.crt";
      std::string key_file = "/etc/kubernetes/pki/etcd/healthcheck-client.key";
      std::string snapshot_dir = "/var/lib/tended/etcd-snapshots";
      int64_t keep = 5;
      absl::Duration timeout = absl::Minutes(2);
    } etcd;
  } k8s;
};

absl::StatusOr<AgentConfig> ParseAgentConfig(absl::string_view yaml, absl::string_view source);
absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path);

// The checks ParseAgentConfig makes, on a configuration built in code.
absl::Status ValidateAgentConfig(const AgentConfig& config);

}  // namespace tended::agent

#endif  // TENDED_AGENT_CONFIG_H_
