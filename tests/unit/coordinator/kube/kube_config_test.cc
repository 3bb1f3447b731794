#include "coordinator/kube/kube_config.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "coordinator/kube/http_kube_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"
#include "tests/fakes/temp_dir.h"

namespace tended::kube {
namespace {

using tended::testing::FakeClock;
using tended::testing::FakeKubeApiServer;
using tended::testing::FakeNodeSpec;
using tended::testing::MakeNodeJson;
using tended::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kKubeconfig[] = R"(
apiVersion: v1
kind: Config
preferences: {}
current-context: admin@prod
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: %CA%
contexts:
- name: admin@prod
  context:
    cluster: prod
    user: admin
    namespace: ops
- name: bot@staging
  context:
    cluster: staging
    user: bot
users:
- name: admin
  user:
    client-certificate-data: %CERT%
    client-key-data: %KEY%
- name: bot
  user:
    token: s3cr3t
)";

std::string Kubeconfig() {
  std::string text = kKubeconfig;
  auto replace = [&](const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
  };
  replace("%CA%", absl::Base64Escape("-----BEGIN CERTIFICATE-----\nCA\n"));
  replace("%CERT%", absl::Base64Escape("-----BEGIN CERTIFICATE-----\nME\n"));
  replace("%KEY%", absl::Base64Escape("-----BEGIN PRIVATE KEY-----\nKEY\n"));
  return text;
}

TEST(KubeconfigTest, CurrentContextWithEmbeddedCertificates) {
  absl::StatusOr<KubeConnection> c = ParseKubeconfig(Kubeconfig(), "/home/op/.kube/config", "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_data, "-----BEGIN CERTIFICATE-----\nCA\n");
  EXPECT_EQ(c->client_certificate_data, "-----BEGIN CERTIFICATE-----\nME\n");
  EXPECT_EQ(c->client_key_data, "-----BEGIN PRIVATE KEY-----\nKEY\n");
  EXPECT_EQ(c->namespace_name, "ops");
  EXPECT_TRUE(c->token.empty());
  EXPECT_FALSE(c->insecure_skip_tls_verify);
}

TEST(KubeconfigTest, ChosenContextWithToken) {
  absl::StatusOr<KubeConnection> c =
      ParseKubeconfig(Kubeconfig(), "/home/op/.kube/config", "bot@staging");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://staging.example:6443");
  EXPECT_EQ(c->token, "s3cr3t");
  EXPECT_EQ(c->namespace_name, "default");
  EXPECT_TRUE(c->ca_data.empty());
}

TEST(KubeconfigTest, FilesAreRelativeToTheKubeconfigOrUnderTheRoot) {
  constexpr char kFiles[] = R"(
current-context: c
clusters:
- name: k
  cluster:
    server: https://api:6443
    certificate-authority: pki/ca.crt
    insecure-skip-tls-verify: true
contexts:
- name: c
  context: {cluster: k, user: u}
users:
- name: u
  user:
    client-certificate: /etc/kubernetes/pki/admin.crt
    client-key: admin.key
    tokenFile: token
)";
  absl::StatusOr<KubeConnection> c =
      ParseKubeconfig(kFiles, "/tmp/t/etc/kubernetes/admin.conf", "", RootPath("/tmp/t"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_file, "/tmp/t/etc/kubernetes/pki/ca.crt");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->client_certificate_file, "/tmp/t/etc/kubernetes/pki/admin.crt");
  EXPECT_EQ(c->client_key_file, "/tmp/t/etc/kubernetes/admin.key");
  EXPECT_EQ(c->token_file, "/tmp/t/etc/kubernetes/token");
}

TEST(KubeconfigTest, ErrorsNameTheProblem) {
  absl::StatusOr<KubeConnection> missing =
      ParseKubeconfig(Kubeconfig(), "config", "nobody@nowhere");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("nobody@nowhere"));

  constexpr char kExec[] = R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://api:6443"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {exec: {command: aws}}}]
)";
  EXPECT_EQ(ParseKubeconfig(kExec, "config", "").status().code(), absl::StatusCode::kUnimplemented);

  constexpr char kNoServer[] = R"(
current-context: c
clusters: [{name: k, cluster: {}}]
contexts: [{name: c, context: {cluster: k}}]
)";
  absl::StatusOr<KubeConnection> no_server = ParseKubeconfig(kNoServer, "config", "");
  EXPECT_EQ(no_server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_server.status().message(), HasSubstr("no server"));

  constexpr char kBadBase64[] = R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://a", certificate-authority-data: "!!!"}}]
contexts: [{name: c, context: {cluster: k}}]
)";
  EXPECT_THAT(ParseKubeconfig(kBadBase64, "config", "").status().message(), HasSubstr("base64"));
  EXPECT_EQ(ParseKubeconfig("{{{", "config", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

class InClusterTest : public ::testing::Test {
 protected:
  void WriteServiceAccount() {
    std::string dir = root_.Path("var/run/secrets/kubernetes.io/serviceaccount");
    ASSERT_TRUE(MakeDirectories(dir).ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/token", "tok\n").ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/ca.crt", "PEM").ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/namespace", "tended-system\n").ok());
  }
  KubeClientOptions Options() {
    KubeClientOptions options;
    options.root = RootPath(root_.path());
    options.clock = &clock_;
    return options;
  }

  TempDir root_;
  FakeClock clock_;
};

TEST_F(InClusterTest, BracketsAnIpv6ServiceHost) {
  WriteServiceAccount();
  KubeClientOptions options = Options();
  options.environment = {.service_host = "fd00:10:96::1", .service_port = "443"};
  absl::StatusOr<KubeConnection> c = ResolveKubeConnection(options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00:10:96::1]:443");
  std::string dir = root_.Path("var/run/secrets/kubernetes.io/serviceaccount");
  EXPECT_EQ(c->token_file, dir + "/token");
  EXPECT_EQ(c->ca_file, dir + "/ca.crt");
  EXPECT_EQ(c->namespace_name, "tended-system");
  EXPECT_EQ(c->source, "in-cluster");
}

TEST_F(InClusterTest, Ipv4ServiceHost) {
  WriteServiceAccount();
  KubeClientOptions options = Options();
  options.environment = {.service_host = "10.96.0.1", .service_port = "443"};
  absl::StatusOr<KubeConnection> c = InClusterConnection(options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
}

TEST_F(InClusterTest, NeitherInClusterNorKubeconfigIsFailedPrecondition) {
  absl::StatusOr<std::unique_ptr<HttpKubeClient>> client = HttpKubeClient::Create(Options());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(client.status().message(), HasSubstr("KUBERNETES_SERVICE_HOST"));
  EXPECT_THAT(client.status().message(), HasSubstr("kubeconfig"));

  // The environment without the token file is not enough either.
  KubeClientOptions options = Options();
  options.environment = {.service_host = "10.96.0.1", .service_port = "443"};
  client = HttpKubeClient::Create(options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(client.status().message(), HasSubstr("token"));

  options.kubeconfig_path = "/etc/tended/kubeconfig";
  client = HttpKubeClient::Create(options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(client.status().message(), HasSubstr("kubeconfig"));
}

TEST_F(InClusterTest, KubeconfigUnderTheRootReachesTheServer) {
  FakeKubeApiServer server(clock_);
  ASSERT_TRUE(server.Start().ok());
  server.AddNode(MakeNodeJson(FakeNodeSpec("w1")));
  server.SetExpectedToken("from-file");
  ASSERT_TRUE(MakeDirectories(root_.Path("etc/tended")).ok());
  ASSERT_TRUE(WriteFileAtomically(root_.Path("etc/tended/token"), "from-file\n").ok());
  ASSERT_TRUE(
      WriteFileAtomically(root_.Path("etc/tended/kubeconfig"), absl::StrCat(R"(
current-context: c
clusters: [{name: k, cluster: {server: ")",
                                                                            server.url(), R"("}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {tokenFile: token}}]
)"))
          .ok());
  KubeClientOptions options = Options();
  options.kubeconfig_path = "/etc/tended/kubeconfig";
  // The kubeconfig wins over the in-cluster environment.
  options.environment = {.service_host = "10.96.0.1", .service_port = "443"};
  absl::StatusOr<std::unique_ptr<HttpKubeClient>> client = HttpKubeClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->connection().server, server.url());
  absl::StatusOr<NodeInfo> node = (*client)->GetNode("w1");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(server.last_token(), "from-file");
}

}  // namespace
}  // namespace tended::kube
