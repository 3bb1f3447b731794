#include "tests/fakes/real_prometheus.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"

namespace tended::testing {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(60);

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out.good();
}

}  // namespace

RealPrometheus::RealPrometheus(const std::string& scrape_configs) {
  start_status_ = Start(scrape_configs);
}

RealPrometheus::~RealPrometheus() { Stop(); }

std::string RealPrometheus::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void RealPrometheus::Stop() {
  if (process_ != nullptr) process_->Stop();
}

absl::Status RealPrometheus::Start(const std::string& scrape_configs) {
  if (!WriteFile(dir_.Path("prometheus.yml"),
                 absl::StrCat("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n",
                              scrape_configs.empty() ? "" : "scrape_configs:\n", scrape_configs))) {
    return absl::InternalError("cannot write the Prometheus configuration");
  }
  absl::Status last;
  // The chosen port may be taken by someone else before Prometheus binds it: retry.
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = PickFreeLoopbackPort();
    if (!port.ok()) return port.status();
    port_ = *port;
    absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Start(
        {kPrometheusBinary, absl::StrCat("--config.file=", dir_.Path("prometheus.yml")),
         absl::StrCat("--storage.tsdb.path=", dir_.Path("data")),
         absl::StrCat("--web.listen-address=127.0.0.1:", port_),
         absl::StrCat("--web.console.templates=", dir_.Path("consoles")),
         absl::StrCat("--web.console.libraries=", dir_.Path("console_libraries"))},
        dir_.Path(absl::StrCat("prometheus-", attempt, ".log")));
    if (!process.ok()) return process.status();
    process_ = *std::move(process);
    last = WaitForHttpReady(port_, "/-/ready", kStartTimeout, process_.get());
    if (last.ok()) return last;
    process_->Stop();
    if (!absl::IsFailedPrecondition(last)) break;  // Timed out rather than exited.
  }
  return last;
}

}  // namespace tended::testing
