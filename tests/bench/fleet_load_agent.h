// The simulated agents of tended-fleet-load (tests/bench/fleet_load.cc): an event loop that
// owns every agent's state, the calls' statistics, and SimulatedAgent, which talks to a real
// coordinator over its own gRPC connection with the callback API and runs the lease flow a
// tended-agent runs. Every SimulatedAgent method runs on the loop thread.
#ifndef TENDED_TESTS_BENCH_FLEET_LOAD_AGENT_H_
#define TENDED_TESTS_BENCH_FLEET_LOAD_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "tended/v1/node_service.grpc.pb.h"

namespace tended::bench {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using tended::v1::Lease;
using tended::v1::NodeService;

inline double MillisSince(SteadyTime start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

inline SteadyTime SteadyAfter(absl::Duration delay) {
  return SteadyClock::now() + absl::ToChronoNanoseconds(delay);
}

// Runs tasks and timers on one thread, in time order (posted tasks in posting order).
class EventLoop {
 public:
  EventLoop() : thread_([this] { Run(); }) {}
  ~EventLoop() { Stop(); }

  void Post(std::function<void()> task) { At(SteadyTime::min(), std::move(task)); }

  void At(SteadyTime when, std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool earliest = timers_.empty() || when < timers_.begin()->first.first;
    timers_.emplace(std::make_pair(when, next_sequence_++), std::move(task));
    if (earliest) wake_.notify_one();
  }

  // Runs `task` on the loop and waits for it (at most `timeout`); false on timeout.
  bool RunAndWait(std::function<void()> task, std::chrono::milliseconds timeout) {
    auto done = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
    auto finished = std::make_shared<bool>(false);
    Post([task = std::move(task), done, finished] {
      task();
      std::lock_guard<std::mutex> lock(done->first);
      *finished = true;
      done->second.notify_all();
    });
    std::unique_lock<std::mutex> lock(done->first);
    return done->second.wait_for(lock, timeout, [&] { return *finished; });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (timers_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto first = timers_.begin();
      if (first->first.first > SteadyClock::now()) {
        wake_.wait_until(lock, first->first.first);
        continue;
      }
      std::function<void()> task = std::move(first->second);
      timers_.erase(first);
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t next_sequence_ = 0;
  std::map<std::pair<SteadyTime, uint64_t>, std::function<void()>> timers_;
  std::thread thread_;
};

enum Method {
  kReportFacts,
  kAcquireLease,
  kRenewLease,
  kBeginDisruption,
  kReleaseLease,
  kCancelLeaseRequest,
  kWatchDirectives,
  kMethodCount,
};

inline constexpr const char* kMethodNames[kMethodCount] = {
    "ReportFacts",  "AcquireLease",       "RenewLease",      "BeginDisruption",
    "ReleaseLease", "CancelLeaseRequest", "WatchDirectives",
};

// "DEADLINE_EXCEEDED" for grpc::StatusCode::DEADLINE_EXCEEDED.
std::string CodeName(grpc::StatusCode code);

struct MethodFigures {
  std::vector<double> latencies_ms;  // Calls that ended in the window, whatever their status.
  uint64_t calls = 0;
  std::map<grpc::StatusCode, uint64_t> errors;
};

// Call outcomes: latencies and errors inside the measuring window, errors over the whole run.
class CallStats {
 public:
  void Record(Method method, double millis, grpc::StatusCode code) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (code != grpc::StatusCode::OK) ++run_errors_[method][code];
    if (!window_open_) return;
    MethodFigures& figures = window_[method];
    ++figures.calls;
    if (method != kWatchDirectives) figures.latencies_ms.push_back(millis);
    if (code != grpc::StatusCode::OK) ++figures.errors[code];
  }

  void SetWindowOpen(bool open) {
    std::lock_guard<std::mutex> lock(mutex_);
    window_open_ = open;
  }

  std::vector<MethodFigures> Window() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::vector<MethodFigures>(window_, window_ + kMethodCount);
  }

  std::map<Method, std::map<grpc::StatusCode, uint64_t>> RunErrors() {
    std::lock_guard<std::mutex> lock(mutex_);
    return run_errors_;
  }

 private:
  std::mutex mutex_;
  bool window_open_ = false;
  MethodFigures window_[kMethodCount];
  std::map<Method, std::map<grpc::StatusCode, uint64_t>> run_errors_;
};

struct Options {
  std::string address;
  int agents = 0;
  absl::Duration report_interval;
  absl::Duration acquire_period;
  absl::Duration reboot_delay;
  absl::Duration rearm_after;
  absl::Duration call_timeout;
};

// Who a simulated agent is; kept across a coordinator restart (--identities).
struct Identity {
  std::string node_name;
  std::string instance_id;
  std::string boot_id;
  int64_t boot_time = 0;  // Unix seconds.
  uint64_t max_fencing_token = 0;
};

enum class Role { kPlain, kRebooter, kProbe };

class SimulatedAgent;

// What the agents share: options, the loop, the statistics, counters the main thread reads.
struct Fleet {
  Options options;
  EventLoop loop;
  CallStats stats;
  std::mt19937_64 random;  // Loop thread only.
  std::atomic<int> registered{0};
  std::atomic<int> streams_open{0};
  std::atomic<int> calls_in_flight{0};
  std::atomic<int> leases_held{0};
  std::atomic<uint64_t> reboots_verified{0};
  std::atomic<bool> quiescing{false};
  std::atomic<bool> stopping{false};

  std::string NewId() {
    std::uniform_int_distribution<uint64_t> any;
    return absl::StrFormat("%016x%016x", any(random), any(random));
  }
  double Uniform(double low, double high) {
    return std::uniform_real_distribution<double>(low, high)(random);
  }
};

// One WatchDirectives stream; deleted on the loop thread after OnDone.
class DirectiveStream final : public grpc::ClientReadReactor<tended::v1::Directive> {
 public:
  DirectiveStream(Fleet& fleet, SimulatedAgent* agent) : fleet_(fleet), agent_(agent) {}

  void Start(NodeService::Stub& stub, tended::v1::WatchDirectivesRequest request) {
    request_ = std::move(request);
    stub.async()->WatchDirectives(&context_, &request_, this);
    StartRead(&directive_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  SteadyTime started() const { return started_; }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  Fleet& fleet_;
  SimulatedAgent* agent_;
  grpc::ClientContext context_;
  tended::v1::WatchDirectivesRequest request_;
  tended::v1::Directive directive_;
  SteadyTime started_ = SteadyClock::now();
};

// A simulated tended-agent. Every method runs on the loop thread.
//
// It reports facts every report interval (the coordinator's, when shorter), the first time
// on Start() and next at a random point of the interval, and keeps a WatchDirectives stream
// open from its first good report (reopened with a backoff when it ends). With the sentinel
// it reports reboot_required, asks for the reboot lease and asks again every acquire period
// while it waits; granted (by the answer or a lease_granted directive) it renews at a third
// of the renew deadline, calls BeginDisruption("reboot"), takes a new boot id after the
// reboot delay and reports it; the lease ends with a lease_revoked directive or a
// FAILED_PRECONDITION on renewal (renewed at the report interval once rebooted).
class SimulatedAgent {
 public:
  SimulatedAgent(Fleet& fleet, Identity identity, Role role)
      : fleet_(fleet), identity_(std::move(identity)), role_(role) {}

  const Identity& identity() const { return identity_; }
  Role role() const { return role_; }
  // No lease held, asked for or on its way.
  bool Settled() const { return step_ == Step::kNone && !sentinel_; }

  // Opens the connection and sends the first report.
  void Start();
  // Ends the directive stream (for the shutdown; nothing is reopened once fleet.stopping).
  void Stop() {
    if (stream_ != nullptr) stream_->Cancel();
  }
  // The reboot-required sentinel appears: report it, then ask for the reboot lease.
  void SentinelAppears();
  // The sentinel goes away: withdraw a waiting request. Leases already granted run on.
  void Quiesce();

  // The probe's last sentinel-to-grant time, once granted.
  std::optional<double> reaction_ms() const { return reaction_ms_; }
  // Of which from the AcquireLease call to the grant.
  std::optional<double> grant_ms() const { return grant_ms_; }
  // Why the probe's last AcquireLease did not grant (the blocking gates, or the error).
  const std::string& probe_note() const { return probe_note_; }

  // From the directive stream, on the loop thread.
  void OnDirective(const tended::v1::Directive& directive);
  void OnStreamDone(DirectiveStream* stream, const grpc::Status& status);

 private:
  enum class Step { kNone, kWaiting, kHolding, kRebooting, kRebooted };

  // One unary call through the callback API; `done` runs on the loop thread.
  template <typename Response, typename Request, typename StartFn, typename DoneFn>
  void Call(Method method, const Request& request, StartFn start, DoneFn done);
  void PeriodicReport();
  absl::Duration report_interval() const;
  // `then` (may be empty) gets whether the report went through.
  void SendReport(std::function<void(bool)> then);
  void OpenStream();
  void Acquire();
  void OnLease(const Lease& lease);
  void Begin();
  void Reboot(uint64_t generation);
  void ScheduleRenew();
  void Renew();
  void Release();
  void LeaseEnded();

  Fleet& fleet_;
  Identity identity_;
  const Role role_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<NodeService::Stub> stub_;
  DirectiveStream* stream_ = nullptr;
  absl::Duration stream_backoff_ = absl::Seconds(1);
  absl::Duration report_backoff_ = absl::Seconds(1);
  absl::Duration coordinator_interval_ = absl::ZeroDuration();
  std::string state_id_;
  bool registered_ = false;
  bool sentinel_ = false;
  SteadyTime sentinel_time_;
  SteadyTime acquire_time_;
  std::optional<double> reaction_ms_;
  std::optional<double> grant_ms_;
  std::string probe_note_;
  Step step_ = Step::kNone;
  std::optional<Lease> lease_;
  uint64_t lease_generation_ = 0;
  uint64_t acquire_generation_ = 0;
  bool begin_in_flight_ = false;
};

}  // namespace tended::bench

#endif  // TENDED_TESTS_BENCH_FLEET_LOAD_AGENT_H_
