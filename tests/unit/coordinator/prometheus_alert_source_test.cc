#include "coordinator/alerts/prometheus_alert_source.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/free_port.h"

namespace tended::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------------------
// The parser.

constexpr char kValidAnswer[] = R"json({
  "status": "success",
  "data": {
    "alerts": [
      {
        "labels": {"alertname": "NodeDown", "severity": "critical", "instance": "n1:9100"},
        "annotations": {"summary": "node n1 is down"},
        "state": "firing",
        "activeAt": "2026-01-01T00:00:00.000Z",
        "keepFiringSince": "2026-01-01T00:05:00.000Z",
        "value": "1e+00"
      },
      {
        "labels": {"alertname": "DiskFilling", "severity": "warning"},
        "annotations": {},
        "state": "pending",
        "activeAt": "2026-01-01T00:01:00.000Z",
        "value": "9.5e+01"
      },
      {
        "labels": {"alertname": "Resolved"},
        "state": "inactive"
      }
    ]
  }
})json";

TEST(ParsePrometheusAlertsResponseTest, ReadsFiringAndPendingAlertsWithAllLabels) {
  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(kValidAnswer);
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  ASSERT_EQ(alerts->size(), 2u);
  EXPECT_EQ((*alerts)[0].name, "NodeDown");
  EXPECT_EQ((*alerts)[0].state, "firing");
  EXPECT_THAT((*alerts)[0].labels,
              ElementsAre(Pair("alertname", "NodeDown"), Pair("instance", "n1:9100"),
                          Pair("severity", "critical")));
  EXPECT_EQ((*alerts)[1].name, "DiskFilling");
  EXPECT_EQ((*alerts)[1].state, "pending");
  EXPECT_THAT((*alerts)[1].labels,
              ElementsAre(Pair("alertname", "DiskFilling"), Pair("severity", "warning")));
}

TEST(ParsePrometheusAlertsResponseTest, AcceptsNoAlerts) {
  absl::StatusOr<std::vector<Alert>> alerts =
      ParsePrometheusAlertsResponse(R"({"status":"success","data":{"alerts":[]}})");
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  EXPECT_THAT(*alerts, IsEmpty());
}

TEST(ParsePrometheusAlertsResponseTest, IgnoresUnknownFieldsAndWarnings) {
  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(
      R"({"status":"success","warnings":["w"],"data":{"extra":1,"alerts":[
          {"labels":{"alertname":"A"},"state":"firing","future":{"x":[1,2]}}]}})");
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ((*alerts)[0].name, "A");
}

struct GarbageCase {
  std::string name;
  std::string body;
  std::string expected;  // A part of the message saying what was wrong.
};

class GarbageTest : public ::testing::TestWithParam<GarbageCase> {};

TEST_P(GarbageTest, IsInvalidArgumentSayingWhatWasWrong) {
  absl::StatusOr<std::vector<Alert>> alerts = ParsePrometheusAlertsResponse(GetParam().body);
  ASSERT_FALSE(alerts.ok());
  EXPECT_EQ(alerts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(alerts.status().message()), StartsWith("Prometheus answered"));
  EXPECT_THAT(std::string(alerts.status().message()), HasSubstr(GetParam().expected));
}

TEST(ParsePrometheusAlertsResponseTest, MessagesCarryOnlyPrintableAscii) {
  absl::StatusOr<std::vector<Alert>> alerts =
      ParsePrometheusAlertsResponse(std::string("\xff\xfe\x01<html>\n", 10));
  ASSERT_FALSE(alerts.ok());
  const std::string message(alerts.status().message());
  EXPECT_THAT(message, HasSubstr("\\xff\\xfe\\x01<html>\\x0a"));
  for (char c : message) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "byte " << static_cast<int>(c) << " in " << message;
  }
}

std::string Nested(int depth) {
  return absl::StrCat(R"({"status":"success","data":{"alerts":)", std::string(depth, '['),
                      std::string(depth, ']'), "}}");
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, GarbageTest,
    ::testing::Values(
        GarbageCase{"Empty", "", "empty body"}, GarbageCase{"NotJson", "hello world", "not JSON"},
        GarbageCase{"Html", "<html><body><h1>502 Bad Gateway</h1></body></html>", "<html>"},
        GarbageCase{"Truncated", R"({"status":"success","data":{"alerts":[{"labels":)", "not JSON"},
        GarbageCase{"TrailingJunk", R"({"status":"success","data":{"alerts":[]}} x)", "not JSON"},
        GarbageCase{"TopLevelArray", "[]", "array, not an object"},
        GarbageCase{"TopLevelNumber", "42", "not an object"},
        GarbageCase{"NoStatus", R"({"data":{"alerts":[]}})", "no \"status\""},
        GarbageCase{"NumericStatus", R"({"status":1,"data":{"alerts":[]}})", "no \"status\""},
        GarbageCase{"OtherStatus", R"({"status":"partial","data":{"alerts":[]}})",
                    "status is \"partial\""},
        GarbageCase{"StatusError",
                    R"({"status":"error","errorType":"unavailable","error":"rules not loaded"})",
                    "unavailable: rules not loaded"},
        GarbageCase{"StatusErrorWithoutMessage", R"({"status":"error"})", "status is \"error\""},
        GarbageCase{"NoData", R"({"status":"success"})", "no \"data\" object"},
        GarbageCase{"DataNotObject", R"({"status":"success","data":[]})", "no \"data\" object"},
        GarbageCase{"NoAlerts", R"({"status":"success","data":{}})", "no data.alerts"},
        GarbageCase{"AlertsObject", R"({"status":"success","data":{"alerts":{}}})",
                    "data.alerts is a JSON object, not an array"},
        GarbageCase{"AlertsNull", R"({"status":"success","data":{"alerts":null}})",
                    "data.alerts is a JSON null"},
        GarbageCase{"AlertNotObject", R"({"status":"success","data":{"alerts":["x"]}})",
                    "data.alerts[0] is a JSON string"},
        GarbageCase{"NoLabels", R"({"status":"success","data":{"alerts":[{"state":"firing"}]}})",
                    "data.alerts[0] has no \"labels\" object"},
        GarbageCase{"LabelsArray",
                    R"({"status":"success","data":{"alerts":[{"labels":[],"state":"firing"}]}})",
                    "has no \"labels\" object"},
        GarbageCase{"NoAlertname",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"severity":"critical"},"state":"firing"}]}})",
                    "has no alertname"},
        GarbageCase{"EmptyAlertname",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":""},"state":"firing"}]}})",
                    "has no alertname"},
        GarbageCase{"NumericAlertname",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":7},"state":"firing"}]}})",
                    "labels.alertname is a JSON number"},
        GarbageCase{"NumericLabelValue",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":"A","severity":3},"state":"firing"}]}})",
                    "labels.severity is a JSON number"},
        GarbageCase{"NoState",
                    R"({"status":"success","data":{"alerts":[{"labels":{"alertname":"A"}}]}})",
                    "(\"A\") has no \"state\""},
        GarbageCase{"NumericState",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":"A"},"state":1}]}})",
                    "has no \"state\" string"},
        GarbageCase{"UnknownState",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":"A"},"state":"resolved"}]}})",
                    "unknown state \"resolved\""},
        GarbageCase{"SecondAlertBad",
                    R"({"status":"success","data":{"alerts":[
                        {"labels":{"alertname":"A"},"state":"firing"},
                        {"labels":{"alertname":"B"},"state":"FIRING"}]}})",
                    "data.alerts[1] (\"B\") has unknown state \"FIRING\""},
        GarbageCase{"NestingBomb", Nested(5000), "nested deeper than"},
        GarbageCase{"TooLarge", std::string(kMaxPrometheusResponseBytes + 1, ' '),
                    "exceeds the limit"}),
    [](const ::testing::TestParamInfo<GarbageCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------
// Fetch against a tiny HTTP server on 127.0.0.1.

// Answers every connection with a canned response, or (hang) never answers and holds the
// connection until the client gives up. Serves until destroyed.
class CannedHttpServer {
 public:
  static std::string Response(int status, absl::string_view body,
                              absl::string_view content_type = "application/json") {
    return absl::StrCat("HTTP/1.1 ", status, " Canned\r\nContent-Type: ", content_type,
                        "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  }

  explicit CannedHttpServer(std::string response, bool hang = false)
      : response_(std::move(response)), hang_(hang) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~CannedHttpServer() {
    if (thread_.joinable()) {
      char byte = 0;
      ssize_t ignored = ::write(stop_pipe_[1], &byte, 1);
      (void)ignored;
      thread_.join();
    }
    for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }

  std::string base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int port() const { return port_; }

  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  // Waits for `fd` to become readable; false when asked to stop or after 20 s (a bound so
  // a broken test cannot hang forever).
  bool WaitReadable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    while (true) {
      int ready = ::poll(fds, 2, 20000);
      if (ready < 0 && errno == EINTR) continue;
      return ready > 0 && (fds[1].revents & POLLIN) == 0 && (fds[0].revents != 0);
    }
  }

  void Serve() {
    while (WaitReadable(listen_fd_)) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536 &&
             WaitReadable(client)) {
        ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(request);
      }
      if (hang_) {
        // Say nothing until the client hangs up.
        while (WaitReadable(client) && ::recv(client, buffer, sizeof(buffer), 0) > 0) {
        }
      } else {
        size_t sent = 0;
        while (sent < response_.size()) {
          ssize_t n =
              ::send(client, response_.data() + sent, response_.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
        ::shutdown(client, SHUT_WR);
      }
      ::close(client);
    }
  }

  const std::string response_;
  const bool hang_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
};

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class PrometheusAlertSourceTest : public ::testing::Test {
 protected:
  // Fetches and also reports how long the fetch took in real time.
  AlertSnapshot FetchFrom(const std::string& base_url, absl::Duration timeout,
                          absl::Duration* took = nullptr) {
    PrometheusAlertSource source(base_url, timeout, clock_);
    const absl::Time start = absl::Now();
    AlertSnapshot snapshot = source.Fetch();
    if (took != nullptr) *took = absl::Now() - start;
    return snapshot;
  }

  testing::FakeClock clock_;
};

TEST_F(PrometheusAlertSourceTest, ReadsAlertsAndStampsTheFakeClock) {
  CannedHttpServer server(CannedHttpServer::Response(200, kValidAnswer));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  ASSERT_TRUE(snapshot.status.ok()) << snapshot.status;
  EXPECT_EQ(snapshot.fetched_at, clock_.Now());
  EXPECT_THAT(
      snapshot.alerts,
      ElementsAre(AllOf(Field(&Alert::name, "NodeDown"), Field(&Alert::state, "firing")),
                  AllOf(Field(&Alert::name, "DiskFilling"), Field(&Alert::state, "pending"))));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0], StartsWith("GET /api/v1/alerts HTTP/1.1\r\n"));
}

TEST_F(PrometheusAlertSourceTest, KeepsAPathPrefixAndDropsTrailingSlashes) {
  CannedHttpServer server(CannedHttpServer::Response(200, kValidAnswer));
  AlertSnapshot snapshot = FetchFrom(server.base_url() + "/prometheus//", absl::Seconds(10));
  ASSERT_TRUE(snapshot.status.ok()) << snapshot.status;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0], StartsWith("GET /prometheus/api/v1/alerts HTTP/1.1\r\n"));
}

TEST_F(PrometheusAlertSourceTest, UnreachablePortFailsQuickly) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  absl::Duration took;
  AlertSnapshot snapshot =
      FetchFrom(absl::StrCat("http://127.0.0.1:", *port), absl::Seconds(20), &took);
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kUnavailable) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()), HasSubstr(absl::StrCat("127.0.0.1:", *port)));
  EXPECT_THAT(snapshot.alerts, IsEmpty());
  EXPECT_EQ(snapshot.fetched_at, clock_.Now());
  // Refused at once, not after the 20 s timeout.
  EXPECT_LT(took, absl::Seconds(10));
}

TEST_F(PrometheusAlertSourceTest, GarbageWithStatus200IsInvalidArgument) {
  CannedHttpServer server(CannedHttpServer::Response(200, "<html>maintenance</html>", "text/html"));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kInvalidArgument) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()),
              HasSubstr("Prometheus answered garbage: not JSON"));
  EXPECT_THAT(std::string(snapshot.status.message()),
              HasSubstr(server.base_url() + "/api/v1/alerts"));
  EXPECT_THAT(snapshot.alerts, IsEmpty());
}

TEST_F(PrometheusAlertSourceTest, PrometheusErrorAnswerGivesItsMessage) {
  CannedHttpServer server(CannedHttpServer::Response(
      503, R"({"status":"error","errorType":"unavailable","error":"TSDB not ready"})"));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kUnavailable) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()),
              HasSubstr("HTTP 503: unavailable: TSDB not ready"));
}

TEST_F(PrometheusAlertSourceTest, Non2xxWithoutJsonShowsTheStartOfTheBody) {
  CannedHttpServer server(
      CannedHttpServer::Response(503, "upstream connect error\n", "text/plain"));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kUnavailable) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()),
              HasSubstr("HTTP 503: body starts with \"upstream"));
}

TEST_F(PrometheusAlertSourceTest, NotFoundIsFailedPrecondition) {
  CannedHttpServer server(CannedHttpServer::Response(404, "", "text/plain"));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kFailedPrecondition) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()), HasSubstr("HTTP 404: empty body"));
}

TEST_F(PrometheusAlertSourceTest, SuccessJsonWithErrorStatusCodeStillFails) {
  CannedHttpServer server(CannedHttpServer::Response(500, kValidAnswer));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_FALSE(snapshot.status.ok());
  EXPECT_THAT(std::string(snapshot.status.message()), HasSubstr("HTTP 500"));
  EXPECT_THAT(snapshot.alerts, IsEmpty());
}

TEST_F(PrometheusAlertSourceTest, SlowAnswerTimesOut) {
  CannedHttpServer server(/*response=*/"", /*hang=*/true);
  absl::Duration took;
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Milliseconds(300), &took);
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kDeadlineExceeded) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()), HasSubstr("no complete answer within 300ms"));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(PrometheusAlertSourceTest, AnnouncedOversizedBodyIsRefused) {
  CannedHttpServer server(
      absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ",
                   kMaxPrometheusResponseBytes + 1, "\r\nConnection: close\r\n\r\n{\"status\":"));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kResourceExhausted) << snapshot.status;
  EXPECT_THAT(std::string(snapshot.status.message()), HasSubstr("answer larger than"));
}

TEST_F(PrometheusAlertSourceTest, UnannouncedOversizedBodyIsCutOff) {
  CannedHttpServer server(absl::StrCat("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
                                       std::string(kMaxPrometheusResponseBytes + 4096, ' ')));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(20));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kResourceExhausted) << snapshot.status;
}

TEST_F(PrometheusAlertSourceTest, MalformedUrlIsInvalidArgument) {
  AlertSnapshot snapshot = FetchFrom("http://[not-a-host", absl::Seconds(1));
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kInvalidArgument) << snapshot.status;
}

TEST_F(PrometheusAlertSourceTest, PasswordIsKeptOutOfMessages) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  PrometheusAlertSource source(absl::StrCat("http://tended:s3cret@127.0.0.1:", *port),
                               absl::Seconds(5), clock_);
  EXPECT_THAT(source.display_url(), Not(HasSubstr("s3cret")));
  AlertSnapshot snapshot = source.Fetch();
  EXPECT_FALSE(snapshot.status.ok());
  EXPECT_THAT(std::string(snapshot.status.message()), Not(HasSubstr("s3cret")));
}

TEST_F(PrometheusAlertSourceTest, LoopbackTargetBypassesAConfiguredProxy) {
  absl::StatusOr<int> dead_proxy = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(dead_proxy.ok()) << dead_proxy.status();
  ScopedEnv http_proxy("http_proxy", absl::StrCat("http://127.0.0.1:", *dead_proxy));
  ScopedEnv all_proxy("ALL_PROXY", absl::StrCat("http://127.0.0.1:", *dead_proxy));
  ScopedEnv no_proxy("NO_PROXY", "");
  CannedHttpServer server(CannedHttpServer::Response(200, kValidAnswer));
  AlertSnapshot snapshot = FetchFrom(server.base_url(), absl::Seconds(10));
  EXPECT_TRUE(snapshot.status.ok()) << snapshot.status;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(PrometheusAlertSourceTest, OtherTargetsHonourTheProxyFromTheEnvironment) {
  // The "proxy" is our canned server on loopback, so nothing leaves the machine and the
  // unresolvable target host is never looked up.
  CannedHttpServer proxy(CannedHttpServer::Response(200, kValidAnswer));
  ScopedEnv http_proxy("http_proxy", proxy.base_url());
  ScopedEnv no_proxy("NO_PROXY", "");
  AlertSnapshot snapshot =
      FetchFrom("http://prometheus.tended-test.invalid:9090", absl::Seconds(10));
  EXPECT_TRUE(snapshot.status.ok()) << snapshot.status;
  ASSERT_EQ(proxy.requests().size(), 1u);
  EXPECT_THAT(proxy.requests()[0],
              StartsWith("GET http://prometheus.tended-test.invalid:9090/api/v1/alerts "));
}

}  // namespace
}  // namespace tended::coordinator
