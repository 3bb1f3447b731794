#include "tests/fakes/agent_under_test.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "tests/fakes/node_root.h"

namespace tended::testing {

AgentUnderTest::AgentUnderTest(const std::string& name, int coordinator_port,
                               const RebooterWrapper& wrap)
    : name_(name) {
  EXPECT_TRUE(PrepareNodeRoot(dir_.path(), absl::StrCat("boot-0-", name)).ok());
  config_.node_name = name;
  config_.coordinator_address = absl::StrCat("127.0.0.1:", coordinator_port);
  config_.insecure = true;
  config_.root = dir_.path();
  config_.report_interval = absl::Milliseconds(200);
  config_.check_period = absl::Seconds(2);
  config_.reconnect_initial_backoff = absl::Milliseconds(100);
  config_.reconnect_max_backoff = absl::Milliseconds(500);
  config_.reboot.method = agent::RebootMethod::kSimulate;
  config_.reboot.delay = absl::Milliseconds(100);
  root_ = RootPath(dir_.path());
  auto simulated = agent::SimulatedRebooter::Create(root_, Clock::Real());
  EXPECT_TRUE(simulated.ok()) << simulated.status();
  simulated_ = simulated->get();
  rebooter_ = wrap ? wrap(std::move(*simulated)) : std::move(*simulated);
  auto client =
      agent::MakeGrpcCoordinatorClient(config_.coordinator_address, std::nullopt, absl::Seconds(2));
  EXPECT_TRUE(client.ok()) << client.status();
  client_ = std::move(*client);
  agent::Agent::Dependencies dependencies;
  dependencies.clock = &Clock::Real();
  dependencies.coordinator = client_.get();
  dependencies.rebooter = rebooter_.get();
  auto created = agent::Agent::Create(config_, name, root_, dependencies);
  EXPECT_TRUE(created.ok()) << created.status();
  agent_ = std::move(*created);
  auto watcher = agent::SentinelWatcher::Create(root_.Resolve(config_.reboot.sentinel),
                                                [this](bool) { agent_->Wake(); });
  EXPECT_TRUE(watcher.ok()) << watcher.status();
  watcher_ = std::move(*watcher);
  EXPECT_TRUE(watcher_->Start().ok());
  thread_ = std::thread([this] { agent_->Run(stop_); });
}

AgentUnderTest::~AgentUnderTest() {
  stop_ = true;
  agent_->Wake();
  thread_.join();
  watcher_->Stop();
}

void AgentUnderTest::NeedReboot() {
  ASSERT_TRUE(MarkRebootRequired(dir_.path(), "linux-image-6.1.0-28-amd64").ok());
}

bool AgentUnderTest::SentinelPresent() const {
  return PathExists(root_.Resolve("/var/run/reboot-required"));
}

}  // namespace tended::testing
