#include "common/http_metrics_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"

namespace tended {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Connects to the loopback address of `family`, sends `request` and reads until the server
// closes (or 10 s pass). Returns the raw response.
std::string Exchange(int family, int port, const std::string& request, bool shut_write = false) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  int connected = -1;
  if (family == AF_INET6) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_port = htons(static_cast<uint16_t>(port));
    address.sin6_addr = in6addr_loopback;
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  } else {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  EXPECT_EQ(connected, 0) << "connect";
  if (!request.empty()) {
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  if (shut_write) ::shutdown(fd, SHUT_WR);
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

std::string Get(absl::string_view path) {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddGauge("demo_up", "Whether up.").Set(1);
    registry_.AddCounter("demo_hits_total", "Hits.", {"path"}).Increment({"/x"});
  }
  metrics::Registry registry_;
};

TEST_F(MetricsServerTest, ServesMetricsOnLoopback) {
  auto server = StartMetricsServer("127.0.0.1:0", &registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  std::string response = Exchange(AF_INET, (*server)->port(), Get("/metrics"));
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response,
              HasSubstr("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(response, HasSubstr("\r\nConnection: close\r\n"));
  std::string body = registry_.Render();
  EXPECT_THAT(response, HasSubstr(absl::StrCat("\r\nContent-Length: ", body.size(), "\r\n")));
  EXPECT_EQ(response.substr(response.find("\r\n\r\n") + 4), body);

  // The query string is ignored; the probe helper (HTTP/1.0) works too.
  auto probe =
      testing::HttpRequestLoopback((*server)->port(), "GET", "/metrics?x=1", absl::Seconds(5));
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->status, 200);
  EXPECT_EQ(probe->body, body);
}

TEST_F(MetricsServerTest, OtherPathsAndMethods) {
  auto server = StartMetricsServer("127.0.0.1:0", &registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  EXPECT_THAT(Exchange(AF_INET, port, Get("/")), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Exchange(AF_INET, port, Get("/metricsx")), StartsWith("HTTP/1.1 404 "));
  std::string post =
      Exchange(AF_INET, port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(post, HasSubstr("\r\nAllow: GET, HEAD\r\n"));
  std::string head = Exchange(AF_INET, port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 "));
  EXPECT_THAT(head, HasSubstr(absl::StrCat("Content-Length: ", registry_.Render().size())));
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
  EXPECT_THAT(Exchange(AF_INET, port, "NONSENSE\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(Exchange(AF_INET, port, "GET /metrics SPDY/3\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
}

TEST_F(MetricsServerTest, BoundsRequestSize) {
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 16;
  auto server = StartMetricsServer("127.0.0.1:0", &registry_, options);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  std::string huge =
      absl::StrCat("GET /metrics HTTP/1.1\r\nX-Junk: ", std::string(4096, 'a'), "\r\n\r\n");
  EXPECT_THAT(Exchange(AF_INET, port, huge), StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(
      Exchange(AF_INET, port, "POST /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nabc"),
      StartsWith("HTTP/1.1 413 "));
  EXPECT_THAT(
      Exchange(AF_INET, port, "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
      StartsWith("HTTP/1.1 411 "));
  // Still serving afterwards.
  EXPECT_THAT(Exchange(AF_INET, port, Get("/metrics")), StartsWith("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, SlowClientTimesOutAndOthersAreServedAfter) {
  HttpServerOptions options;
  options.io_timeout = absl::Milliseconds(300);
  auto server = StartMetricsServer("127.0.0.1:0", &registry_, options);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  // Half a request, then silence: the server gives up with 408 after io_timeout.
  auto start = std::chrono::steady_clock::now();
  std::string stalled = Exchange(AF_INET, port, "GET /metrics HTTP/1.1\r\n");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(stalled, StartsWith("HTTP/1.1 408 "));
  EXPECT_LT(took, std::chrono::seconds(5));
  // A client that closes its side before sending a full request gets nothing, and the
  // server moves on.
  EXPECT_EQ(Exchange(AF_INET, port, "GET /met", /*shut_write=*/true), "");
  EXPECT_THAT(Exchange(AF_INET, port, Get("/metrics")), StartsWith("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, ListensOnIpv6Loopback) {
  auto server = StartMetricsServer("[::1]:0", &registry_);
  if (!server.ok() && absl::IsUnavailable(server.status())) {
    GTEST_SKIP() << "no IPv6 loopback here: " << server.status();
  }
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(Exchange(AF_INET6, (*server)->port(), Get("/metrics")), StartsWith("HTTP/1.1 200 "));
}

TEST_F(MetricsServerTest, BindsAChosenPortAndRefusesBadAddresses) {
  auto port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  auto server = StartMetricsServer(absl::StrCat("127.0.0.1:", *port), &registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->port(), *port);
  // The port is taken now.
  auto second = StartMetricsServer(absl::StrCat("127.0.0.1:", *port), &registry_);
  EXPECT_FALSE(second.ok());
  EXPECT_FALSE(StartMetricsServer("127.0.0.1", &registry_).ok());
  EXPECT_FALSE(StartMetricsServer("127.0.0.1:70000", &registry_).ok());
  EXPECT_FALSE(StartMetricsServer(":9100", &registry_).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(StartMetricsServer("bad host:1", &registry_).status()));
}

TEST_F(MetricsServerTest, StopJoinsAndClosesTheSocket) {
  auto server = StartMetricsServer("127.0.0.1:0", &registry_);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  // A connection held open without a request does not keep Stop() waiting for io_timeout.
  int idle = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  auto start = std::chrono::steady_clock::now();
  (*server)->Stop();
  (*server)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  ::close(idle);
  server->reset();
  auto after = testing::HttpRequestLoopback(port, "GET", "/metrics", absl::Seconds(2));
  EXPECT_FALSE(after.ok());
}

TEST(HttpServerTest, HandlerSeesMethodPathHeadersAndBody) {
  HttpRequest seen;
  auto server = HttpServer::Start("127.0.0.1:0", [&](const HttpRequest& request) {
    seen = request;
    HttpResponse response;
    response.status = 201;
    response.body = "made";
    return response;
  });
  ASSERT_TRUE(server.ok()) << server.status();
  std::string body(3000, 'x');
  std::string response =
      Exchange(AF_INET, (*server)->port(),
               absl::StrCat("POST /hook/a?b=c HTTP/1.1\r\nContent-Type: application/json\r\n"
                            "Expect: 100-continue\r\nContent-Length: ",
                            body.size(), "\r\n\r\n", body));
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 201 "));
  EXPECT_THAT(response, HasSubstr("\r\n\r\nmade"));
  (*server)->Stop();
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/hook/a");
  EXPECT_EQ(seen.target, "/hook/a?b=c");
  EXPECT_EQ(seen.headers["content-type"], "application/json");
  EXPECT_EQ(seen.body, body);
}

}  // namespace
}  // namespace tended
