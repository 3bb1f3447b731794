// /metrics over TLS on real loopback sockets: libcurl (OpenSSL) as the scraper, a PKI
// minted in the test. HTTPS answers, plain HTTP gets nothing, client certificates are
// required when a client CA is given, bad key files are refused at start, and changed
// certificate files are used from the next connection on.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/http_client.h"
#include "common/http_metrics_server.h"
#include "common/metrics.h"
#include "common/x509_mint.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Sends a plain-HTTP request and reads whatever comes back until the server closes (or
// 10 s pass).
std::string PlainExchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string response;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

class MetricsTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddGauge("demo_up", "Whether up.").Set(1);
    ca_ = NewCa("metrics test CA");
    ASSERT_NE(ca_, nullptr);
    WriteServerPair(*ca_);
    Write("ca.crt", ca_->self().cert_pem);
    files_.cert_file = dir_.Path("server.crt");
    files_.key_file = dir_.Path("server.key");
  }

  static std::unique_ptr<CertificateAuthority> NewCa(const std::string& name) {
    auto ca = CertificateAuthority::Create(name, absl::Hours(1));
    EXPECT_TRUE(ca.ok()) << ca.status();
    if (!ca.ok()) return nullptr;
    return std::make_unique<CertificateAuthority>(*std::move(ca));
  }

  void Write(const std::string& name, const std::string& contents, int mode = 0644) {
    ASSERT_TRUE(WriteFileAtomically(dir_.Path(name), contents, mode).ok()) << name;
  }

  void WriteServerPair(const CertificateAuthority& ca) {
    CertificateSpec spec;
    spec.common_name = "tended-coordinator";
    spec.dns_names = {"localhost"};
    spec.ip_addresses = {"127.0.0.1"};
    spec.server = true;
    spec.client = false;
    auto minted = ca.Issue(spec);
    ASSERT_TRUE(minted.ok()) << minted.status();
    Write("server.crt", minted->cert_pem);
    Write("server.key", minted->key_pem, 0600);
  }

  static MintedCertificate Client(const CertificateAuthority& ca) {
    CertificateSpec spec;
    spec.common_name = "prometheus";
    auto minted = ca.Issue(spec);
    EXPECT_TRUE(minted.ok()) << minted.status();
    return minted.value_or(MintedCertificate{});
  }

  // GET https://127.0.0.1:<port>/metrics trusting `ca_pem`, with a client pair if given.
  absl::StatusOr<HttpClient::Response> Scrape(int port, const std::string& ca_pem,
                                              const MintedCertificate* client = nullptr) {
    HttpClient::Request request;
    request.url = absl::StrCat("https://127.0.0.1:", port, "/metrics");
    request.timeout = absl::Seconds(20);
    request.tls.ca_pem = ca_pem;
    if (client != nullptr) {
      request.tls.client_certificate_pem = client->cert_pem;
      request.tls.client_key_pem = client->key_pem;
    }
    return CurlHttpClient().Send(request);
  }

  absl::StatusOr<std::unique_ptr<HttpServer>> Start() {
    HttpServerOptions options;
    options.tls = files_;
    return StartMetricsServer("127.0.0.1:0", &registry_, options);
  }

  testing::TempDir dir_;
  metrics::Registry registry_;
  std::unique_ptr<CertificateAuthority> ca_;
  HttpTlsFiles files_;
};

TEST_F(MetricsTlsTest, AnHttpsScraperGetsTheMetrics) {
  auto server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->tls());
  auto response = Scrape((*server)->port(), ca_->self().cert_pem);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(response->body, registry_.Render());
  EXPECT_THAT(response->Header("content-type"), HasSubstr("version=0.0.4"));
  // Paths and methods behave as over plain HTTP.
  HttpClient::Request other;
  other.url = absl::StrCat("https://127.0.0.1:", (*server)->port(), "/other");
  other.tls.ca_pem = ca_->self().cert_pem;
  auto not_found = CurlHttpClient().Send(other);
  ASSERT_TRUE(not_found.ok()) << not_found.status();
  EXPECT_EQ(not_found->status_code, 404);
}

TEST_F(MetricsTlsTest, APlainHttpClientGetsNothingAndTheServerGoesOn) {
  auto server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  std::string plain =
      PlainExchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_THAT(plain, Not(HasSubstr("HTTP/1.1")));
  EXPECT_THAT(plain, Not(HasSubstr("demo_up")));
  // A scraper that does not trust the server's CA fails too.
  auto other_ca = NewCa("another CA");
  ASSERT_NE(other_ca, nullptr);
  EXPECT_FALSE(Scrape((*server)->port(), other_ca->self().cert_pem).ok());
  auto response = Scrape((*server)->port(), ca_->self().cert_pem);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
}

TEST_F(MetricsTlsTest, AClientCaRequiresAClientCertificateFromIt) {
  auto scrapers = NewCa("scrapers CA");
  ASSERT_NE(scrapers, nullptr);
  Write("scrapers.crt", scrapers->self().cert_pem);
  files_.client_ca_file = dir_.Path("scrapers.crt");
  auto server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const std::string server_ca = ca_->self().cert_pem;

  auto without = Scrape(port, server_ca);
  EXPECT_FALSE(without.ok() && without->status_code == 200);
  MintedCertificate untrusted = Client(*ca_);  // Signed by a CA not in client_ca_file.
  auto wrong = Scrape(port, server_ca, &untrusted);
  EXPECT_FALSE(wrong.ok() && wrong->status_code == 200);
  MintedCertificate trusted = Client(*scrapers);
  auto with = Scrape(port, server_ca, &trusted);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->status_code, 200);
  EXPECT_THAT(with->body, HasSubstr("demo_up 1"));
}

TEST_F(MetricsTlsTest, BadKeyFilesAreRefusedAtStart) {
  ASSERT_EQ(::chmod(files_.key_file.c_str(), 0660), 0);
  auto writable = Start();
  ASSERT_FALSE(writable.ok());
  EXPECT_EQ(writable.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(writable.status().message(), HasSubstr(files_.key_file));
  ASSERT_EQ(::chmod(files_.key_file.c_str(), 0640), 0);  // Group-readable is fine.
  EXPECT_TRUE(Start().ok());

  // A key of another pair.
  auto other = NewCa("other");
  ASSERT_NE(other, nullptr);
  Write("server.key", Client(*other).key_pem, 0600);
  auto mismatched = Start();
  ASSERT_FALSE(mismatched.ok());
  EXPECT_THAT(mismatched.status().message(), HasSubstr("does not match"));

  files_.key_file = dir_.Path("missing.key");
  auto missing = Start();
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_.Path("missing.key")));
  files_.key_file = "";
  EXPECT_FALSE(Start().ok());
}

TEST_F(MetricsTlsTest, ChangedFilesServeTheNextConnection) {
  auto server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const std::string first_ca = ca_->self().cert_pem;
  ASSERT_TRUE(Scrape(port, first_ca).ok());

  // Only the certificate renewed, its key not yet: the set does not load, the old one stays.
  auto second = NewCa("second CA");
  ASSERT_NE(second, nullptr);
  CertificateSpec spec;
  spec.common_name = "tended-coordinator";
  spec.ip_addresses = {"127.0.0.1"};
  spec.server = true;
  auto renewed = second->Issue(spec);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  Write("server.crt", renewed->cert_pem);
  auto half = Scrape(port, first_ca);
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->status_code, 200);

  // Then the key: the next connection presents the new certificate.
  Write("server.key", renewed->key_pem, 0600);
  EXPECT_FALSE(Scrape(port, first_ca).ok());
  auto after = Scrape(port, second->self().cert_pem);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->status_code, 200);
}

TEST(MetricsTransportTest, NamesTheTransportForLogs) {
  EXPECT_EQ(MetricsTransport(std::nullopt), "plain HTTP");
  EXPECT_EQ(MetricsTransport(HttpTlsFiles{"/c.crt", "/c.key", ""}), "HTTPS (certificate /c.crt)");
  EXPECT_EQ(MetricsTransport(HttpTlsFiles{"/c.crt", "/c.key", "/ca.crt"}),
            "HTTPS (certificate /c.crt, client certificates from /ca.crt)");
}

}  // namespace
}  // namespace tended
