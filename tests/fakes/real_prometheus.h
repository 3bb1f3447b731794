// A real Prometheus (Debian's /usr/bin/prometheus) for tests: started in a temp dir on a
// free 127.0.0.1 port with the scrape configuration a test gives, ready once /-/ready
// answers, stopped and reaped when this goes away. Not a fake: the name says where it runs.
#ifndef TENDED_TESTS_FAKES_REAL_PROMETHEUS_H_
#define TENDED_TESTS_FAKES_REAL_PROMETHEUS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended::testing {

inline constexpr char kPrometheusBinary[] = "/usr/bin/prometheus";

class RealPrometheus {
 public:
  // `scrape_configs` is the YAML list under scrape_configs: (may be empty); the global
  // scrape and evaluation intervals are 1 s. start_status() says whether it came up.
  explicit RealPrometheus(const std::string& scrape_configs);
  ~RealPrometheus();

  const absl::Status& start_status() const { return start_status_; }
  std::string base_url() const;
  ChildProcess* process() { return process_.get(); }
  void Stop();

 private:
  absl::Status Start(const std::string& scrape_configs);

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
  absl::Status start_status_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_REAL_PROMETHEUS_H_
