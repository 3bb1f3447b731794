// The real coordinator server (embedded ledger with its writer thread, callback gRPC
// server) and real agents (gRPC client, inotify watcher, simulated reboots) over loopback:
// a rolling reboot, a coordinator restart in the middle of it, a halt, and invalid
// requests answered with INVALID_ARGUMENT.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "coordinator/api/server.h"
#include "coordinator/core/coordinator.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/fakes/agent_under_test.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kSettle = absl::Seconds(60);

using testing::AgentUnderTest;
using testing::ServedCoordinator;

coordinator::CoordinatorConfig FastConfig(const std::string& state_dir) {
  return testing::LoopbackCoordinatorConfig(state_dir, absl::Milliseconds(300));
}

std::unique_ptr<ServedCoordinator> Serve(const coordinator::CoordinatorConfig& config,
                                         int port = 0) {
  ServedCoordinator::Options options;
  options.port = port;
  auto served = ServedCoordinator::Start(config, options);
  EXPECT_TRUE(served.ok()) << served.status();
  return served.ok() ? *std::move(served) : nullptr;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

std::unique_ptr<tended::v1::OperatorService::Stub> OperatorStub(int port) {
  return tended::v1::OperatorService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

std::vector<tended::v1::Event> AllEvents(tended::v1::OperatorService::Stub& stub) {
  std::vector<tended::v1::Event> events;
  uint64_t after = 0;
  for (int page = 0; page < 100; ++page) {
    grpc::ClientContext context;
    tended::v1::ListEventsRequest request;
    request.set_after_sequence(after);
    request.set_limit(1000);
    tended::v1::ListEventsResponse response;
    EXPECT_TRUE(stub.ListEvents(&context, request, &response).ok());
    if (response.events().empty()) break;
    for (const auto& event : response.events()) events.push_back(event);
    after = events.back().sequence();
  }
  return events;
}

// The one promise, checked from the event log as an outsider would.
void ExpectAtMostOneDisruptedAtATime(const std::vector<tended::v1::Event>& events) {
  std::set<std::string> held;
  for (const auto& event : events) {
    EXPECT_LE(event.disrupted_nodes(), 1u) << event.DebugString();
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED) {
      EXPECT_TRUE(held.empty()) << "granted to " << event.node_name() << " while " << *held.begin()
                                << " held a lease";
      held.insert(event.node_name());
    }
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_RELEASED ||
        event.type() == tended::v1::EVENT_TYPE_LEASE_RETURNED ||
        event.type() == tended::v1::EVENT_TYPE_LEASE_FORCE_RELEASED) {
      held.erase(event.node_name());
    }
  }
}

TEST(FleetOverGrpc, RollingRebootOneNodeAtATime) {
  testing::TempDir state;
  auto config = FastConfig(state.Path("state"));
  std::unique_ptr<ServedCoordinator> coordinator = Serve(config);
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->port();
  std::vector<std::unique_ptr<AgentUnderTest>> agents;
  for (const char* name : {"k8s-master", "k8s-node1", "k8s-node2"}) {
    agents.push_back(std::make_unique<AgentUnderTest>(name, port));
  }
  auto stub = OperatorStub(port);
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        tended::v1::ListNodesResponse nodes;
        stub->ListNodes(&context, tended::v1::ListNodesRequest(), &nodes);
        return nodes.nodes_size() == 3;
      },
      kSettle));

  for (auto& agent : agents) agent->NeedReboot();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& agent : agents) {
          if (agent->reboots() != 1) return false;
        }
        grpc::ClientContext context;
        tended::v1::ListLeasesResponse leases;
        stub->ListLeases(&context, tended::v1::ListLeasesRequest(), &leases);
        return leases.leases().empty();
      },
      kSettle))
      << "not every node rebooted and verified";
  for (auto& agent : agents) {
    EXPECT_EQ(agent->reboots(), 1) << agent->name();
    EXPECT_FALSE(agent->SentinelPresent()) << agent->name();
  }

  auto events = AllEvents(*stub);
  ExpectAtMostOneDisruptedAtATime(events);
  int grants = 0, releases = 0;
  for (const auto& event : events) {
    grants += event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED;
    releases += event.type() == tended::v1::EVENT_TYPE_LEASE_RELEASED;
  }
  EXPECT_EQ(grants, 3);
  EXPECT_EQ(releases, 3);
}

TEST(FleetOverGrpc, CoordinatorRestartMidRolloutLosesNothing) {
  testing::TempDir state;
  auto config = FastConfig(state.Path("state"));
  config.leases[tended::v1::LEASE_KIND_REBOOT].soak = absl::Seconds(1);
  std::unique_ptr<ServedCoordinator> coordinator = Serve(config);
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->port();
  std::vector<std::unique_ptr<AgentUnderTest>> agents;
  for (const char* name : {"k8s-node1", "k8s-node2", "k8s-node3"}) {
    agents.push_back(std::make_unique<AgentUnderTest>(name, port));
  }
  for (auto& agent : agents) agent->NeedReboot();
  // Restart as soon as the first node has rebooted, while the rest wait for the soak.
  ASSERT_TRUE(WaitFor(
      [&] { return agents[0]->reboots() + agents[1]->reboots() + agents[2]->reboots() >= 1; },
      kSettle));
  coordinator.reset();
  coordinator = Serve(config, port);
  ASSERT_NE(coordinator, nullptr);

  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& agent : agents) {
          if (agent->reboots() != 1 || agent->SentinelPresent()) return false;
        }
        auto stub = OperatorStub(port);
        grpc::ClientContext context;
        tended::v1::ListLeasesResponse leases;
        stub->ListLeases(&context, tended::v1::ListLeasesRequest(), &leases);
        return leases.leases().empty();
      },
      kSettle));
  auto stub = OperatorStub(port);
  auto events = AllEvents(*stub);
  ExpectAtMostOneDisruptedAtATime(events);
  std::set<uint64_t> tokens;
  for (const auto& event : events) {
    if (event.type() == tended::v1::EVENT_TYPE_LEASE_GRANTED) {
      EXPECT_TRUE(tokens.insert(event.fencing_token()).second) << "token reused";
    }
  }
  EXPECT_EQ(tokens.size(), 3u);
}

TEST(FleetOverGrpc, InvalidRequestsGetInvalidArgumentWithAReason) {
  testing::TempDir state;
  std::unique_ptr<ServedCoordinator> coordinator = Serve(FastConfig(state.Path("state")));
  ASSERT_NE(coordinator, nullptr);
  auto channel = coordinator->NewChannel();
  auto node = tended::v1::NodeService::NewStub(channel);
  {
    grpc::ClientContext context;
    tended::v1::ReportFactsRequest request;
    request.mutable_facts()->set_node_name("Not_A_Node");
    request.mutable_facts()->set_boot_id("x");
    request.set_agent_instance_id("agent-1");
    tended::v1::ReportFactsResponse response;
    grpc::Status status = node->ReportFacts(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("facts.node_name"));
  }
  {
    // Every agent call names the agent's instance.
    grpc::ClientContext context;
    tended::v1::ReportFactsRequest request;
    request.mutable_facts()->set_node_name("k8s-node1");
    request.mutable_facts()->set_boot_id("x");
    tended::v1::ReportFactsResponse response;
    grpc::Status status = node->ReportFacts(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("agent_instance_id"));
  }
  {
    grpc::ClientContext context;
    tended::v1::WatchDirectivesRequest request;
    request.set_node_name("k8s-node1/../x");
    request.set_agent_instance_id("agent-1");
    auto stream = node->WatchDirectives(&context, request);
    tended::v1::Directive directive;
    EXPECT_FALSE(stream->Read(&directive));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("node_name"));
  }
  {
    grpc::ClientContext context;
    tended::v1::AcquireLeaseRequest request;
    request.set_node_name("k8s-node1");
    tended::v1::AcquireLeaseResponse response;
    grpc::Status status = node->AcquireLease(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("kind"));
  }
  {
    grpc::ClientContext context;
    tended::v1::AcquireLeaseRequest request;
    request.set_node_name("k8s-node1");
    request.set_kind(tended::v1::LEASE_KIND_REBOOT);
    request.set_agent_instance_id("agent-1");
    tended::v1::AcquireLeaseResponse response;
    grpc::Status status = node->AcquireLease(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(), HasSubstr("report facts"));
  }
  {
    grpc::ClientContext context;
    tended::v1::BeginDisruptionRequest request;
    request.set_lease_id("reboot-k8s-node1-1");
    request.set_step("reboot");
    request.set_agent_instance_id("agent-1");
    tended::v1::BeginDisruptionResponse response;
    grpc::Status status = node->BeginDisruption(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("fencing_token"));
  }
  auto operators = tended::v1::OperatorService::NewStub(channel);
  {
    grpc::ClientContext context;
    tended::v1::HaltResponse response;
    grpc::Status status = operators->Halt(&context, tended::v1::HaltRequest(), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("reason"));
  }
  {
    grpc::ClientContext context;
    tended::v1::ForceReleaseLeaseRequest request;
    request.set_lease_id("reboot-k8s-node1-9");
    request.set_reason("gone");
    tended::v1::ForceReleaseLeaseResponse response;
    grpc::Status status = operators->ForceReleaseLease(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST(FleetOverGrpc, HaltBlocksNewGrantsUntilResume) {
  testing::TempDir state;
  std::unique_ptr<ServedCoordinator> coordinator = Serve(FastConfig(state.Path("state")));
  ASSERT_NE(coordinator, nullptr);
  const int port = coordinator->port();
  auto stub = OperatorStub(port);
  {
    grpc::ClientContext context;
    tended::v1::HaltRequest request;
    request.set_reason("investigating a storage incident");
    tended::v1::HaltResponse response;
    ASSERT_TRUE(stub->Halt(&context, request, &response).ok());
    EXPECT_TRUE(response.halt().halted());
  }
  AgentUnderTest agent("k8s-node4", port);
  agent.NeedReboot();
  // The agent asks and waits; ExplainGates says why.
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        tended::v1::ExplainGatesRequest request;
        request.set_kind(tended::v1::LEASE_KIND_REBOOT);
        tended::v1::ExplainGatesResponse response;
        stub->ExplainGates(&context, request, &response);
        return response.explanations_size() == 1 &&
               response.explanations(0).waiting_nodes_size() == 1;
      },
      kSettle));
  {
    grpc::ClientContext context;
    tended::v1::ExplainGatesRequest request;
    request.set_kind(tended::v1::LEASE_KIND_REBOOT);
    tended::v1::ExplainGatesResponse response;
    ASSERT_TRUE(stub->ExplainGates(&context, request, &response).ok());
    const auto& explanation = response.explanations(0);
    EXPECT_FALSE(explanation.would_grant());
    const tended::v1::GateResult* halt = nullptr;
    for (const auto& gate : explanation.gates()) {
      if (gate.gate() == "halt") halt = &gate;
    }
    ASSERT_NE(halt, nullptr) << explanation.DebugString();
    EXPECT_EQ(halt->verdict(), tended::v1::GATE_VERDICT_BLOCK);
    EXPECT_THAT(halt->reason(), HasSubstr("storage incident"));
  }
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(agent.reboots(), 0);
  {
    grpc::ClientContext context;
    tended::v1::ResumeResponse response;
    ASSERT_TRUE(stub->Resume(&context, tended::v1::ResumeRequest(), &response).ok());
  }
  EXPECT_TRUE(WaitFor([&] { return agent.reboots() == 1; }, kSettle));
}

}  // namespace
}  // namespace tended
