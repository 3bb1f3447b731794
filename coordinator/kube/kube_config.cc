#include "coordinator/kube/kube_config.h"

#include <cstdlib>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/yaml_util.h"

namespace tended::kube {
namespace {

// Kubeconfig file names are relative to the kubeconfig's folder; absolute ones are taken
// under the root.
std::string RelativeTo(const RootPath& root, const std::string& folder, const std::string& file) {
  if (file.empty()) return file;
  if (file.front() == '/') return root.Resolve(file);
  return absl::StrCat(folder, "/", file);
}

// The element of a named list (clusters, users, contexts) called `name`.
absl::StatusOr<YamlCursor> FindNamed(const YamlCursor& root, absl::string_view list,
                                     absl::string_view name) {
  YamlCursor items = root.Child(list);
  if (!items.IsNull() && !items.IsSequence()) return items.Error("expected a list");
  for (const YamlCursor& item : items.Elements()) {
    std::string item_name;
    RETURN_IF_ERROR(item.Optional("name", &item_name));
    if (item_name == name) return item;
  }
  return root.Error(absl::StrCat(list, " has no entry named \"", name, "\""));
}

absl::StatusOr<std::string> Base64Field(const YamlCursor& parent, absl::string_view key) {
  std::string encoded;
  RETURN_IF_ERROR(parent.Optional(key, &encoded));
  if (encoded.empty()) return std::string();
  std::string decoded;
  if (!absl::Base64Unescape(encoded, &decoded)) {
    return parent.Child(key).Error("not valid base64");
  }
  return decoded;
}

// Brackets an IPv6 literal for a URL.
std::string HostForUrl(const std::string& host) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrCat("[", host, "]");
  }
  return host;
}

}  // namespace

KubeEnvironment KubeEnvironmentFromProcess() {
  KubeEnvironment environment;
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST")) environment.service_host = host;
  if (const char* port = std::getenv("KUBERNETES_SERVICE_PORT")) environment.service_port = port;
  return environment;
}

absl::StatusOr<KubeConnection> InClusterConnection(const KubeClientOptions& options) {
  const KubeEnvironment& env = options.environment;
  if (env.service_host.empty() || env.service_port.empty()) {
    return absl::FailedPreconditionError(
        "not running inside a Kubernetes cluster: KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT are not both set");
  }
  KubeConnection connection;
  connection.source = "in-cluster";
  connection.server = absl::StrCat("https://", HostForUrl(env.service_host), ":", env.service_port);
  std::string dir = options.root.Resolve(options.service_account_dir);
  connection.token_file = dir + "/token";
  if (!PathExists(connection.token_file)) {
    return absl::FailedPreconditionError(
        absl::StrCat("in-cluster configuration: the service-account token ", connection.token_file,
                     " does not exist (is automountServiceAccountToken off?)"));
  }
  if (PathExists(dir + "/ca.crt")) connection.ca_file = dir + "/ca.crt";
  if (PathExists(dir + "/namespace")) {
    absl::StatusOr<std::string> ns = ReadFileToString(dir + "/namespace");
    if (ns.ok() && !absl::StripAsciiWhitespace(*ns).empty()) {
      connection.namespace_name = std::string(absl::StripAsciiWhitespace(*ns));
    }
  }
  return connection;
}

absl::StatusOr<KubeConnection> ParseKubeconfig(absl::string_view yaml,
                                               const std::string& source_path,
                                               const std::string& context,
                                               const RootPath& root_path) {
  ASSIGN_OR_RETURN(YAML::Node document, ParseYamlDocument(yaml, source_path));
  YamlCursor root(document, source_path);
  if (!root.IsMap()) return root.Error("a kubeconfig must be a mapping");
  std::string folder = Dirname(source_path);

  std::string context_name = context;
  if (context_name.empty()) RETURN_IF_ERROR(root.Optional("current-context", &context_name));
  if (context_name.empty()) {
    return root.Error("no context chosen: current-context is empty and none was given");
  }
  ASSIGN_OR_RETURN(YamlCursor context_item, FindNamed(root, "contexts", context_name));
  YamlCursor context_body = context_item.Child("context");
  std::string cluster_name, user_name, namespace_name;
  RETURN_IF_ERROR(context_body.Optional("cluster", &cluster_name));
  RETURN_IF_ERROR(context_body.Optional("user", &user_name));
  RETURN_IF_ERROR(context_body.Optional("namespace", &namespace_name));

  KubeConnection connection;
  connection.source = source_path;
  if (!namespace_name.empty()) connection.namespace_name = namespace_name;

  ASSIGN_OR_RETURN(YamlCursor cluster_item, FindNamed(root, "clusters", cluster_name));
  YamlCursor cluster = cluster_item.Child("cluster");
  RETURN_IF_ERROR(cluster.Optional("server", &connection.server));
  if (connection.server.empty()) return cluster.Error("the cluster has no server");
  if (!absl::StartsWith(connection.server, "https://") &&
      !absl::StartsWith(connection.server, "http://")) {
    return cluster.Child("server").Error("the server must be an http:// or https:// URL");
  }
  while (absl::EndsWith(connection.server, "/")) connection.server.pop_back();
  RETURN_IF_ERROR(cluster.Optional("certificate-authority", &connection.ca_file));
  connection.ca_file = RelativeTo(root_path, folder, connection.ca_file);
  ASSIGN_OR_RETURN(connection.ca_data, Base64Field(cluster, "certificate-authority-data"));
  RETURN_IF_ERROR(
      cluster.Optional("insecure-skip-tls-verify", &connection.insecure_skip_tls_verify));

  if (!user_name.empty()) {
    ASSIGN_OR_RETURN(YamlCursor user_item, FindNamed(root, "users", user_name));
    YamlCursor user = user_item.Child("user");
    if (user.Has("exec") || user.Has("auth-provider")) {
      return absl::UnimplementedError(absl::StrCat(
          source_path, ": user \"", user_name,
          "\" uses a credential plugin (exec or auth-provider), which tended does not run; "
          "use a token or a client certificate"));
    }
    if (user.Has("username") || user.Has("password")) {
      return absl::UnimplementedError(
          absl::StrCat(source_path, ": user \"", user_name,
                       "\" uses basic authentication, which tended "
                       "does not support; use a token or a client certificate"));
    }
    RETURN_IF_ERROR(user.Optional("token", &connection.token));
    RETURN_IF_ERROR(user.Optional("tokenFile", &connection.token_file));
    connection.token_file = RelativeTo(root_path, folder, connection.token_file);
    RETURN_IF_ERROR(user.Optional("client-certificate", &connection.client_certificate_file));
    connection.client_certificate_file =
        RelativeTo(root_path, folder, connection.client_certificate_file);
    RETURN_IF_ERROR(user.Optional("client-key", &connection.client_key_file));
    connection.client_key_file = RelativeTo(root_path, folder, connection.client_key_file);
    ASSIGN_OR_RETURN(connection.client_certificate_data,
                     Base64Field(user, "client-certificate-data"));
    ASSIGN_OR_RETURN(connection.client_key_data, Base64Field(user, "client-key-data"));
    bool has_cert =
        !connection.client_certificate_file.empty() || !connection.client_certificate_data.empty();
    bool has_key = !connection.client_key_file.empty() || !connection.client_key_data.empty();
    if (has_cert != has_key) {
      return user.Error("a client certificate needs its key and a key needs its certificate");
    }
  }
  return connection;
}

absl::StatusOr<KubeConnection> ResolveKubeConnection(const KubeClientOptions& options) {
  if (!options.kubeconfig_path.empty()) {
    std::string path = options.root.Resolve(options.kubeconfig_path);
    absl::StatusOr<std::string> contents = ReadFileToString(path);
    if (!contents.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read the kubeconfig: ", contents.status().message()));
    }
    return ParseKubeconfig(*contents, path, options.kubeconfig_context, options.root);
  }
  absl::StatusOr<KubeConnection> in_cluster = InClusterConnection(options);
  if (in_cluster.ok()) return in_cluster;
  return absl::FailedPreconditionError(
      absl::StrCat("no Kubernetes API configured: ", in_cluster.status().message(),
                   ", and no kubeconfig was given"));
}

}  // namespace tended::kube
