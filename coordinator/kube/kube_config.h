// Where the Kubernetes API is and how to authenticate to it: from the in-cluster
// environment (KUBERNETES_SERVICE_HOST/PORT and the service-account token and CA files) or
// from a kubeconfig file for running outside the cluster.
#ifndef TENDED_COORDINATOR_KUBE_KUBE_CONFIG_H_
#define TENDED_COORDINATOR_KUBE_KUBE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/root_path.h"

namespace tended::kube {

// The process environment the in-cluster configuration reads; main() fills it from
// getenv() (KubeEnvironmentFromProcess), tests set it directly.
struct KubeEnvironment {
  std::string service_host;  // KUBERNETES_SERVICE_HOST
  std::string service_port;  // KUBERNETES_SERVICE_PORT
};

KubeEnvironment KubeEnvironmentFromProcess();

struct KubeClientOptions {
  // Every file path below is resolved under this root.
  RootPath root;
  // A kubeconfig file; when set it wins over the in-cluster configuration.
  std::string kubeconfig_path;
  // Its context; empty means current-context.
  std::string kubeconfig_context;
  KubeEnvironment environment;
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // A token file is checked for changes at most this often (client-go: every minute).
  absl::Duration token_reread_interval = absl::Minutes(1);
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  std::string user_agent = "tended-coordinator";
  const Clock* clock = &Clock::Real();
};

// Everything needed to reach one API server. File paths here are already resolved.
struct KubeConnection {
  std::string server;  // "https://10.96.0.1:443", "http://127.0.0.1:34567" in tests.
  std::string ca_file;
  std::string ca_data;  // PEM, decoded from certificate-authority-data.
  bool insecure_skip_tls_verify = false;
  std::string token;       // A fixed bearer token.
  std::string token_file;  // A token re-read as it rotates.
  std::string client_certificate_file;
  std::string client_certificate_data;  // PEM
  std::string client_key_file;
  std::string client_key_data;  // PEM
  std::string namespace_name = "default";
  std::string source;  // "in-cluster" or the kubeconfig's path, for messages.
};

// "https://[fd00::1]:443" for an IPv6 host. FAILED_PRECONDITION when the environment does
// not name a host and port, or the token file is missing.
absl::StatusOr<KubeConnection> InClusterConnection(const KubeClientOptions& options);

// Parses a kubeconfig document. Relative file names in it are taken relative to the
// folder of `source_path` (already resolved), absolute ones are resolved under `root`.
// `context` empty means current-context.
// Exec and auth-provider credential plugins are UNIMPLEMENTED.
absl::StatusOr<KubeConnection> ParseKubeconfig(absl::string_view yaml,
                                               const std::string& source_path,
                                               const std::string& context,
                                               const RootPath& root = RootPath());

// Chooses the kubeconfig when options name one, else the in-cluster configuration; when
// neither is there, FAILED_PRECONDITION saying so.
absl::StatusOr<KubeConnection> ResolveKubeConnection(const KubeClientOptions& options);

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_KUBE_CONFIG_H_
