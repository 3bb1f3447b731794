#include "coordinator/alerts/prometheus_alert_source.h"

#include <stdlib.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/canned_http_server.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"

namespace tended::coordinator {
namespace {

using ::testing::AllOf;
using testing::CannedHttpServer;
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

TEST_F(PrometheusAlertSourceTest, AsksThroughTheHttpClientWithTheCapAndTimeout) {
  auto http = std::make_shared<testing::FakeHttpClient>();
  http->Script("http://prometheus.example:9090/api/v1/alerts",
               {testing::FakeHttpClient::Answer(200, kValidAnswer)});
  PrometheusAlertSource source("http://prometheus.example:9090/", absl::Seconds(7), clock_, http);
  AlertSnapshot snapshot = source.Fetch();
  ASSERT_TRUE(snapshot.status.ok()) << snapshot.status;
  EXPECT_EQ(snapshot.alerts.size(), 2u);
  std::vector<HttpClient::Request> requests = http->requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpClient::Request& request = requests[0];
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.timeout, absl::Seconds(7));
  EXPECT_EQ(request.max_response_bytes, kMaxPrometheusResponseBytes);
  EXPECT_TRUE(request.accept_compressed);
  EXPECT_THAT(request.headers, ElementsAre(Pair("Accept", "application/json")));
  EXPECT_NE(request.cancel, nullptr);

  // No answer at all: the client's status, as it is.
  http->SetDefault(absl::DeadlineExceededError("GET x: no complete answer within 7s"));
  snapshot = source.Fetch();
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(snapshot.fetched_at, clock_.Now());
}

TEST_F(PrometheusAlertSourceTest, CancelFetchesEndsAHangingFetchSoon) {
  CannedHttpServer server(/*response=*/"", /*hang=*/true);
  PrometheusAlertSource source(server.base_url(), absl::Seconds(30), clock_);
  std::thread canceller([&] {
    testing::PollUntil([&]() -> absl::StatusOr<bool> { return server.requests().size() == 1; },
                       absl::Seconds(10), "the request to arrive")
        .IgnoreError();
    source.CancelFetches();
  });
  const absl::Time start = absl::Now();
  AlertSnapshot snapshot = source.Fetch();
  canceller.join();
  EXPECT_EQ(snapshot.status.code(), absl::StatusCode::kCancelled) << snapshot.status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // Later fetches fail at once: the source is shutting down.
  EXPECT_EQ(source.Fetch().status.code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace tended::coordinator
