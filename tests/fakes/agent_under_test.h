// One node for end-to-end tests: a throwaway root, a real tended agent (gRPC client,
// inotify sentinel watcher, simulated reboots) running on its own thread against a
// coordinator on 127.0.0.1, with the timings shortened to milliseconds.
#ifndef TENDED_TESTS_FAKES_AGENT_UNDER_TEST_H_
#define TENDED_TESTS_FAKES_AGENT_UNDER_TEST_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/coordinator_client.h"
#include "agent/sentinel_watcher.h"
#include "agent/simulated_rebooter.h"
#include "common/root_path.h"
#include "tests/fakes/temp_dir.h"

namespace tended::testing {

class AgentUnderTest {
 public:
  // May wrap the simulated rebooter, e.g. to check the cluster at the moment of a reboot.
  using RebooterWrapper =
      std::function<std::unique_ptr<agent::Rebooter>(std::unique_ptr<agent::SimulatedRebooter>)>;

  AgentUnderTest(const std::string& name, int coordinator_port,
                 const RebooterWrapper& wrap = nullptr);
  ~AgentUnderTest();
  AgentUnderTest(const AgentUnderTest&) = delete;
  AgentUnderTest& operator=(const AgentUnderTest&) = delete;

  // Writes the reboot-required sentinel and its .pkgs, as a kernel package would.
  void NeedReboot();
  bool SentinelPresent() const;
  // Simulated reboots so far.
  int reboots() const { return simulated_->reboot_count(); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  TempDir dir_;
  agent::AgentConfig config_;
  RootPath root_;
  agent::SimulatedRebooter* simulated_ = nullptr;
  std::unique_ptr<agent::Rebooter> rebooter_;
  std::unique_ptr<agent::CoordinatorClient> client_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<agent::SentinelWatcher> watcher_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_AGENT_UNDER_TEST_H_
