#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The error message, or "OK" when the document parsed.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(yaml, "a.yaml");
  if (config.ok()) return "OK";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

TEST(AgentConfigTest, EmptyDocumentGivesDefaults) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig("", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "");
  EXPECT_EQ(config->coordinator_address, "tended-coordinator.tended.svc:7443");
  EXPECT_FALSE(config->insecure);
  EXPECT_EQ(config->tls.cert_file, "/var/lib/kubelet/pki/kubelet-client-current.pem");
  EXPECT_EQ(config->tls.key_file, "/var/lib/kubelet/pki/kubelet-client-current.pem");
  EXPECT_EQ(config->tls.ca_file, "/etc/tended/tls/ca.crt");
  EXPECT_EQ(config->root, "/");
  EXPECT_EQ(config->state_dir, "/var/lib/tended");
  EXPECT_EQ(config->report_interval, absl::Seconds(30));
  EXPECT_EQ(config->check_period, absl::Hours(1));
  EXPECT_EQ(config->reconnect_initial_backoff, absl::Seconds(1));
  EXPECT_EQ(config->reconnect_max_backoff, absl::Seconds(60));
  EXPECT_EQ(config->reboot.method, RebootMethod::kLogind);
  EXPECT_EQ(config->reboot.sentinel, "/var/run/reboot-required");
  EXPECT_EQ(config->reboot.gated_sentinel, "/var/run/gated-reboot-required");
  EXPECT_EQ(config->reboot.delay, absl::Seconds(30));
  EXPECT_TRUE(ValidateAgentConfig(*config).ok());
}

TEST(AgentConfigTest, FullValidParse) {
  const std::string yaml =
      "node_name: k8s-node1.example\n"
      "coordinator: \"[fd00::10]:9443\"\n"
      "insecure: true\n"
      "root: /tmp/fake-root\n"
      "state_dir: /var/lib/tended-test\n"
      "report_interval: 10s\n"
      "check_period: 15m\n"
      "reconnect:\n"
      "  initial_backoff: 500ms\n"
      "  max_backoff: 2m\n"
      "reboot:\n"
      "  method: simulate\n"
      "  sentinel: /run/reboot-required\n"
      "  gated_sentinel: /run/gated\n"
      "  delay: 0s\n";
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(yaml, "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "k8s-node1.example");
  EXPECT_EQ(config->coordinator_address, "[fd00::10]:9443");
  EXPECT_TRUE(config->insecure);
  EXPECT_EQ(config->root, "/tmp/fake-root");
  EXPECT_EQ(config->state_dir, "/var/lib/tended-test");
  EXPECT_EQ(config->report_interval, absl::Seconds(10));
  EXPECT_EQ(config->check_period, absl::Minutes(15));
  EXPECT_EQ(config->reconnect_initial_backoff, absl::Milliseconds(500));
  EXPECT_EQ(config->reconnect_max_backoff, absl::Minutes(2));
  EXPECT_EQ(config->reboot.method, RebootMethod::kSimulate);
  EXPECT_EQ(config->reboot.sentinel, "/run/reboot-required");
  EXPECT_EQ(config->reboot.gated_sentinel, "/run/gated");
  EXPECT_EQ(config->reboot.delay, absl::ZeroDuration());
}

TEST(AgentConfigTest, TlsFiles) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(
      "tls:\n  cert_file: /etc/tended/node.crt\n  key_file: /etc/tended/node.key\n"
      "  ca_file: /etc/tended/ca.crt\n  reload_interval: 1m\n",
      "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls.cert_file, "/etc/tended/node.crt");
  EXPECT_EQ(config->tls.key_file, "/etc/tended/node.key");
  EXPECT_EQ(config->tls.ca_file, "/etc/tended/ca.crt");
  EXPECT_EQ(config->tls.reload_interval, absl::Minutes(1));
  EXPECT_THAT(ErrorOf("tls:\n  cert_file: node.crt\n"),
              StartsWith("a.yaml:2: tls.cert_file: must be an absolute path"));
  EXPECT_THAT(ErrorOf("tls:\n  reload_interval: 100ms\n"),
              StartsWith("a.yaml:2: tls.reload_interval: must be at least 1s"));
  EXPECT_THAT(ErrorOf("tls:\n  client_ca_file: /x\n"), HasSubstr("unknown key"));
}

TEST(AgentConfigTest, MetricsTls) {
  absl::StatusOr<AgentConfig> plain = ParseAgentConfig("metrics_listen: 0.0.0.0:9478\n", "a.yaml");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->metrics_tls.has_value());  // Plain HTTP by default.
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(
      "metrics_tls:\n  cert_file: /etc/tended/m.crt\n  key_file: /etc/tended/m.key\n"
      "  client_ca_file: /etc/tended/scrapers.crt\n",
      "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->metrics_tls.has_value());
  EXPECT_EQ(config->metrics_tls->cert_file, "/etc/tended/m.crt");
  EXPECT_EQ(config->metrics_tls->key_file, "/etc/tended/m.key");
  EXPECT_EQ(config->metrics_tls->client_ca_file, "/etc/tended/scrapers.crt");
  absl::StatusOr<AgentConfig> no_client_ca = ParseAgentConfig(
      "metrics_tls:\n  cert_file: /etc/tended/m.crt\n  key_file: /etc/tended/m.key\n", "a.yaml");
  ASSERT_TRUE(no_client_ca.ok()) << no_client_ca.status();
  EXPECT_EQ(no_client_ca->metrics_tls->client_ca_file, "");
  EXPECT_THAT(ErrorOf("metrics_tls:\n  cert_file: /etc/tended/m.crt\n"),
              StartsWith("a.yaml:2: metrics_tls.key_file: is required"));
  EXPECT_THAT(ErrorOf("metrics_tls:\n  cert_file: m.crt\n  key_file: /m.key\n"),
              StartsWith("a.yaml:2: metrics_tls.cert_file: must be an absolute path"));
  EXPECT_THAT(ErrorOf("metrics_tls:\n  ca_file: /x\n"), HasSubstr("unknown key"));
}

TEST(AgentConfigTest, ShippedExampleLoads) {
  absl::StatusOr<AgentConfig> config =
      LoadAgentConfig(TENDED_SOURCE_DIR "/packaging/examples/agent.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "");  // The host name.
  EXPECT_EQ(config->coordinator_address, "tended-coordinator.tended.svc:7443");
  // mTLS: the kubelet's client certificate, tended's CA for the coordinator's certificate.
  EXPECT_FALSE(config->insecure);
  EXPECT_EQ(config->tls.cert_file, "/var/lib/kubelet/pki/kubelet-client-current.pem");
  EXPECT_EQ(config->tls.key_file, "/var/lib/kubelet/pki/kubelet-client-current.pem");
  EXPECT_EQ(config->tls.ca_file, "/etc/tended/tls/ca.crt");
  EXPECT_EQ(config->root, "/");
  EXPECT_EQ(config->check_period, absl::Hours(1));  // kured's period in the reference.
  EXPECT_EQ(config->reboot.method, RebootMethod::kLogind);
  EXPECT_EQ(config->reboot.sentinel, "/var/run/reboot-required");
  EXPECT_EQ(config->reboot.delay, absl::Seconds(30));  // The reference's reboot delay.
}

TEST(AgentConfigTest, LoadUsesPathAsSource) {
  tended::testing::TempDir dir;
  std::string path = dir.Path("agent.yaml");
  {
    std::ofstream out(path);
    out << "reboot:\n  method: kexec\n";
  }
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith(path + ":2: reboot.method: unknown method \"kexec\""));
  EXPECT_FALSE(LoadAgentConfig(dir.Path("missing.yaml")).ok());
}

TEST(AgentConfigTest, AConfigurationOthersMayChangeIsRefusedWithItsPath) {
  tended::testing::TempDir dir;
  std::string path = dir.Path("agent.yaml");
  {
    std::ofstream out(path);
    out << "insecure: true\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  absl::StatusOr<AgentConfig> config = LoadAgentConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_TRUE(LoadAgentConfig(path).ok());
}

TEST(AgentConfigErrorTest, UnknownKeys) {
  EXPECT_THAT(ErrorOf("node_name: n1\nos:\n  upgrade: true\n"),
              StartsWith("a.yaml:2: os: unknown key (allowed here: node_name, "));
  EXPECT_THAT(ErrorOf("node_name: n1\napt:\n  upgrade: true\n"),
              StartsWith("a.yaml:3: apt.upgrade: unknown key (allowed here: enabled, "));
  EXPECT_THAT(ErrorOf("reconnect:\n  initial_backoff: 1s\n  jitter: 0.2\n"),
              StartsWith("a.yaml:3: reconnect.jitter: unknown key"));
  EXPECT_THAT(ErrorOf("reboot:\n  method: logind\n  command: /sbin/reboot\n"),
              StartsWith("a.yaml:3: reboot.command: unknown key"));
}

TEST(AgentConfigTest, AptSection) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(
      "apt:\n  enabled: true\n  plan_interval: 30m\n  update_interval: 0\n"
      "  lock_timeout: 2m\n  holds: [kubelet, kubeadm]\n  blacklist: ['^linux-image']\n",
      "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->apt.enabled);
  EXPECT_EQ(config->apt.plan_interval, absl::Minutes(30));
  EXPECT_EQ(config->apt.update_interval, absl::ZeroDuration());
  EXPECT_EQ(config->apt.lock_timeout, absl::Minutes(2));
  EXPECT_EQ(config->apt.policy.holds, (std::vector<std::string>{"kubelet", "kubeadm"}));
  EXPECT_EQ(config->apt.policy.blacklist, (std::vector<std::string>{"^linux-image"}));
  absl::StatusOr<AgentConfig> defaults = ParseAgentConfig("node_name: n1\n", "a.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->apt.enabled);
  EXPECT_THAT(ErrorOf("apt:\n  plan_interval: 0\n"), HasSubstr("apt.plan_interval"));
  EXPECT_THAT(ErrorOf("apt:\n  blacklist: ['(']\n"), StartsWith("a.yaml:2:"));
}

TEST(AgentConfigErrorTest, SyntaxAndTypes) {
  EXPECT_THAT(ErrorOf("node_name: n1\nreboot:\n  delay: [30s\n"), HasSubstr("not valid YAML"));
  EXPECT_THAT(ErrorOf("reboot: [logind]\n"), StartsWith("a.yaml:1: reboot: expected a mapping"));
  EXPECT_THAT(ErrorOf("reconnect: 5s\n"), StartsWith("a.yaml:1: reconnect: expected a mapping"));
  EXPECT_THAT(ErrorOf("insecure: sometimes\n"),
              StartsWith("a.yaml:1: insecure: expected true or false"));
  EXPECT_THAT(ErrorOf("node_name: {a: b}\n"), StartsWith("a.yaml:1: node_name: expected a string"));
}

TEST(AgentConfigErrorTest, FieldChecks) {
  EXPECT_THAT(ErrorOf("node_name: K8s_Node1\n"),
              StartsWith("a.yaml:1: node_name: \"K8s_Node1\" is not a valid Kubernetes node"));
  for (const char* bad : {"-node", "node-", "a..b", ".a", "a.", "UPPER"}) {
    EXPECT_THAT(ErrorOf(std::string("node_name: '") + bad + "'\n"),
                StartsWith("a.yaml:1: node_name: "))
        << bad;
  }
  EXPECT_THAT(ErrorOf("node_name: " + std::string(254, 'a') + "\n"),
              StartsWith("a.yaml:1: node_name: "));
  EXPECT_EQ(ErrorOf("node_name: " + std::string(253, 'a') + "\n"), "OK");
  EXPECT_EQ(ErrorOf("node_name: k8s-master\n"), "OK");
  EXPECT_THAT(ErrorOf("coordinator: tended-coordinator\n"),
              StartsWith("a.yaml:1: coordinator: expected host:port"));
  EXPECT_THAT(ErrorOf("coordinator: 'host:0'\n"),
              StartsWith("a.yaml:1: coordinator: port must be a number from 1 to 65535"));
  EXPECT_THAT(ErrorOf("root: relative\n"), StartsWith("a.yaml:1: root: must be an absolute path"));
  EXPECT_THAT(ErrorOf("state_dir: var/lib\n"),
              StartsWith("a.yaml:1: state_dir: must be an absolute path"));
  EXPECT_THAT(ErrorOf("report_interval: 0s\n"),
              StartsWith("a.yaml:1: report_interval: must be longer than 0"));
  EXPECT_THAT(ErrorOf("check_period: soon\n"),
              StartsWith("a.yaml:1: check_period: not a duration"));
  EXPECT_THAT(ErrorOf("reboot:\n  sentinel: reboot-required\n"),
              StartsWith("a.yaml:2: reboot.sentinel: must be an absolute path"));
  EXPECT_THAT(ErrorOf("reboot:\n  gated_sentinel: /var/run/reboot-required\n"),
              StartsWith("a.yaml:2: reboot.gated_sentinel: must differ from reboot.sentinel"));
  EXPECT_THAT(ErrorOf("reboot:\n  delay: -5s\n"),
              StartsWith("a.yaml:2: reboot.delay: a duration cannot be negative"));
}

TEST(AgentConfigErrorTest, DotDotInAPathIsRefused) {
  EXPECT_THAT(ErrorOf("root: /srv/../etc\n"),
              StartsWith("a.yaml:1: root: must not contain a \"..\" component"));
  EXPECT_THAT(ErrorOf("node_name: n1\nstate_dir: /var/lib/../../../etc\n"),
              StartsWith("a.yaml:2: state_dir: must not contain a \"..\" component"));
  EXPECT_THAT(ErrorOf("reboot:\n  sentinel: /var/run/../../etc/shadow\n"),
              StartsWith("a.yaml:2: reboot.sentinel: must not contain a \"..\" component"));
  EXPECT_THAT(ErrorOf("reboot:\n  delay: 1s\n  gated_sentinel: /run/..\n"),
              StartsWith("a.yaml:3: reboot.gated_sentinel: must not contain a \"..\" component"));
  // Dots inside a name are fine.
  EXPECT_EQ(ErrorOf("state_dir: /var/lib/tended..d\nreboot:\n  sentinel: /run/..x\n"), "OK");
  AgentConfig config;
  config.state_dir = "/var/lib/tended/../..";
  EXPECT_THAT(std::string(ValidateAgentConfig(config).message()), StartsWith("state_dir: "));
}

TEST(AgentConfigErrorTest, Backoff) {
  EXPECT_THAT(ErrorOf("reconnect:\n  initial_backoff: 10s\n  max_backoff: 5s\n"),
              StartsWith("a.yaml:3: reconnect.max_backoff: (5s) must not be shorter than "
                         "initial_backoff (10s)"));
  // max_backoff left at its default (60s): named with the section's line.
  EXPECT_THAT(ErrorOf("reconnect:\n  initial_backoff: 2m\n"),
              StartsWith("a.yaml:2: reconnect.max_backoff: (1m) must not be shorter"));
  EXPECT_THAT(ErrorOf("reconnect:\n  initial_backoff: 0s\n"),
              StartsWith("a.yaml:2: reconnect.initial_backoff: must be longer than 0"));
  EXPECT_EQ(ErrorOf("reconnect:\n  initial_backoff: 5s\n  max_backoff: 5s\n"), "OK");
}

TEST(ValidateAgentConfigTest, ConfigBuiltInCode) {
  AgentConfig config;
  EXPECT_TRUE(ValidateAgentConfig(config).ok());
  config.reconnect_max_backoff = absl::Milliseconds(10);
  EXPECT_THAT(std::string(ValidateAgentConfig(config).message()),
              StartsWith("reconnect.max_backoff: "));
  config = AgentConfig();
  config.node_name = "Bad Name";
  EXPECT_THAT(std::string(ValidateAgentConfig(config).message()), StartsWith("node_name: "));
}

TEST(AgentConfigTest, MetricsListen) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig("metrics_listen: \"[::1]:0\"\n", "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics_listen, "[::1]:0");
  absl::StatusOr<AgentConfig> defaults = ParseAgentConfig("", "a.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->metrics_listen, "");
  absl::StatusOr<AgentConfig> bad = ParseAgentConfig("metrics_listen: 9478\n", "a.yaml");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), StartsWith("a.yaml:1: metrics_listen: "));
  absl::StatusOr<AgentConfig> example =
      LoadAgentConfig(TENDED_SOURCE_DIR "/packaging/examples/agent.yaml");
  ASSERT_TRUE(example.ok()) << example.status();
  EXPECT_EQ(example->metrics_listen, "0.0.0.0:9478");
}

}  // namespace
}  // namespace tended::agent

namespace tended::agent {
namespace {

TEST(AgentConfigTest, K8sSection) {
  absl::StatusOr<AgentConfig> config = ParseAgentConfig(
      "k8s:\n"
      "  enabled: true\n"
      "  detect_schedule: '30 6 * * mon-fri'\n"
      "  detect_time_zone: Europe/London\n"
      "  repo_url_pattern: http://mirror.example/k8s/v{minor}/deb/\n"
      "  apt_source_file: /etc/apt/sources.list.d/k8s.sources\n"
      "  kubeadm_timeout: 30m\n"
      "  etcd:\n"
      "    endpoint: http://127.0.0.1:2379\n"
      "    ca_file: ''\n"
      "    snapshot_dir: /srv/etcd-snapshots\n"
      "    keep: 9\n",
      "a.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->k8s.enabled);
  EXPECT_EQ(config->k8s.detect_schedule, "30 6 * * mon-fri");
  EXPECT_EQ(config->k8s.detect_time_zone, "Europe/London");
  EXPECT_EQ(config->k8s.kubeadm_timeout, absl::Minutes(30));
  EXPECT_EQ(config->k8s.etcd.ca_file, "");
  EXPECT_EQ(config->k8s.etcd.cert_file, "/etc/kubernetes/pki/etcd/healthcheck-client.crt");
  EXPECT_EQ(config->k8s.etcd.keep, 9);
  // The defaults: off, weekly on Sunday noon UTC, kubeadm's PKI.
  absl::StatusOr<AgentConfig> defaults = ParseAgentConfig("", "a.yaml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->k8s.enabled);
  EXPECT_EQ(defaults->k8s.detect_schedule, "0 12 * * sun");
  EXPECT_EQ(defaults->k8s.etcd.endpoint, "https://127.0.0.1:2379");
}

TEST(AgentConfigErrorTest, K8sSection) {
  EXPECT_THAT(ErrorOf("k8s:\n  detect_schedule: '61 * * * *'\n"), HasSubstr("k8s.detect_schedule"));
  EXPECT_THAT(ErrorOf("k8s:\n  detect_time_zone: Mars/Olympus\n"),
              HasSubstr("k8s.detect_schedule"));
  EXPECT_THAT(ErrorOf("k8s:\n  repo_url_pattern: https://pkgs.k8s.io/v1.31/deb/\n"),
              HasSubstr("{minor}"));
  EXPECT_THAT(ErrorOf("k8s:\n  apt_source_file: ../etc/apt/x.list\n"),
              HasSubstr("k8s.apt_source_file"));
  EXPECT_THAT(ErrorOf("k8s:\n  etcd:\n    endpoint: 127.0.0.1:2379\n"),
              HasSubstr("k8s.etcd.endpoint"));
  EXPECT_THAT(ErrorOf("k8s:\n  etcd:\n    keep: 0\n"), HasSubstr("keep"));
  EXPECT_THAT(ErrorOf("k8s:\n  etcd:\n    snapshots: 3\n"), HasSubstr("snapshots"));
  EXPECT_THAT(ErrorOf("k8s:\n  kubeadm_timeout: 0s\n"), HasSubstr("k8s.kubeadm_timeout"));
}

}  // namespace
}  // namespace tended::agent
