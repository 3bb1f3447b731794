// A DeprecatedApiSource for tests (a fake: the real one asks Prometheus): answers what the
// test set, stamped with the test's clock, counts the fetches, and runs a hook inside each
// fetch (to see what the caller holds while it waits). Thread-safe.
#ifndef TENDED_TESTS_FAKES_FAKE_DEPRECATED_API_SOURCE_H_
#define TENDED_TESTS_FAKES_FAKE_DEPRECATED_API_SOURCE_H_

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "coordinator/alerts/deprecated_api_source.h"

namespace tended::testing {

class FakeDeprecatedApiSource final : public coordinator::DeprecatedApiSource {
 public:
  explicit FakeDeprecatedApiSource(const Clock& clock) : clock_(clock) {}

  coordinator::DeprecatedApiReading Fetch() override {
    std::function<void()> hook;
    coordinator::DeprecatedApiReading reading;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++fetches_;
      hook = on_fetch_;
      reading.status = status_;
      reading.series = series_;
    }
    if (hook) hook();
    reading.source = "the fake deprecated-API source";
    reading.fetched_at = clock_.Now();
    return reading;
  }

  // A series of apiserver_requested_deprecated_apis with `value`.
  void Add(std::string group, std::string version, std::string resource,
           std::string removed_release, double value = 1, std::string subresource = "") {
    std::lock_guard<std::mutex> lock(mutex_);
    series_.push_back({std::move(group), std::move(version), std::move(resource),
                       std::move(subresource), std::move(removed_release), value});
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    series_.clear();
    status_ = absl::OkStatus();
  }
  // Every later fetch fails with `status` (unreachable, garbage).
  void Fail(absl::Status status) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = std::move(status);
  }
  void OnFetch(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mutex_);
    on_fetch_ = std::move(hook);
  }
  int fetches() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fetches_;
  }

 private:
  const Clock& clock_;
  mutable std::mutex mutex_;
  absl::Status status_;
  std::vector<coordinator::DeprecatedApiSeries> series_;
  std::function<void()> on_fetch_;
  int fetches_ = 0;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_DEPRECATED_API_SOURCE_H_
