// Prints what the state journal sustains: records/s, fsyncs, mean batch size and the p50/p99
// latency of Append + WaitDurable, for 1, 8 and 64 concurrent writers with 300-byte records,
// then the time to write a snapshot. Prints figures; asserts nothing.
//   journal_bench [folder] [seconds per run = 3]
// The folder defaults to a fresh one inside the current directory, so that it measures the disk
// it is run from; give /dev/shm to see the journal's own cost without a disk.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/state/journal.h"

namespace tended::coordinator {
namespace {

using Clock = std::chrono::steady_clock;

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

bool RunWriters(const std::string& dir, int writers, double seconds, bool synchronous) {
  std::filesystem::remove_all(dir);
  Journal::Options options;
  options.dir = dir;
  options.synchronous = synchronous;
  Journal::Recovered recovered;
  auto journal = Journal::Open(options, &recovered);
  if (!journal.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), journal.status().ToString().c_str());
    return false;
  }
  std::vector<std::vector<double>> latencies(static_cast<size_t>(writers));
  std::atomic<int> errors{0};
  const std::string payload(300, 'x');
  Clock::time_point start = Clock::now();
  Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double>& mine = latencies[static_cast<size_t>(t)];
      while (Clock::now() < deadline) {
        Clock::time_point begin = Clock::now();
        uint64_t sequence = (*journal)->Append(payload);
        if (!(*journal)->WaitDurable(sequence).ok()) {
          ++errors;
          return;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& mine : latencies) all.insert(all.end(), mine.begin(), mine.end());
  std::sort(all.begin(), all.end());
  Journal::Stats stats = (*journal)->stats();
  std::printf(
      "%-6s %7d %9zu %11.0f %8llu %10.1f %9llu %9.0f %9.0f %6d\n", synchronous ? "sync" : "async",
      writers, all.size(), static_cast<double>(all.size()) / elapsed,
      static_cast<unsigned long long>(stats.fsyncs),
      stats.batches == 0 ? 0.0
                         : static_cast<double>(stats.records) / static_cast<double>(stats.batches),
      static_cast<unsigned long long>(stats.max_batch_records), Percentile(all, 0.50),
      Percentile(all, 0.99), errors.load());
  return errors.load() == 0;
}

void RunSnapshot(const std::string& dir, size_t bytes) {
  std::filesystem::remove_all(dir);
  Journal::Options options;
  options.dir = dir;
  Journal::Recovered recovered;
  auto journal = Journal::Open(options, &recovered);
  if (!journal.ok()) return;
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) last = (*journal)->Append(std::string(300, 'x'));
  Clock::time_point begin = Clock::now();
  absl::Status status = (*journal)->WriteSnapshot(last, std::string(bytes, 's'));
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
  Clock::time_point reopen = Clock::now();
  journal->reset();
  auto again = Journal::Open(options, &recovered);
  double recover_ms = std::chrono::duration<double, std::milli>(Clock::now() - reopen).count();
  std::printf("snapshot of %zu KiB after 1000 records: %.1f ms (%s); close + recover: %.1f ms\n",
              bytes >> 10, ms, status.ok() ? "ok" : status.ToString().c_str(), recover_ms);
}

int Main(int argc, char** argv) {
  std::string base;
  bool made = false;
  if (argc > 1 && argv[1][0] != '\0') {
    base = argv[1];
  } else {
    std::string pattern = (std::filesystem::current_path() / "journal-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    base = pattern;
    made = true;
  }
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  std::string dir = base + "/journal-bench-state";
  std::printf("journal_bench: %s, %.1f s per run, 300-byte records\n", dir.c_str(), seconds);
  std::printf("%-6s %7s %9s %11s %8s %10s %9s %9s %9s %6s\n", "mode", "writers", "records",
              "records/s", "fsyncs", "mean batch", "max batch", "p50 us", "p99 us", "errors");
  bool ok = RunWriters(dir, 1, seconds, /*synchronous=*/true);
  for (int writers : {1, 8, 64}) ok = RunWriters(dir, writers, seconds, false) && ok;
  RunSnapshot(dir, 1 << 20);
  std::filesystem::remove_all(dir);
  if (made) std::filesystem::remove_all(base);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tended::coordinator

int main(int argc, char** argv) { return tended::coordinator::Main(argc, argv); }
