// The deprecated-API preflight against a real Prometheus (Debian's /usr/bin/prometheus) on
// a free 127.0.0.1 port, scraping an endpoint this test serves that exposes
// apiserver_requested_deprecated_apis as an API server does: the series arrive through
// Prometheus' instant query, the check names what the target removes, and once Prometheus
// is gone the check fails closed.
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "coordinator/alerts/prometheus_deprecated_api_source.h"
#include "coordinator/leases/k8s_rollout_plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/canned_http_server.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/real_prometheus.h"

namespace tended::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What kube-apiserver's /metrics shows for these series (format 0.0.4).
constexpr char kApiServerMetrics[] =
    "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have "
    "been requested, broken out by API group, version, resource, subresource, and "
    "removed_release.\n"
    "# TYPE apiserver_requested_deprecated_apis gauge\n"
    "apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release="
    "\"1.32\",resource=\"flowschemas\",subresource=\"\",version=\"v1beta3\"} 1\n"
    "apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release="
    "\"1.32\",resource=\"prioritylevelconfigurations\",subresource=\"status\",version="
    "\"v1beta3\"} 1\n"
    "apiserver_requested_deprecated_apis{group=\"\",removed_release=\"\",resource="
    "\"componentstatuses\",subresource=\"\",version=\"v1\"} 1\n"
    "apiserver_requested_deprecated_apis{group=\"storage.k8s.io\",removed_release=\"1.33\","
    "resource=\"volumeattributesclasses\",subresource=\"\",version=\"v1alpha1\"} 1\n";

class DeprecatedApisPrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(testing::kPrometheusBinary, X_OK) != 0) {
      GTEST_SKIP() << testing::kPrometheusBinary << " is not installed (Debian package prometheus)";
    }
  }

  testing::FakeClock clock_;
};

TEST_F(DeprecatedApisPrometheusTest, SeriesScrapedFromTheApiServerDecideTheCheck) {
  testing::CannedHttpServer apiserver(testing::CannedHttpServer::Response(
      200, kApiServerMetrics, "text/plain; version=0.0.4; charset=utf-8"));
  testing::RealPrometheus prometheus(
      absl::StrCat("  - job_name: apiserver\n    static_configs:\n      - targets: ['127.0.0.1:",
                   apiserver.port(), "']\n"));
  ASSERT_TRUE(prometheus.start_status().ok()) << prometheus.start_status();
  PrometheusDeprecatedApiSource source(prometheus.base_url(), absl::Seconds(5), clock_);

  DeprecatedApiReading reading;
  absl::Status scraped = testing::PollUntil(
      [&]() -> absl::StatusOr<bool> {
        reading = source.Fetch();
        if (!reading.status.ok()) return reading.status;
        if (reading.series.size() != 4) {
          return absl::UnavailableError(absl::StrCat(reading.series.size(), " series so far"));
        }
        return true;
      },
      absl::Seconds(60), "the scraped deprecated-API series", prometheus.process(),
      absl::Milliseconds(250));
  ASSERT_TRUE(scraped.ok()) << scraped;
  EXPECT_EQ(reading.fetched_at, clock_.Now());

  // 1.32 removes both flowcontrol v1beta3 APIs; 1.33's and the never-removed one stay out.
  tended::v1::PreflightCheck to_132 = DeprecatedApiCheck(&reading, KubeVersion{1, 32, 0});
  EXPECT_FALSE(to_132.pass());
  EXPECT_THAT(to_132.reason(),
              HasSubstr("flowcontrol.apiserver.k8s.io/v1beta3/flowschemas (removed in 1.32)"));
  EXPECT_THAT(to_132.reason(),
              HasSubstr("flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations/status "
                        "(removed in 1.32)"));
  EXPECT_THAT(to_132.reason(), Not(HasSubstr("volumeattributesclasses")));
  EXPECT_THAT(to_132.reason(), Not(HasSubstr("componentstatuses")));
  EXPECT_THAT(to_132.reason(), HasSubstr(prometheus.base_url()));
  // 1.31 removes none of them.
  tended::v1::PreflightCheck to_131 = DeprecatedApiCheck(&reading, KubeVersion{1, 31, 0});
  EXPECT_TRUE(to_131.pass()) << to_131.reason();
  // 1.33 removes three.
  tended::v1::PreflightCheck to_133 = DeprecatedApiCheck(&reading, KubeVersion{1, 33, 0});
  EXPECT_FALSE(to_133.pass());
  EXPECT_THAT(to_133.reason(), HasSubstr("3 APIs still in use"));

  // Prometheus gone: the check fails closed with the reason.
  prometheus.Stop();
  DeprecatedApiReading gone = source.Fetch();
  EXPECT_EQ(gone.status.code(), absl::StatusCode::kUnavailable) << gone.status;
  tended::v1::PreflightCheck closed = DeprecatedApiCheck(&gone, KubeVersion{1, 31, 0});
  EXPECT_FALSE(closed.pass());
  EXPECT_THAT(closed.reason(), HasSubstr("cannot read apiserver_requested_deprecated_apis"));
}

}  // namespace
}  // namespace tended::coordinator
