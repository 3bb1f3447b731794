// Prints how fast TakeSnapshot streams, hashes and writes a snapshot of a real etcd
// (/usr/bin/etcd on loopback) whose database is about 50 MB, beside `etcdctl snapshot save` of
// the same member. Prints figures; asserts nothing.
//   etcd_snapshot_bench [folder = a fresh one under $TMPDIR or /tmp] [MB of values = 38] [runs = 3]
// 38 MB of values make a database of about 49 MB (bolt's pages and free lists on top).
// etcd's data and the snapshots go in the folder, so the figure includes that disk's writes.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/apt/subprocess.h"
#include "agent/etcd/snapshot.h"
#include "common/clock.h"
#include "tests/fakes/real_etcd.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::etcd {
namespace {

using Steady = std::chrono::steady_clock;

double SecondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

int Main(int argc, char** argv) {
  testing::TempDir scratch;
  const std::string dir = argc > 1 && argv[1][0] != '\0' ? argv[1] : scratch.path();
  const int megabytes = argc > 2 ? std::atoi(argv[2]) : 38;
  const int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  std::filesystem::create_directories(dir);

  absl::StatusOr<std::unique_ptr<testing::RealEtcd>> etcd = testing::RealEtcd::Start(dir);
  if (!etcd.ok()) {
    std::fprintf(stderr, "start etcd: %s\n", etcd.status().ToString().c_str());
    return 1;
  }
  // 512 KiB random values: under etcd's 1.5 MiB request limit, and incompressible.
  constexpr size_t kValueSize = 512 * 1024;
  std::mt19937_64 random(42);
  std::string value(kValueSize, '\0');
  Steady::time_point fill_start = Steady::now();
  const int values = megabytes * 2;
  for (int i = 0; i < values; ++i) {
    for (char& byte : value) byte = static_cast<char>(random());
    absl::Status put = (*etcd)->Put(absl::StrCat("/registry/bench/", i), value);
    if (!put.ok()) {
      std::fprintf(stderr, "put: %s\n", put.ToString().c_str());
      return 1;
    }
  }
  std::printf("etcd %s in %s: %d values of %zu KiB put in %.1f s\n", (*etcd)->client_url().c_str(),
              dir.c_str(), values, kValueSize / 1024, SecondsSince(fill_start));

  SnapshotOptions options;
  options.endpoint = (*etcd)->client_url();
  std::printf("%-22s %12s %9s %9s\n", "run", "bytes", "seconds", "MB/s");
  for (int run = 0; run < runs; ++run) {
    const std::string path = absl::StrCat(dir, "/bench-", run, ".db");
    Steady::time_point start = Steady::now();
    absl::StatusOr<tended::v1::EtcdSnapshotRecord> record =
        TakeSnapshot(options, path, Clock::Real());
    double seconds = SecondsSince(start);
    if (!record.ok()) {
      std::fprintf(stderr, "snapshot: %s\n", record.status().ToString().c_str());
      return 1;
    }
    std::printf("%-22s %12llu %9.3f %9.1f\n", absl::StrCat("TakeSnapshot ", run + 1).c_str(),
                static_cast<unsigned long long>(record->size_bytes()), seconds,
                static_cast<double>(record->size_bytes()) / 1e6 / seconds);
    std::filesystem::remove(path);
  }
  const std::string etcdctl_path = absl::StrCat(dir, "/etcdctl.db");
  Steady::time_point start = Steady::now();
  absl::StatusOr<apt::ProcessResult> saved =
      apt::RunProcess({testing::kEtcdctlProgram, "--endpoints", (*etcd)->client_url(), "snapshot",
                       "save", etcdctl_path},
                      {"ETCDCTL_API=3"});
  double seconds = SecondsSince(start);
  if (saved.ok() && saved->exit_code == 0) {
    uintmax_t size = std::filesystem::file_size(etcdctl_path);
    std::printf("%-22s %12ju %9.3f %9.1f\n", "etcdctl snapshot save", size, seconds,
                static_cast<double>(size) / 1e6 / seconds);
  } else {
    std::fprintf(stderr, "etcdctl snapshot save failed: %s\n",
                 saved.ok() ? saved->output.c_str() : saved.status().ToString().c_str());
  }
  std::filesystem::remove(etcdctl_path);
  return 0;
}

}  // namespace
}  // namespace tended::agent::etcd

int main(int argc, char** argv) { return tended::agent::etcd::Main(argc, argv); }
