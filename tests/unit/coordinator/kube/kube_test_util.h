// Shared test helpers for tended_kube: a Sleeper that advances a FakeClock instead of
// sleeping, and a real HttpKubeClient pointed at a FakeKubeApiServer.
#ifndef TENDED_TESTS_UNIT_COORDINATOR_KUBE_KUBE_TEST_UTIL_H_
#define TENDED_TESTS_UNIT_COORDINATOR_KUBE_KUBE_TEST_UTIL_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/kube/drainer.h"
#include "coordinator/kube/http_kube_client.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kube_api_server.h"

namespace tended::kube::testing {

class ClockAdvancingSleeper final : public Sleeper {
 public:
  explicit ClockAdvancingSleeper(tended::testing::FakeClock& clock) : clock_(clock) {}
  void Sleep(absl::Duration duration) override {
    std::lock_guard<std::mutex> lock(mutex_);
    sleeps_.push_back(duration);
    clock_.Advance(duration);
  }
  std::vector<absl::Duration> sleeps() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sleeps_;
  }
  absl::Duration total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    absl::Duration sum;
    for (absl::Duration d : sleeps_) sum += d;
    return sum;
  }

 private:
  tended::testing::FakeClock& clock_;
  mutable std::mutex mutex_;
  std::vector<absl::Duration> sleeps_;
};

inline std::unique_ptr<HttpKubeClient> ClientFor(const tended::testing::FakeKubeApiServer& server,
                                                 const Clock& clock,
                                                 const std::string& token = "") {
  KubeConnection connection;
  connection.server = server.url();
  connection.token = token;
  connection.source = "test";
  KubeClientOptions options;
  options.clock = &clock;
  options.request_timeout = absl::Seconds(10);
  auto client = HttpKubeClient::FromConnection(connection, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

}  // namespace tended::kube::testing

#endif  // TENDED_TESTS_UNIT_COORDINATOR_KUBE_KUBE_TEST_UTIL_H_
