// tended-fleet-load: simulates N agents against a running tended-coordinator over real gRPC.
// Each simulated agent has its own connection and WatchDirectives stream and reports facts
// every report interval; a share of them carry the reboot-required sentinel and run the
// lease flow a real agent runs (AcquireLease, RenewLease, BeginDisruption, a new boot id,
// verification). Over a measuring window after a ramp-up it prints the coordinator's CPU,
// memory and threads, the latencies and errors of the calls, and, at the end, the time from
// "sentinel appears" to "grant received" for a probe agent while no other lease is active.
// tests/bench/fleet_load.sh starts the coordinator and runs this program; see
// docs/performance.md.
//
// All agent state lives on one event-loop thread; gRPC's callback API carries the calls, so
// 10,000 agents need no thread of their own.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
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
#include "common/proto_time.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"

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

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;
using tended::v1::Lease;
using tended::v1::NodeService;

double MillisSince(SteadyTime start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

SteadyTime SteadyAfter(absl::Duration delay) {
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

constexpr const char* kMethodNames[kMethodCount] = {
    "ReportFacts",  "AcquireLease",       "RenewLease",      "BeginDisruption",
    "ReleaseLease", "CancelLeaseRequest", "WatchDirectives",
};

std::string CodeName(grpc::StatusCode code) {
  static const std::map<grpc::StatusCode, std::string> kNames = {
      {grpc::StatusCode::CANCELLED, "CANCELLED"},
      {grpc::StatusCode::UNKNOWN, "UNKNOWN"},
      {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
      {grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
      {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
      {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
      {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
      {grpc::StatusCode::ABORTED, "ABORTED"},
      {grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
      {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
      {grpc::StatusCode::INTERNAL, "INTERNAL"},
      {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
      {grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
      {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"},
  };
  auto it = kNames.find(code);
  return it == kNames.end() ? absl::StrCat("CODE_", static_cast<int>(code)) : it->second;
}

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
class SimulatedAgent {
 public:
  SimulatedAgent(Fleet& fleet, Identity identity, Role role)
      : fleet_(fleet), identity_(std::move(identity)), role_(role) {}

  const Identity& identity() const { return identity_; }
  Role role() const { return role_; }
  // No lease held, asked for or on its way.
  bool Settled() const { return step_ == Step::kNone && !sentinel_; }

  void Start() {
    grpc::ChannelArguments arguments;
    // Its own connection, as separate agents have.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    channel_ = grpc::CreateCustomChannel(fleet_.options.address, grpc::InsecureChannelCredentials(),
                                         arguments);
    stub_ = NodeService::NewStub(channel_);
    PeriodicReport();
  }

  void Stop() {
    if (stream_ != nullptr) stream_->Cancel();
  }

  // The reboot-required sentinel appears: report it, then ask for the reboot lease.
  void SentinelAppears() {
    if (fleet_.stopping || step_ != Step::kNone) return;
    if (role_ == Role::kRebooter && fleet_.quiescing) return;
    sentinel_ = true;
    sentinel_time_ = SteadyClock::now();
    reaction_ms_.reset();
    grant_ms_.reset();
    SendReport([this](bool) { Acquire(); });
  }

  // The sentinel goes away: withdraw a waiting request. Leases already granted run on.
  void Quiesce() {
    if (step_ != Step::kWaiting && !(step_ == Step::kNone && sentinel_)) return;
    sentinel_ = false;
    step_ = Step::kNone;
    ++acquire_generation_;
    tended::v1::CancelLeaseRequestRequest cancel;
    cancel.set_node_name(identity_.node_name);
    cancel.set_kind(tended::v1::LEASE_KIND_REBOOT);
    cancel.set_agent_instance_id(identity_.instance_id);
    Call<tended::v1::CancelLeaseRequestResponse>(
        kCancelLeaseRequest, cancel,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->CancelLeaseRequest(context, request, response, std::move(done));
        },
        [](const grpc::Status&, tended::v1::CancelLeaseRequestResponse&) {});
    SendReport(nullptr);
  }

  // The probe's last sentinel-to-grant time, once granted.
  std::optional<double> reaction_ms() const { return reaction_ms_; }
  // Of which from the AcquireLease call to the grant.
  std::optional<double> grant_ms() const { return grant_ms_; }
  const std::string& probe_note() const { return probe_note_; }

  void OnDirective(const tended::v1::Directive& directive) {
    stream_backoff_ = absl::Seconds(1);
    if (directive.has_lease_granted()) {
      OnLease(directive.lease_granted());
    } else if (directive.has_lease_revoked()) {
      if (lease_.has_value() && lease_->id() == directive.lease_revoked().id()) {
        LeaseEnded();
      }
    } else if (directive.has_report_now()) {
      SendReport(nullptr);
    }
  }

  void OnStreamDone(DirectiveStream* stream, const grpc::Status& status) {
    const bool lived_long = SteadyClock::now() - stream->started() > std::chrono::seconds(10);
    delete stream;
    stream_ = nullptr;
    --fleet_.streams_open;
    if (fleet_.stopping) return;
    fleet_.stats.Record(kWatchDirectives, 0, status.error_code());
    if (lived_long) stream_backoff_ = absl::Seconds(1);
    fleet_.loop.At(SteadyAfter(stream_backoff_), [this] { OpenStream(); });
    stream_backoff_ = std::min(stream_backoff_ * 2, absl::Seconds(30));
  }

 private:
  enum class Step { kNone, kWaiting, kHolding, kRebooting, kRebooted };

  // One unary call through the callback API; `done` runs on the loop thread.
  template <typename Response, typename Request, typename StartFn, typename DoneFn>
  void Call(Method method, const Request& request, StartFn start, DoneFn done) {
    struct Pending {
      grpc::ClientContext context;
      Request request;
      Response response;
      SteadyTime start;
    };
    auto pending = std::make_shared<Pending>();
    pending->request = request;
    pending->context.set_deadline(std::chrono::system_clock::now() +
                                  absl::ToChronoNanoseconds(fleet_.options.call_timeout));
    pending->start = SteadyClock::now();
    ++fleet_.calls_in_flight;
    start(stub_.get(), &pending->context, &pending->request, &pending->response,
          [this, method, pending, done](grpc::Status status) {
            fleet_.stats.Record(method, MillisSince(pending->start), status.error_code());
            fleet_.loop.Post([this, pending, done, status] {
              --fleet_.calls_in_flight;
              done(status, pending->response);
            });
          });
  }

  void PeriodicReport() {
    if (fleet_.stopping) return;
    SendReport([this](bool ok) {
      absl::Duration next = report_interval();
      if (!ok) {
        next = report_backoff_;
        report_backoff_ = std::min(report_backoff_ * 2, absl::Seconds(30));
      } else {
        report_backoff_ = absl::Seconds(1);
        if (!registered_) {
          registered_ = true;
          ++fleet_.registered;
          OpenStream();
          // Spread the fleet's reports over the interval.
          next = report_interval() * fleet_.Uniform(0, 1);
          if (role_ == Role::kRebooter) {
            fleet_.loop.At(SteadyAfter(report_interval() * fleet_.Uniform(0, 1)),
                           [this] { SentinelAppears(); });
          }
        }
      }
      fleet_.loop.At(SteadyAfter(next), [this] { PeriodicReport(); });
    });
  }

  absl::Duration report_interval() const {
    return coordinator_interval_ > absl::ZeroDuration()
               ? std::min(fleet_.options.report_interval, coordinator_interval_)
               : fleet_.options.report_interval;
  }

  void SendReport(std::function<void(bool)> then) {
    if (fleet_.stopping) return;
    tended::v1::ReportFactsRequest request;
    tended::v1::NodeFacts* facts = request.mutable_facts();
    facts->set_node_name(identity_.node_name);
    facts->set_boot_id(identity_.boot_id);
    *facts->mutable_boot_time() = ToProtoTimestamp(absl::FromUnixSeconds(identity_.boot_time));
    facts->set_kernel_release("6.1.0-28-amd64");
    facts->set_reboot_required(sentinel_);
    if (sentinel_) facts->add_reboot_required_reasons("linux-image-6.1.0-28-amd64");
    facts->set_kubelet_version("v1.30.4");
    facts->set_agent_version("fleet-load");
    request.set_agent_instance_id(identity_.instance_id);
    if (lease_.has_value()) *request.mutable_held_lease() = *lease_;
    request.set_max_fencing_token_seen(identity_.max_fencing_token);
    request.set_coordinator_state_id(state_id_);
    Call<tended::v1::ReportFactsResponse>(
        kReportFacts, request,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->ReportFacts(context, request, response, std::move(done));
        },
        [this, then](const grpc::Status& status, tended::v1::ReportFactsResponse& response) {
          if (status.ok()) {
            if (!response.state_id().empty()) state_id_ = response.state_id();
            if (response.has_report_interval()) {
              coordinator_interval_ = FromProtoDuration(response.report_interval());
            }
          }
          if (then) then(status.ok());
        });
  }

  void OpenStream() {
    if (fleet_.stopping || stream_ != nullptr) return;
    stream_ = new DirectiveStream(fleet_, this);
    ++fleet_.streams_open;
    tended::v1::WatchDirectivesRequest request;
    request.set_node_name(identity_.node_name);
    request.set_agent_instance_id(identity_.instance_id);
    stream_->Start(*stub_, std::move(request));
  }

  void Acquire() {
    if (fleet_.stopping || !sentinel_ || step_ > Step::kWaiting) return;
    step_ = Step::kWaiting;
    const uint64_t generation = ++acquire_generation_;
    acquire_time_ = SteadyClock::now();
    tended::v1::AcquireLeaseRequest request;
    request.set_node_name(identity_.node_name);
    request.set_kind(tended::v1::LEASE_KIND_REBOOT);
    request.set_reason("reboot-required: linux-image-6.1.0-28-amd64");
    request.set_agent_instance_id(identity_.instance_id);
    Call<tended::v1::AcquireLeaseResponse>(
        kAcquireLease, request,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->AcquireLease(context, request, response, std::move(done));
        },
        [this, generation](const grpc::Status& status, tended::v1::AcquireLeaseResponse& answer) {
          if (status.ok() && answer.has_lease()) {
            OnLease(answer.lease());
            return;
          }
          if (role_ == Role::kProbe) {
            std::vector<std::string> blocking;
            for (const auto& gate : answer.gates()) {
              if (gate.verdict() == tended::v1::GATE_VERDICT_BLOCK) {
                blocking.push_back(absl::StrCat(gate.gate(), ": ", gate.reason()));
              }
            }
            probe_note_ = status.ok() ? absl::StrJoin(blocking, "; ")
                                      : absl::StrCat(CodeName(status.error_code()), ": ",
                                                     status.error_message());
          }
          if (generation != acquire_generation_ || step_ != Step::kWaiting) return;
          fleet_.loop.At(SteadyAfter(fleet_.options.acquire_period), [this, generation] {
            if (generation == acquire_generation_ && step_ == Step::kWaiting) Acquire();
          });
        });
  }

  void OnLease(const Lease& lease) {
    if (lease.kind() != tended::v1::LEASE_KIND_REBOOT ||
        lease.phase() == tended::v1::LEASE_PHASE_RELEASED) {
      return;
    }
    identity_.max_fencing_token = std::max(identity_.max_fencing_token, lease.fencing_token());
    if (lease_.has_value() && lease_->id() == lease.id()) {
      // The same lease again (answer and directive, or the end of a drain).
      lease_->set_preparing(lease.preparing());
      if (step_ == Step::kHolding && !lease.preparing()) Begin();
      return;
    }
    if (lease_.has_value()) return;  // One lease at a time.
    lease_ = lease;
    ++lease_generation_;
    ++acquire_generation_;
    ++fleet_.leases_held;
    if (role_ == Role::kProbe && sentinel_ && !reaction_ms_.has_value()) {
      reaction_ms_ = MillisSince(sentinel_time_);
      grant_ms_ = MillisSince(acquire_time_);
    }
    ScheduleRenew();
    if (lease.phase() != tended::v1::LEASE_PHASE_GRANTED) {
      // Held from before (a coordinator restart): rebooted already, or reboot now.
      if (lease.boot_id_at_grant() != identity_.boot_id) {
        step_ = Step::kRebooted;
      } else {
        step_ = Step::kRebooting;
        fleet_.loop.At(SteadyAfter(fleet_.options.reboot_delay),
                       [this, generation = lease_generation_] { Reboot(generation); });
      }
      return;
    }
    if (!sentinel_) {
      Release();
      return;
    }
    step_ = Step::kHolding;
    if (!lease.preparing()) Begin();
  }

  void Begin() {
    if (begin_in_flight_ || !lease_.has_value() || step_ != Step::kHolding) return;
    begin_in_flight_ = true;
    tended::v1::BeginDisruptionRequest request;
    request.set_lease_id(lease_->id());
    request.set_fencing_token(lease_->fencing_token());
    request.set_step("reboot");
    request.set_agent_instance_id(identity_.instance_id);
    Call<tended::v1::BeginDisruptionResponse>(
        kBeginDisruption, request,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->BeginDisruption(context, request, response, std::move(done));
        },
        [this, generation = lease_generation_](const grpc::Status& status,
                                               tended::v1::BeginDisruptionResponse& response) {
          begin_in_flight_ = false;
          if (generation != lease_generation_ || step_ != Step::kHolding) return;
          if (status.ok()) {
            if (response.has_lease()) *lease_ = response.lease();
            step_ = Step::kRebooting;
            fleet_.loop.At(SteadyAfter(fleet_.options.reboot_delay),
                           [this, generation] { Reboot(generation); });
          } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
            LeaseEnded();  // Stale: stop. The sentinel stays, so ask again later.
          } else {
            // UNAVAILABLE: a gate blocks again after the grant; keep the lease, ask again.
            fleet_.loop.At(SteadyAfter(absl::Seconds(1)), [this, generation] {
              if (generation == lease_generation_) Begin();
            });
          }
        });
  }

  void Reboot(uint64_t generation) {
    if (generation != lease_generation_ || step_ != Step::kRebooting) return;
    identity_.boot_id = fleet_.NewId();
    identity_.boot_time = absl::ToUnixSeconds(absl::Now());
    sentinel_ = false;
    step_ = Step::kRebooted;
    SendReport(nullptr);  // The coordinator verifies the new boot and releases.
  }

  void ScheduleRenew() {
    const Lease& lease = *lease_;
    // Like the agent: a third of the renew deadline while granted; once disrupted, the
    // renewal is how the release is learnt, at the report interval.
    absl::Duration every = report_interval();
    if (lease.phase() == tended::v1::LEASE_PHASE_GRANTED && step_ != Step::kRebooted) {
      every = std::max(
          (FromProtoTimestamp(lease.expire_time()) - FromProtoTimestamp(lease.renew_time())) / 3,
          absl::Seconds(1));
    }
    fleet_.loop.At(SteadyAfter(every), [this, generation = lease_generation_] {
      if (generation == lease_generation_) Renew();
    });
  }

  void Renew() {
    if (fleet_.stopping || !lease_.has_value()) return;
    tended::v1::RenewLeaseRequest request;
    request.set_lease_id(lease_->id());
    request.set_fencing_token(lease_->fencing_token());
    request.set_agent_instance_id(identity_.instance_id);
    Call<tended::v1::RenewLeaseResponse>(
        kRenewLease, request,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->RenewLease(context, request, response, std::move(done));
        },
        [this, generation = lease_generation_](const grpc::Status& status,
                                               tended::v1::RenewLeaseResponse& response) {
          if (generation != lease_generation_) return;
          if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
              (status.ok() && response.lease().phase() == tended::v1::LEASE_PHASE_RELEASED)) {
            LeaseEnded();
            return;
          }
          if (status.ok() && response.has_lease()) {
            lease_->set_phase(response.lease().phase());
            *lease_->mutable_renew_time() = response.lease().renew_time();
            *lease_->mutable_expire_time() = response.lease().expire_time();
          }
          ScheduleRenew();
        });
  }

  void Release() {
    tended::v1::ReleaseLeaseRequest request;
    request.set_lease_id(lease_->id());
    request.set_fencing_token(lease_->fencing_token());
    request.set_reason("the reboot-required sentinel went away");
    request.set_agent_instance_id(identity_.instance_id);
    Call<tended::v1::ReleaseLeaseResponse>(
        kReleaseLease, request,
        [](NodeService::Stub* stub, grpc::ClientContext* context, const auto* request,
           auto* response, std::function<void(grpc::Status)> done) {
          stub->async()->ReleaseLease(context, request, response, std::move(done));
        },
        [this, generation = lease_generation_](const grpc::Status& status,
                                               tended::v1::ReleaseLeaseResponse&) {
          if (generation != lease_generation_) return;
          if (status.ok()) LeaseEnded();
          // Otherwise the renewals go on until the coordinator says it is gone.
        });
  }

  void LeaseEnded() {
    const bool rebooted = step_ == Step::kRebooted;
    lease_.reset();
    ++lease_generation_;
    --fleet_.leases_held;
    step_ = Step::kNone;
    if (rebooted) ++fleet_.reboots_verified;
    if (sentinel_) {
      // Lost before the reboot: ask again later (or withdraw when quiescing).
      if (fleet_.quiescing && role_ == Role::kRebooter) {
        Quiesce();
        return;
      }
      step_ = Step::kWaiting;
      const uint64_t generation = ++acquire_generation_;
      fleet_.loop.At(SteadyAfter(fleet_.options.acquire_period), [this, generation] {
        if (generation == acquire_generation_ && step_ == Step::kWaiting) Acquire();
      });
      return;
    }
    if (role_ == Role::kRebooter && rebooted && fleet_.options.rearm_after > absl::ZeroDuration()) {
      fleet_.loop.At(SteadyAfter(fleet_.options.rearm_after * fleet_.Uniform(0.5, 1.5)),
                     [this] { SentinelAppears(); });
    }
  }

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

void DirectiveStream::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows.
  fleet_.loop.Post([agent = agent_, directive = directive_] { agent->OnDirective(directive); });
  StartRead(&directive_);
}

void DirectiveStream::OnDone(const grpc::Status& status) {
  fleet_.loop.Post(
      [agent = agent_, stream = this, status] { agent->OnStreamDone(stream, status); });
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
    if (!pid_.empty()) window.coordinator_after = SampleProcess(pid_);
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
      } else {
        absl::StrAppend(&figures.failures, " probe ", i, " not granted (", note, ");");
        fleet_.loop.RunAndWait([probe] { probe->Quiesce(); }, std::chrono::seconds(30));
      }
      if (!done) absl::StrAppend(&figures.failures, " probe ", i, " not verified in time;");
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
        "%d of %d probes, median %s ms, max %s ms [%s]; of which AcquireLease -> grant: median "
        "%s ms%s%s\n",
        static_cast<int>(reaction.count), absl::GetFlag(FLAGS_probes), Ms(reaction.p50),
        Ms(reaction.max), absl::StrJoin(each, " "), Ms(grant.p50), probes.failures,
        settled ? "" : " (leases were still active before the probes)");
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
