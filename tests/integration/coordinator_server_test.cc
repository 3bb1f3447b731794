// The coordinator's gRPC server over real loopback connections, played by raw clients:
// directives are pushed to a waiting agent's stream the moment a lease is granted (no
// polling, no second ask), a second server on a port in use fails to start (no
// SO_REUSEPORT), oversized requests are refused by gRPC or by the request limits, and a
// full work pool refuses calls at once with RESOURCE_EXHAUSTED.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended {
namespace {

using testing::CallContext;
using ::testing::HasSubstr;
using testing::ServedCoordinator;
using testing::WireAgent;

constexpr absl::Duration kSettle = absl::Seconds(60);

bool WaitFor(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

// One WatchDirectives stream read on its own thread; remembers when the first granted
// lease arrived.
class DirectiveReader {
 public:
  DirectiveReader(tended::v1::NodeService::Stub& stub, const WireAgent& agent) {
    tended::v1::WatchDirectivesRequest request;
    request.set_node_name(agent.node_name());
    request.set_agent_instance_id(agent.instance_id());
    stream_ = stub.WatchDirectives(&context_, request);
    thread_ = std::thread([this] {
      tended::v1::Directive directive;
      while (stream_->Read(&directive)) {
        if (!directive.has_lease_granted()) continue;
        absl::MutexLock lock(&mutex_);
        if (!granted_.has_value()) {
          granted_ = directive.lease_granted();
          granted_at_ = absl::Now();
        }
      }
    });
  }
  ~DirectiveReader() {
    context_.TryCancel();
    thread_.join();
    (void)stream_->Finish();
  }

  std::optional<tended::v1::Lease> granted() const {
    absl::MutexLock lock(&mutex_);
    return granted_;
  }
  absl::Time granted_at() const {
    absl::MutexLock lock(&mutex_);
    return granted_at_;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<tended::v1::Directive>> stream_;
  mutable absl::Mutex mutex_;
  std::optional<tended::v1::Lease> granted_ ABSL_GUARDED_BY(mutex_);
  absl::Time granted_at_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  std::thread thread_;
};

std::string GatesText(const tended::v1::ExplainGatesResponse& response) {
  std::string text;
  for (const auto& explanation : response.explanations()) {
    for (const auto& gate : explanation.gates()) {
      if (gate.verdict() != tended::v1::GATE_VERDICT_PASS) {
        absl::StrAppend(&text, gate.gate(), ": ", gate.reason(), "; ");
      }
    }
  }
  return text;
}

TEST(CoordinatorServerTest, AGrantIsPushedToTheWaitingAgentsStreamWithoutAnotherAsk) {
  testing::TempDir dir;
  coordinator::CoordinatorConfig config =
      testing::LoopbackCoordinatorConfig(dir.Path("state"), absl::ZeroDuration());
  config.leases[tended::v1::LEASE_KIND_REBOOT].concurrency = 3;
  auto served = ServedCoordinator::Start(config);
  ASSERT_TRUE(served.ok()) << served.status();
  auto channel = (*served)->NewChannel();
  auto node_stub = tended::v1::NodeService::NewStub(channel);
  auto ops = tended::v1::OperatorService::NewStub(channel);

  tended::v1::HaltRequest halt;
  halt.set_reason("coordinator_server_test: hold every grant");
  tended::v1::HaltResponse halted;
  ASSERT_TRUE(ops->Halt(CallContext().get(), halt, &halted).ok());

  std::vector<std::unique_ptr<WireAgent>> agents;
  testing::FleetHeartbeat heartbeat(absl::Milliseconds(200));
  for (const char* name : {"node-a", "node-b", "node-c"}) {
    agents.push_back(std::make_unique<WireAgent>(name, absl::StrCat("agent-", name), "boot-1"));
    agents.back()->SetChannel(channel);
    agents.back()->SetRebootRequired(true);
    ASSERT_TRUE(agents.back()->Report().ok());
    heartbeat.Add(agents.back().get());
  }
  std::vector<std::unique_ptr<DirectiveReader>> readers;
  for (auto& agent : agents)
    readers.push_back(std::make_unique<DirectiveReader>(*node_stub, *agent));
  ASSERT_TRUE(WaitFor([&] { return (*served)->core().stats().directive_streams == 3; }, kSettle));

  // Each agent asks once and is told to wait.
  for (auto& agent : agents) {
    tended::v1::AcquireLeaseResponse response;
    ASSERT_TRUE(agent->Acquire(tended::v1::LEASE_KIND_REBOOT, "kernel update", &response).ok());
    EXPECT_FALSE(response.has_lease() && !response.lease().id().empty());
  }
  // Until only the halt blocks (the recovery wait after the empty start has ended).
  std::string blocking;
  ASSERT_TRUE(WaitFor(
      [&] {
        tended::v1::ExplainGatesRequest request;
        request.set_kind(tended::v1::LEASE_KIND_REBOOT);
        tended::v1::ExplainGatesResponse response;
        if (!ops->ExplainGates(CallContext().get(), request, &response).ok()) return false;
        blocking = GatesText(response);
        return blocking.rfind("halt: ", 0) == 0 && blocking.find("; ") == blocking.size() - 2;
      },
      kSettle))
      << blocking;

  tended::v1::ResumeResponse resumed;
  ASSERT_TRUE(ops->Resume(CallContext().get(), tended::v1::ResumeRequest(), &resumed).ok());
  const absl::Time resumed_at = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& reader : readers) {
          if (!reader->granted().has_value()) return false;
        }
        return true;
      },
      absl::Seconds(10)))
      << "not every waiting agent's stream got its grant";
  for (size_t i = 0; i < readers.size(); ++i) {
    const absl::Duration latency = readers[i]->granted_at() - resumed_at;
    std::cout << agents[i]->node_name() << ": grant on the stream " << absl::FormatDuration(latency)
              << " after Resume answered\n";
    EXPECT_EQ(readers[i]->granted()->node_name(), agents[i]->node_name());
    // Pushed as the grant became durable: well before a 500 ms poll would see it.
    EXPECT_LT(latency, absl::Milliseconds(250)) << agents[i]->node_name();
  }
}

TEST(CoordinatorServerTest, ASecondServerOnAPortInUseFailsToStart) {
  testing::TempDir dir;
  auto first = ServedCoordinator::Start(
      testing::LoopbackCoordinatorConfig(dir.Path("first"), absl::ZeroDuration()));
  ASSERT_TRUE(first.ok()) << first.status();
  ServedCoordinator::Options options;
  options.port = (*first)->port();
  auto second = ServedCoordinator::Start(
      testing::LoopbackCoordinatorConfig(dir.Path("second"), absl::ZeroDuration()), options);
  ASSERT_FALSE(second.ok()) << "two servers listen on port " << options.port;
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen"));

  // The first still serves.
  auto ops = tended::v1::OperatorService::NewStub((*first)->NewChannel());
  tended::v1::ListNodesResponse nodes;
  EXPECT_TRUE(ops->ListNodes(CallContext().get(), tended::v1::ListNodesRequest(), &nodes).ok());
}

TEST(CoordinatorServerTest, OversizedRequestsAreRefused) {
  testing::TempDir dir;
  ServedCoordinator::Options options;
  options.server.max_message_bytes = 64 * 1024;
  auto served = ServedCoordinator::Start(
      testing::LoopbackCoordinatorConfig(dir.Path("state"), absl::ZeroDuration()), options);
  ASSERT_TRUE(served.ok()) << served.status();
  auto channel = (*served)->NewChannel();
  WireAgent agent("node-a", "agent-a", "boot-1");
  agent.SetChannel(channel);

  // Larger than the server takes: gRPC refuses it before the coordinator sees it.
  tended::v1::ReportFactsRequest huge = agent.FactsRequest();
  for (int i = 0; i < 100; ++i) {
    huge.mutable_facts()->add_reboot_required_reasons(std::string(1000, 'x'));
  }
  grpc::Status refused = agent.SendFacts(huge);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();

  // Small enough for gRPC, beyond the request limits.
  tended::v1::ReportFactsRequest long_boot_id = agent.FactsRequest();
  long_boot_id.mutable_facts()->set_boot_id(std::string(10000, 'b'));
  grpc::Status invalid = agent.SendFacts(long_boot_id);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << invalid.error_message();
  EXPECT_THAT(invalid.error_message(), HasSubstr("facts.boot_id"));

  tended::v1::ReportFactsRequest many_reasons = agent.FactsRequest();
  for (int i = 0; i < 101; ++i) many_reasons.mutable_facts()->add_reboot_required_reasons("x");
  invalid = agent.SendFacts(many_reasons);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << invalid.error_message();
  EXPECT_THAT(invalid.error_message(), HasSubstr("facts.reboot_required_reasons"));

  // Nothing of it was recorded; an ordinary report still is.
  auto ops = tended::v1::OperatorService::NewStub(channel);
  tended::v1::ListNodesResponse nodes;
  ASSERT_TRUE(ops->ListNodes(CallContext().get(), tended::v1::ListNodesRequest(), &nodes).ok());
  EXPECT_EQ(nodes.nodes_size(), 0);
  EXPECT_TRUE(agent.Report().ok());
  ASSERT_TRUE(ops->ListNodes(CallContext().get(), tended::v1::ListNodesRequest(), &nodes).ok());
  EXPECT_EQ(nodes.nodes_size(), 1);
}

// Blocks every change of the coordinator while engaged: the alert snapshot is read under
// the coordinator's lock at the start of each change.
class ChangeBlocker {
 public:
  std::optional<coordinator::AlertSnapshot> Alerts() {
    std::unique_lock<std::mutex> lock(mutex_);
    released_.wait(lock, [this] { return !engaged_; });
    return std::nullopt;
  }
  void Engage() {
    std::lock_guard<std::mutex> lock(mutex_);
    engaged_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      engaged_ = false;
    }
    released_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool engaged_ = false;
};

TEST(CoordinatorServerTest, AFullWorkPoolRefusesCallsAtOnce) {
  testing::TempDir dir;
  ChangeBlocker blocker;
  ServedCoordinator::Options options;
  options.server.pool_threads = 1;
  options.server.max_queued_calls = 1;
  options.alerts = [&blocker] { return blocker.Alerts(); };
  auto served = ServedCoordinator::Start(
      testing::LoopbackCoordinatorConfig(dir.Path("state"), absl::ZeroDuration()), options);
  ASSERT_TRUE(served.ok()) << served.status();
  // Before the server is stopped, whatever happens below.
  auto release = absl::MakeCleanup([&blocker] { blocker.Release(); });
  auto ops = tended::v1::OperatorService::NewStub((*served)->NewChannel());

  // Halt calls that cannot finish while the blocker is engaged: one runs on the pool's
  // only thread, one waits in its queue; the pool takes no more than those two.
  blocker.Engage();
  struct Call {
    grpc::ClientContext context;
    tended::v1::HaltRequest request;
    tended::v1::HaltResponse response;
    grpc::Status status;
    std::atomic<bool> done{false};
  };
  constexpr int kCalls = 4;
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call& call = *calls.back();
    call.context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    call.request.set_reason(absl::StrCat("halt ", i));
    ops->async()->Halt(&call.context, &call.request, &call.response, [&call](grpc::Status status) {
      call.status = std::move(status);
      call.done.store(true);
    });
  }
  // The calls beyond the pool's room are answered while the others are still blocked.
  ASSERT_TRUE(WaitFor(
      [&] {
        int done = 0;
        for (auto& call : calls) done += call->done.load() ? 1 : 0;
        return done >= kCalls - 2;
      },
      kSettle));
  int refused = 0;
  for (auto& call : calls) {
    if (!call->done.load()) continue;
    EXPECT_EQ(call->status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << call->status.error_message();
    EXPECT_THAT(call->status.error_message(), HasSubstr("too many calls"));
    ++refused;
  }
  EXPECT_GE(refused, kCalls - 2);

  blocker.Release();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& call : calls) {
          if (!call->done.load()) return false;
        }
        return true;
      },
      kSettle));
  int succeeded = 0;
  for (auto& call : calls) succeeded += call->status.ok() ? 1 : 0;
  EXPECT_GE(succeeded, 1);
  EXPECT_LE(succeeded, 2);
  // With room again, calls go through.
  tended::v1::ResumeResponse resumed;
  EXPECT_TRUE(ops->Resume(CallContext().get(), tended::v1::ResumeRequest(), &resumed).ok());
}

}  // namespace
}  // namespace tended
