// tended-fleet-load: simulates N agents against a running tended-coordinator over real gRPC.
// Each simulated agent has its own connection and WatchDirectives stream and reports facts
// every report interval; a share of them carry the reboot-required sentinel and run the
// lease flow a real agent runs (fleet_load_agent.h). Over a measuring window after a ramp-up
// it prints the coordinator's CPU, memory and threads, the latencies and errors of the
// calls, and, at the end, the time from "sentinel appears" to "grant received" for a probe
// agent while no other lease is active. tests/bench/fleet_load.sh starts the coordinator
// and runs this program; docs/performance.md has the figures.
//
// All agent state lives on one event-loop thread; gRPC's callback API carries the calls, so
// 10,000 agents need no thread of their own.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/bench/fleet_load_agent.h"

ABSL_FLAG(std::string, address, "", "The coordinator's HOST:PORT (plaintext gRPC).");
ABSL_FLAG(int, agents, 100, "Simulated agents (one of them is the probe).");
ABSL_FLAG(int, coordinator_pid, 0, "The coordinator's pid, for CPU, memory and threads.");
ABSL_FLAG(std::string, label, "run", "Names the run in the output (cold, warm).");
ABSL_FLAG(std::string, identities, "",
          "File with the agents' node names, instance ids and boot ids: read when it exists "
          "(the same agents after a coordinator restart), written at the end.");
ABSL_FLAG(absl::Duration, ramp, absl::Seconds(30),
          "Time from the first connection to the measuring window (at least every agent "
          "started plus one report interval).");
ABSL_FLAG(absl::Duration, measure, absl::Seconds(60), "The measuring window.");
ABSL_FLAG(double, connect_rate, 500, "Agents started (connections opened) per second.");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(10),
          "How often each agent reports (shorter when the coordinator asks for shorter).");
ABSL_FLAG(double, reboot_share, 0.05, "Share of the agents with a reboot-required sentinel.");
ABSL_FLAG(absl::Duration, acquire_period, absl::Seconds(10),
          "How often a waiting agent asks for its lease again.");
ABSL_FLAG(absl::Duration, reboot_delay, absl::Seconds(1),
          "From BeginDisruption to the new boot id (the simulated reboot).");
ABSL_FLAG(absl::Duration, rearm_after, absl::Seconds(20),
          "After a verified reboot the sentinel appears again after this long (x0.5..1.5); "
          "0 = once per agent.");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(10), "Deadline of every unary call.");
ABSL_FLAG(int, probes, 5, "Sentinel-to-grant measurements at the end.");
ABSL_FLAG(absl::Duration, quiesce_timeout, absl::Seconds(120),
          "How long to wait for the leases in flight to finish before the probes.");
ABSL_FLAG(uint64_t, seed, 0, "Random seed (0: random).");

namespace tended::bench {
namespace {

// What /proc says about a process.
struct ProcessSample {
  bool ok = false;
  uint64_t cpu_ticks = 0;  // utime + stime
  uint64_t rss_kb = 0;
  uint64_t hwm_kb = 0;
  uint64_t threads = 0;
};

ProcessSample SampleProcess(const std::string& pid) {
  ProcessSample sample;
  std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return sample;
  // Fields after the command: state(3) ... utime(14) stime(15).
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipWhitespace());
  if (fields.size() < 13) return sample;
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (!absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) {
    return sample;
  }
  sample.cpu_ticks = utime + stime;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t:"), absl::SkipWhitespace());
    if (parts.size() < 2) continue;
    if (parts[0] == "VmRSS") (void)absl::SimpleAtoi(parts[1], &sample.rss_kb);
    if (parts[0] == "VmHWM") (void)absl::SimpleAtoi(parts[1], &sample.hwm_kb);
    if (parts[0] == "Threads") (void)absl::SimpleAtoi(parts[1], &sample.threads);
  }
  sample.ok = true;
  return sample;
}

absl::Duration Between(SteadyTime from, SteadyTime to) { return absl::FromChrono(to - from); }

std::vector<Identity> LoadOrMakeIdentities(Fleet& fleet, const std::string& path, int count) {
  std::vector<Identity> identities;
  if (!path.empty()) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      Identity identity;
      if (fields.size() != 5 || !absl::SimpleAtoi(fields[3], &identity.boot_time) ||
          !absl::SimpleAtoi(fields[4], &identity.max_fencing_token)) {
        std::cerr << "fleet-load: ignoring a bad line in " << path << ": " << line << "\n";
        continue;
      }
      identity.node_name = fields[0];
      identity.instance_id = fields[1];
      identity.boot_id = fields[2];
      identities.push_back(std::move(identity));
    }
    if (!identities.empty() && static_cast<int>(identities.size()) != count) {
      std::cerr << "fleet-load: " << path << " holds " << identities.size() << " agents, not "
                << count << "; making new ones\n";
      identities.clear();
    }
    if (!identities.empty()) {
      std::cerr << "fleet-load: the same " << count << " agents as before (" << path << ")\n";
    }
  }
  if (identities.empty()) {
    const int64_t booted = absl::ToUnixSeconds(absl::Now() - absl::Hours(1));
    for (int i = 0; i < count; ++i) {
      identities.push_back(
          Identity{absl::StrFormat("fleet-%05d", i), fleet.NewId(), fleet.NewId(), booted, 0});
    }
  }
  return identities;
}

void SaveIdentities(const std::string& path, const std::vector<Identity>& identities) {
  if (path.empty()) return;
  std::ofstream out(path, std::ios::trunc);
  out << "# tended-fleet-load agents: node instance_id boot_id boot_time max_fencing_token\n";
  for (const Identity& identity : identities) {
    out << identity.node_name << ' ' << identity.instance_id << ' ' << identity.boot_id << ' '
        << identity.boot_time << ' ' << identity.max_fencing_token << '\n';
  }
  if (!out) std::cerr << "fleet-load: cannot write " << path << "\n";
}

// Active leases per the coordinator (OperatorService.ListLeases); -1 when it cannot say.
int ActiveLeases(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = tended::v1::OperatorService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  tended::v1::ListLeasesResponse response;
  grpc::Status status = stub->ListLeases(&context, tended::v1::ListLeasesRequest(), &response);
  if (!status.ok()) return -1;
  int active = 0;
  for (const Lease& lease : response.leases()) {
    active += lease.phase() != tended::v1::LEASE_PHASE_RELEASED ? 1 : 0;
  }
  return active;
}

// The spread of a set of latencies, in milliseconds.
struct Spread {
  size_t count = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

Spread SpreadOf(std::vector<double> values) {
  Spread spread;
  if (values.empty()) return spread;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
  };
  spread.count = values.size();
  spread.p50 = at(0.5);
  spread.p99 = at(0.99);
  spread.max = values.back();
  return spread;
}

std::string Ms(double millis) {
  if (millis >= 100) return absl::StrFormat("%.0f", millis);
  if (millis >= 10) return absl::StrFormat("%.1f", millis);
  return absl::StrFormat("%.2f", millis);
}

// "p50/p99/max", or "-" without samples.
std::string Triple(const Spread& spread) {
  if (spread.count == 0) return "-";
  return absl::StrCat(Ms(spread.p50), "/", Ms(spread.p99), "/", Ms(spread.max));
}

std::string ErrorsText(const std::map<grpc::StatusCode, uint64_t>& errors) {
  std::vector<std::string> parts;
  for (const auto& [code, count] : errors) {
    parts.push_back(absl::StrCat(CodeName(code), ":", count));
  }
  return parts.empty() ? "0" : absl::StrJoin(parts, ",");
}

// What the measuring window saw.
struct WindowFigures {
  double seconds = 0;
  ProcessSample coordinator_before, coordinator_after, self_before, self_after;
  uint64_t max_threads = 0;
  uint64_t max_rss_kb = 0;
  uint64_t reboots = 0;
  std::vector<MethodFigures> calls;
};

double CpuPercent(const ProcessSample& before, const ProcessSample& after, double seconds) {
  if (!before.ok || !after.ok || seconds <= 0) return -1;
  return 100.0 * static_cast<double>(after.cpu_ticks - before.cpu_ticks) /
         static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds;
}

struct ProbeFigures {
  std::vector<double> reactions;  // Sentinel to grant.
  std::vector<double> grants;     // AcquireLease to grant.
  std::string failures;
};

class Benchmark {
 public:
  Benchmark(Options options, std::string label, std::string pid)
      : label_(std::move(label)), pid_(std::move(pid)) {
    fleet_.options = std::move(options);
  }

  int Run() {
    const Options& options = fleet_.options;
    uint64_t seed = absl::GetFlag(FLAGS_seed);
    if (seed == 0) seed = std::random_device()() ^ (static_cast<uint64_t>(getpid()) << 32);
    fleet_.random.seed(seed);
    std::vector<Identity> identities =
        LoadOrMakeIdentities(fleet_, absl::GetFlag(FLAGS_identities), options.agents);
    // Agent 0 is the probe; the agents with the sentinel are spread evenly over the others.
    rebooters_ = options.agents > 1
                     ? std::min<int>(options.agents - 1,
                                     static_cast<int>(std::llround(
                                         options.agents * absl::GetFlag(FLAGS_reboot_share))))
                     : 0;
    std::vector<Role> roles(options.agents, Role::kPlain);
    roles[0] = Role::kProbe;
    for (int k = 0; k < rebooters_; ++k) {
      roles[1 + static_cast<int64_t>(k) * (options.agents - 1) / rebooters_] = Role::kRebooter;
    }
    for (int i = 0; i < options.agents; ++i) {
      agents_.push_back(std::make_unique<SimulatedAgent>(fleet_, identities[i], roles[i]));
    }

    StartAgents();
    WindowFigures window = Measure();
    const bool settled = Quiesce();
    ProbeFigures probes = Probe();
    if (!pid_.empty() && !SampleProcess(pid_).ok) coordinator_gone_ = true;
    // Who the agents are now, for the run after a coordinator restart.
    std::vector<Identity> final_identities;
    fleet_.loop.RunAndWait(
        [&] {
          for (auto& agent : agents_) final_identities.push_back(agent->identity());
        },
        std::chrono::seconds(30));
    SaveIdentities(absl::GetFlag(FLAGS_identities), final_identities);
    const bool drained = Shutdown();
    Print(window, probes, settled, drained);
    fleet_.loop.Stop();
    if (!drained) {
      // A call still holds a pointer to an agent: leave without destroying them.
      std::cout.flush();
      std::_Exit(coordinator_gone_ ? 1 : 0);
    }
    agents_.clear();
    return coordinator_gone_ ? 1 : 0;
  }

 private:
  double Elapsed() const { return absl::ToDoubleSeconds(Between(begin_, SteadyClock::now())); }

  void Progress(const char* phase) {
    std::cerr << absl::StrFormat(
        "  %s t=%.0fs registered=%d streams=%d in-flight=%d leases=%d reboots=%d\n", phase,
        Elapsed(), fleet_.registered.load(), fleet_.streams_open.load(),
        fleet_.calls_in_flight.load(), fleet_.leases_held.load(),
        static_cast<int>(fleet_.reboots_verified.load()));
  }

  void CheckCoordinator() {
    if (!pid_.empty() && !SampleProcess(pid_).ok) coordinator_gone_ = true;
  }

  // Starts the agents at the connect rate. The window opens after the ramp, and not before
  // every agent started and had one report interval to settle.
  void StartAgents() {
    const Options& options = fleet_.options;
    const double rate = absl::GetFlag(FLAGS_connect_rate);
    begin_ = SteadyClock::now();
    auto offset = [&](int i) {
      return std::chrono::duration_cast<SteadyClock::duration>(
          std::chrono::duration<double>(i / rate));
    };
    for (int i = 0; i < options.agents; ++i) {
      fleet_.loop.At(begin_ + offset(i), [agent = agents_[i].get()] { agent->Start(); });
    }
    window_start_ = std::max(
        begin_ + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_ramp)),
        begin_ + offset(options.agents - 1) + absl::ToChronoNanoseconds(options.report_interval));
    window_end_ = window_start_ + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_measure));
    std::cerr << absl::StrFormat(
        "fleet-load %s: %d agents (%d with the sentinel, 1 probe) against %s; ramp %s, "
        "window %s\n",
        label_, options.agents, rebooters_, options.address,
        absl::FormatDuration(Between(begin_, window_start_)),
        absl::FormatDuration(Between(window_start_, window_end_)));
    while (SteadyClock::now() < window_start_) {
      std::this_thread::sleep_until(
          std::min(window_start_, SteadyClock::now() + std::chrono::seconds(10)));
      Progress("ramp");
      CheckCoordinator();
    }
  }

  WindowFigures Measure() {
    WindowFigures window;
    fleet_.stats.SetWindowOpen(true);
    if (!pid_.empty()) window.coordinator_before = SampleProcess(pid_);
    window.self_before = SampleProcess("self");
    const uint64_t reboots_before = fleet_.reboots_verified;
    window.max_threads = window.coordinator_before.threads;
    window.max_rss_kb = window.coordinator_before.rss_kb;
    SteadyTime next_progress = SteadyClock::now() + std::chrono::seconds(10);
    while (SteadyClock::now() < window_end_) {
      std::this_thread::sleep_until(
          std::min(window_end_, SteadyClock::now() + std::chrono::seconds(1)));
      if (!pid_.empty()) {
        ProcessSample sample = SampleProcess(pid_);
        if (!sample.ok) coordinator_gone_ = true;
        window.max_threads = std::max(window.max_threads, sample.threads);
        window.max_rss_kb = std::max(window.max_rss_kb, sample.rss_kb);
      }
      if (SteadyClock::now() >= next_progress) {
        Progress("measure");
        next_progress += std::chrono::seconds(10);
      }
    }
    if (!pid_.empty()) {
      window.coordinator_after = SampleProcess(pid_);
      window.max_threads = std::max(window.max_threads, window.coordinator_after.threads);
      window.max_rss_kb = std::max(window.max_rss_kb, window.coordinator_after.rss_kb);
    }
    window.self_after = SampleProcess("self");
    fleet_.stats.SetWindowOpen(false);
    window.seconds = absl::ToDoubleSeconds(Between(window_start_, SteadyClock::now()));
    window.reboots = fleet_.reboots_verified - reboots_before;
    window.calls = fleet_.stats.Window();
    return window;
  }

  // Waiting requests are withdrawn and leases in flight finish, so that the probe finds no
  // other lease active. False when that did not happen in time.
  bool Quiesce() {
    Progress("window closed;");
    fleet_.quiescing = true;
    fleet_.loop.RunAndWait(
        [&] {
          for (auto& agent : agents_) {
            if (agent->role() == Role::kRebooter) agent->Quiesce();
          }
        },
        std::chrono::seconds(30));
    const SteadyTime deadline =
        SteadyClock::now() + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_quiesce_timeout));
    bool settled = false;
    while (!settled && SteadyClock::now() < deadline) {
      fleet_.loop.RunAndWait(
          [&] {
            settled = std::all_of(agents_.begin(), agents_.end(),
                                  [](const auto& agent) { return agent->Settled(); });
          },
          std::chrono::seconds(30));
      if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // The coordinator's view too (its release may trail the agent's).
    int active = ActiveLeases(fleet_.options.address);
    for (int i = 0; i < 50 && active > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      active = ActiveLeases(fleet_.options.address);
    }
    Progress(settled ? "quiesced;" : "NOT quiesced;");
    if (active != 0) {
      std::cerr << "  the coordinator reports " << active
                << " active leases before the probe (-1: ListLeases failed)\n";
    }
    return settled && active == 0;
  }

  // The probe's sentinel appears, it is granted, reboots and is verified; a few times.
  ProbeFigures Probe() {
    ProbeFigures figures;
    SimulatedAgent* probe = agents_[0].get();
    const int probes = absl::GetFlag(FLAGS_probes);
    int failed_in_a_row = 0;
    for (int i = 1; i <= probes; ++i) {
      fleet_.loop.RunAndWait([probe] { probe->SentinelAppears(); }, std::chrono::seconds(30));
      const SteadyTime deadline = SteadyClock::now() + std::chrono::seconds(30) +
                                  absl::ToChronoNanoseconds(fleet_.options.reboot_delay);
      bool done = false;
      std::optional<double> reaction;
      std::optional<double> grant;
      std::string note;
      while (!done && SteadyClock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        fleet_.loop.RunAndWait(
            [&] {
              done = probe->Settled();
              reaction = probe->reaction_ms();
              grant = probe->grant_ms();
              note = probe->probe_note();
            },
            std::chrono::seconds(30));
      }
      if (reaction.has_value()) {
        figures.reactions.push_back(*reaction);
        figures.grants.push_back(*grant);
        failed_in_a_row = 0;
        if (!done) absl::StrAppend(&figures.failures, " probe ", i, " not verified in time;");
      } else {
        absl::StrAppend(&figures.failures, " probe ", i, " not granted (", note, ");");
        fleet_.loop.RunAndWait([probe] { probe->Quiesce(); }, std::chrono::seconds(30));
        if (++failed_in_a_row == 2 && i < probes) {
          absl::StrAppend(&figures.failures, " the rest not tried;");
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return figures;
  }

  // Ends the streams and lets the calls in flight finish; false if some did not.
  bool Shutdown() {
    fleet_.stopping = true;
    fleet_.loop.RunAndWait(
        [&] {
          for (auto& agent : agents_) agent->Stop();
        },
        std::chrono::seconds(30));
    const SteadyTime deadline = SteadyClock::now() +
                                absl::ToChronoNanoseconds(fleet_.options.call_timeout) +
                                std::chrono::seconds(5);
    while ((fleet_.streams_open > 0 || fleet_.calls_in_flight > 0) &&
           SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return fleet_.streams_open == 0 && fleet_.calls_in_flight == 0;
  }

  void Print(const WindowFigures& window, const ProbeFigures& probes, bool settled, bool drained) {
    const double mb = 1024.0;
    const double coordinator_cpu =
        CpuPercent(window.coordinator_before, window.coordinator_after, window.seconds);
    const double self_cpu = CpuPercent(window.self_before, window.self_after, window.seconds);
    const ProcessSample& after = window.coordinator_after;
    std::cout << absl::StrFormat(
        "\n== %s: %d agents (%d with the sentinel, 1 probe), window %.0f s after a %.0f s ramp\n",
        label_, fleet_.options.agents, rebooters_, window.seconds,
        absl::ToDoubleSeconds(Between(begin_, window_start_)));
    if (!pid_.empty()) {
      std::cout << absl::StrFormat(
          "coordinator pid %s: CPU %.1f%% of one core; RSS %.1f MB at the end (max %.1f MB, "
          "HWM %.1f MB); threads %d at the end (max %d)%s\n",
          pid_, coordinator_cpu, after.rss_kb / mb, window.max_rss_kb / mb, after.hwm_kb / mb,
          static_cast<int>(after.threads), static_cast<int>(window.max_threads),
          coordinator_gone_ ? "; THE COORDINATOR WENT AWAY" : "");
    }
    std::cout << absl::StrFormat(
        "generator (this process, on the same cores): CPU %.1f%% of one core, %d threads, "
        "RSS %.1f MB\n",
        self_cpu, static_cast<int>(window.self_after.threads), window.self_after.rss_kb / mb);

    uint64_t unary_calls = 0;
    std::map<grpc::StatusCode, uint64_t> window_errors;
    Spread spreads[kMethodCount];
    for (int m = 0; m < kMethodCount; ++m) {
      const MethodFigures& figures = window.calls[m];
      spreads[m] = SpreadOf(figures.latencies_ms);
      for (const auto& [code, count] : figures.errors) window_errors[code] += count;
      if (figures.calls == 0) continue;
      if (m == kWatchDirectives) {
        std::cout << absl::StrFormat("  %-18s %6d streams ended in the window (%s)\n",
                                     kMethodNames[m], static_cast<int>(figures.calls),
                                     ErrorsText(figures.errors));
        continue;
      }
      unary_calls += figures.calls;
      std::cout << absl::StrFormat(
          "  %-18s %6d calls %7.1f/s  p50 %7s ms  p99 %7s ms  max %7s ms  errors %s\n",
          kMethodNames[m], static_cast<int>(figures.calls),
          static_cast<double>(figures.calls) / window.seconds, Ms(spreads[m].p50),
          Ms(spreads[m].p99), Ms(spreads[m].max), ErrorsText(figures.errors));
    }
    std::vector<std::string> run_errors;
    for (const auto& [method, errors] : fleet_.stats.RunErrors()) {
      run_errors.push_back(absl::StrCat(kMethodNames[method], " ", ErrorsText(errors)));
    }
    const double calls_per_second = static_cast<double>(unary_calls) / window.seconds;
    std::cout << absl::StrFormat(
        "  all unary calls %.1f/s; reboots verified in the window: %d\n"
        "  errors over the whole run (ramp, window, probes): %s\n",
        calls_per_second, static_cast<int>(window.reboots),
        run_errors.empty() ? "none" : absl::StrJoin(run_errors, "; "));
    const Spread reaction = SpreadOf(probes.reactions);
    const Spread grant = SpreadOf(probes.grants);
    std::vector<std::string> each;
    for (double r : probes.reactions) each.push_back(Ms(r));
    std::cout << absl::StrFormat(
        "  reaction, sentinel -> grant (ReportFacts, then AcquireLease; no other lease active): "
        "%d of %d probes granted%s%s%s\n",
        static_cast<int>(reaction.count), absl::GetFlag(FLAGS_probes),
        reaction.count == 0
            ? ""
            : absl::StrFormat(", median %s ms, max %s ms [%s]; of which AcquireLease -> grant: "
                              "median %s ms",
                              Ms(reaction.p50), Ms(reaction.max), absl::StrJoin(each, " "),
                              Ms(grant.p50)),
        probes.failures, settled ? "" : " (leases were still active before the probes)");
    if (!drained) std::cout << "  (calls or streams still open at exit)\n";

    const Spread& report = spreads[kReportFacts];
    const Spread& acquire = spreads[kAcquireLease];
    std::cout << absl::StrFormat(
        "FLEET_LOAD run=%s agents=%d window_s=%.0f coordinator_cpu_pct=%.1f rss_mb=%.1f "
        "rss_max_mb=%.1f hwm_mb=%.1f threads=%d threads_max=%d report_n=%d report_ms=%s "
        "acquire_n=%d acquire_ms=%s calls_per_s=%.1f errors=%s reboots=%d reaction_n=%d "
        "reaction_ms=%s grant_ms=%s settled=%d generator_cpu_pct=%.1f coordinator_gone=%d\n",
        label_, fleet_.options.agents, window.seconds, coordinator_cpu, after.rss_kb / mb,
        window.max_rss_kb / mb, after.hwm_kb / mb, static_cast<int>(after.threads),
        static_cast<int>(window.max_threads), static_cast<int>(report.count), Triple(report),
        static_cast<int>(acquire.count), Triple(acquire), calls_per_second,
        ErrorsText(window_errors), static_cast<int>(window.reboots),
        static_cast<int>(reaction.count),
        reaction.count == 0 ? "-" : absl::StrCat(Ms(reaction.p50), "/", Ms(reaction.max)),
        grant.count == 0 ? "-" : absl::StrCat(Ms(grant.p50), "/", Ms(grant.max)), settled ? 1 : 0,
        self_cpu, coordinator_gone_ ? 1 : 0);
    std::cout.flush();
  }

  Fleet fleet_;
  const std::string label_;
  const std::string pid_;
  int rebooters_ = 0;
  std::vector<std::unique_ptr<SimulatedAgent>> agents_;
  SteadyTime begin_;
  SteadyTime window_start_;
  SteadyTime window_end_;
  bool coordinator_gone_ = false;
};

}  // namespace
}  // namespace tended::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tended-fleet-load --address HOST:PORT --agents N [--coordinator_pid PID] "
      "[--identities FILE] [--label cold]");
  absl::ParseCommandLine(argc, argv);
  tended::bench::Options options;
  options.address = absl::GetFlag(FLAGS_address);
  options.agents = absl::GetFlag(FLAGS_agents);
  options.report_interval = absl::GetFlag(FLAGS_report_interval);
  options.acquire_period = absl::GetFlag(FLAGS_acquire_period);
  options.reboot_delay = absl::GetFlag(FLAGS_reboot_delay);
  options.rearm_after = absl::GetFlag(FLAGS_rearm_after);
  options.call_timeout = absl::GetFlag(FLAGS_call_timeout);
  if (options.address.empty() || options.agents < 1 || absl::GetFlag(FLAGS_connect_rate) <= 0 ||
      options.report_interval <= absl::ZeroDuration()) {
    std::cerr << "tended-fleet-load: --address, --agents >= 1, --connect_rate > 0 and a "
                 "positive --report_interval are required\n";
    return 2;
  }
  const int pid = absl::GetFlag(FLAGS_coordinator_pid);
  tended::bench::Benchmark benchmark(options, absl::GetFlag(FLAGS_label),
                                     pid > 0 ? absl::StrCat(pid) : "");
  return benchmark.Run();
}
