// The reader of apiserver_requested_deprecated_apis: well-formed instant-query answers,
// garbage of every shape (refused with a reason, never thrown), huge answers, and the HTTP
// source against canned servers (error codes, a closed port, the query it sends).
#include "coordinator/alerts/prometheus_deprecated_api_source.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/alerts/prometheus_http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/canned_http_server.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/free_port.h"

namespace tended::coordinator {
namespace {

using testing::CannedHttpServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kValidAnswer[] = R"json({
  "status": "success",
  "data": {
    "resultType": "vector",
    "result": [
      {
        "metric": {"__name__": "apiserver_requested_deprecated_apis", "group": "flowcontrol.apiserver.k8s.io",
                   "version": "v1beta3", "resource": "flowschemas", "subresource": "",
                   "removed_release": "1.32", "instance": "10.0.0.10:6443", "job": "apiserver"},
        "value": [1767225600.123, "1"]
      },
      {
        "metric": {"__name__": "apiserver_requested_deprecated_apis", "group": "",
                   "version": "v1", "resource": "componentstatuses", "removed_release": ""},
        "value": [1767225600.123, "0"]
      },
      {
        "metric": {"group": "batch", "version": "v1beta1", "resource": "cronjobs",
                   "subresource": "status", "removed_release": "1.25"},
        "value": [1767225600, "1e+00"]
      }
    ]
  }
})json";

TEST(ParseDeprecatedApisResponseTest, ReadsEverySeriesWithItsLabelsAndValue) {
  absl::StatusOr<std::vector<DeprecatedApiSeries>> series =
      ParseDeprecatedApisResponse(kValidAnswer);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->size(), 3u);
  EXPECT_EQ((*series)[0].group, "flowcontrol.apiserver.k8s.io");
  EXPECT_EQ((*series)[0].version, "v1beta3");
  EXPECT_EQ((*series)[0].resource, "flowschemas");
  EXPECT_EQ((*series)[0].removed_release, "1.32");
  EXPECT_EQ((*series)[0].value, 1);
  EXPECT_EQ((*series)[1].group, "");
  EXPECT_EQ((*series)[1].removed_release, "");
  EXPECT_EQ((*series)[1].value, 0);
  EXPECT_EQ((*series)[2].subresource, "status");
  EXPECT_EQ((*series)[2].value, 1);
}

TEST(ParseDeprecatedApisResponseTest, NoSeriesIsAnEmptyAnswer) {
  absl::StatusOr<std::vector<DeprecatedApiSeries>> series = ParseDeprecatedApisResponse(
      R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_TRUE(series->empty());
}

struct GarbageCase {
  std::string name;
  std::string body;
  std::string expected;
};

class DeprecatedApisGarbageTest : public ::testing::TestWithParam<GarbageCase> {};

TEST_P(DeprecatedApisGarbageTest, IsRefusedSayingWhatWasWrong) {
  absl::StatusOr<std::vector<DeprecatedApiSeries>> series =
      ParseDeprecatedApisResponse(GetParam().body);
  ASSERT_FALSE(series.ok());
  EXPECT_EQ(series.status().code(), absl::StatusCode::kInvalidArgument) << series.status();
  EXPECT_THAT(std::string(series.status().message()), HasSubstr(GetParam().expected));
  // Whatever the server sent, the message is printable ASCII of a bounded size.
  for (char c : series.status().message()) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
  EXPECT_LT(series.status().message().size(), 1200u);
}

std::string Nested(int depth) {
  return absl::StrCat(std::string(depth, '['), std::string(depth, ']'));
}

std::string ManySeries(size_t count) {
  std::string body = R"({"status":"success","data":{"resultType":"vector","result":[)";
  for (size_t i = 0; i < count; ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", R"({"metric":{"version":"v1","resource":"r)", i,
                    R"(","removed_release":"1.40"},"value":[1,"1"]})");
  }
  return absl::StrCat(body, "]}}");
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, DeprecatedApisGarbageTest,
    ::testing::Values(
        GarbageCase{"Empty", "", "empty body"},
        GarbageCase{"Html", "<html>maintenance</html>", "not JSON"},
        GarbageCase{"Binary", std::string("\x00\xff\x1b[2J", 6), "not JSON"},
        GarbageCase{"Truncated", std::string(kValidAnswer).substr(0, 200), "not JSON"},
        GarbageCase{"Array", "[]", "not an object"},
        GarbageCase{"NoStatus", R"({"data":{}})", "no \"status\""},
        GarbageCase{"ErrorAnswer",
                    R"({"status":"error","errorType":"bad_data","error":"parse error at char 3"})",
                    "bad_data: parse error at char 3"},
        GarbageCase{"NoData", R"({"status":"success"})", "no \"data\""},
        GarbageCase{"Matrix", R"({"status":"success","data":{"resultType":"matrix","result":[]}})",
                    "not \"vector\""},
        GarbageCase{"Scalar",
                    R"({"status":"success","data":{"resultType":"scalar","result":[1,"1"]}})",
                    "not \"vector\""},
        GarbageCase{"ResultNotArray",
                    R"({"status":"success","data":{"resultType":"vector","result":{}}})",
                    "no data.result array"},
        GarbageCase{"SeriesNotObject",
                    R"({"status":"success","data":{"resultType":"vector","result":[7]}})",
                    "data.result[0] is a JSON number"},
        GarbageCase{
            "LabelNotString",
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"v1","resource":"r","group":5},"value":[1,"1"]}]}})",
            "data.result[0].metric.group is a JSON number"},
        GarbageCase{
            "NoResource",
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"v1"},"value":[1,"1"]}]}})",
            "no version or resource label"},
        GarbageCase{
            "OtherMetric",
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","version":"v1","resource":"r"},"value":[1,"1"]}]}})",
            "not apiserver_requested_deprecated_apis"},
        GarbageCase{
            "ValueNotPair",
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"v1","resource":"r"},"value":"1"}]}})",
            "no \"value\" of the form"},
        GarbageCase{
            "ValueNotNumber",
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"v1","resource":"r"},"value":[1,"yes"]}]}})",
            "not a number"},
        GarbageCase{"TooDeep", absl::StrCat(R"({"status":"success","data":)", Nested(100000), "}"),
                    "nested deeper than"},
        GarbageCase{"TooLarge", std::string(kMaxPrometheusResponseBytes + 1, ' '),
                    "exceeds the limit"},
        GarbageCase{"TooManySeries", ManySeries(kMaxDeprecatedApiSeries + 1), "more than 10000"}),
    [](const ::testing::TestParamInfo<GarbageCase>& info) { return info.param.name; });

TEST(ParseDeprecatedApisResponseTest, AHugeValidAnswerWithinTheLimitsIsRead) {
  absl::StatusOr<std::vector<DeprecatedApiSeries>> series =
      ParseDeprecatedApisResponse(ManySeries(kMaxDeprecatedApiSeries));
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_EQ(series->size(), kMaxDeprecatedApiSeries);
}

class PrometheusDeprecatedApiSourceTest : public ::testing::Test {
 protected:
  DeprecatedApiReading FetchFrom(const std::string& base_url) {
    PrometheusDeprecatedApiSource source(base_url, absl::Seconds(20), clock_);
    return source.Fetch();
  }

  testing::FakeClock clock_;
};

TEST_F(PrometheusDeprecatedApiSourceTest, AsksAnInstantQueryAndStampsTheClock) {
  CannedHttpServer server(CannedHttpServer::Response(200, kValidAnswer));
  DeprecatedApiReading reading = FetchFrom(absl::StrCat(server.base_url(), "/prom/"));
  ASSERT_TRUE(reading.status.ok()) << reading.status;
  EXPECT_EQ(reading.series.size(), 3u);
  EXPECT_EQ(reading.fetched_at, clock_.Now());
  EXPECT_THAT(reading.source, HasSubstr("/prom/api/v1/query"));
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0],
              HasSubstr("GET /prom/api/v1/query?query=apiserver_requested_deprecated_apis "));
}

TEST_F(PrometheusDeprecatedApiSourceTest, AnUnreachablePrometheusIsUnavailable) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  DeprecatedApiReading reading = FetchFrom(absl::StrCat("http://127.0.0.1:", *port));
  EXPECT_EQ(reading.status.code(), absl::StatusCode::kUnavailable) << reading.status;
  EXPECT_THAT(std::string(reading.status.message()), HasSubstr(absl::StrCat("127.0.0.1:", *port)));
  EXPECT_TRUE(reading.series.empty());
}

TEST_F(PrometheusDeprecatedApiSourceTest, ErrorCodesAndGarbageFail) {
  {
    CannedHttpServer server(CannedHttpServer::Response(503, "upstream down\n", "text/plain"));
    DeprecatedApiReading reading = FetchFrom(server.base_url());
    EXPECT_EQ(reading.status.code(), absl::StatusCode::kUnavailable) << reading.status;
    EXPECT_THAT(std::string(reading.status.message()), HasSubstr("HTTP 503"));
  }
  {
    CannedHttpServer server(CannedHttpServer::Response(
        400, R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""})"));
    DeprecatedApiReading reading = FetchFrom(server.base_url());
    EXPECT_EQ(reading.status.code(), absl::StatusCode::kFailedPrecondition) << reading.status;
    EXPECT_THAT(std::string(reading.status.message()), HasSubstr("bad_data"));
  }
  {
    CannedHttpServer server(CannedHttpServer::Response(200, "<html>login</html>", "text/html"));
    DeprecatedApiReading reading = FetchFrom(server.base_url());
    EXPECT_EQ(reading.status.code(), absl::StatusCode::kInvalidArgument) << reading.status;
    EXPECT_THAT(std::string(reading.status.message()), HasSubstr("GET http://127.0.0.1:"));
    EXPECT_THAT(std::string(reading.status.message()), HasSubstr("not JSON"));
    EXPECT_THAT(std::string(reading.status.message()), Not(HasSubstr("\n")));
  }
}

}  // namespace
}  // namespace tended::coordinator
