// A canary-first OS upgrade rollout across three nodes, with the real apt engine: each node
// is a throwaway dpkg root (tests/unit/agent/apt/apt_lab.h) fed by one signed local
// repository, each agent has its own libapt-pkg PackageManager, and all of them talk to an
// in-process coordinator on a fake clock. Apply runs inline (no worker thread), so the run
// is deterministic. Needs root, like the apt engine's own tests.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/apt/engine/apt_package_manager.h"
#include "agent/apt/package_manager.h"
#include "agent/config.h"
#include "agent/simulated_rebooter.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/proto_file.h"
#include "common/proto_time.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/agent_requests.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/in_process_coordinator_client.h"
#include "tests/fakes/node_root.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/apt/apt_lab.h"

namespace tended {
namespace {

using ::testing::HasSubstr;
using agent::apt::testing::Deb;
using agent::apt::testing::LabRoot;
using agent::apt::testing::RepoSet;
using agent::apt::testing::RepoSpec;
using tended::v1::Lease;

constexpr char kCanary[] = "node-c";
constexpr absl::Duration kCanarySoak = absl::Hours(1);
constexpr absl::Duration kStep = absl::Seconds(5);

const char kPolicy[] = R"(Unattended-Upgrade::Origins-Pattern {
  "o=NodeOS,n=${distro_codename}-security";
};
)";

const char kRebootPostinst[] =
    "if [ \"$1\" = configure ] && [ -n \"$2\" ]; then\n"
    "  touch \"$DPKG_ROOT/var/run/reboot-required\"\nfi";

// Fails to configure its upgrade: the package a canary exists to catch.
const char kFailingPostinst[] =
    "if [ \"$1\" = configure ] && [ -n \"$2\" ]; then\n"
    "  echo 'broken: cannot start the service' >&2\n  exit 1\nfi";

struct Node {
  std::string name;
  std::unique_ptr<LabRoot> lab;
  std::unique_ptr<agent::apt::PackageManager> packages;
  std::unique_ptr<agent::SimulatedRebooter> rebooter;
  std::unique_ptr<testing::InProcessCoordinatorClient> client;
  std::unique_ptr<agent::Agent> agent;
};

class OsUpgradeRolloutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    InitLogging(LogTarget::kStderr, std::getenv("TENDED_SIM_LOG") ? std::getenv("TENDED_SIM_LOG")
                                                                 : "off");
    if (::geteuid() != 0) return;
    suite_dir_ = new testing::TempDir();
    RepoSpec security{"stable-security", "NodeOS", "NodeOS-Security", "bookworm-security", {}};
    security.debs = {Deb{"libfoo", "1.1"}, Deb{"rebooter", "1.1", "", kRebootPostinst},
                     Deb{"broken", "1.1", "", kFailingPostinst}};
    repos_ = new RepoSet(suite_dir_->path(), {security});
  }
  static void TearDownTestSuite() {
    delete repos_;
    delete suite_dir_;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "installs packages into throwaway dpkg roots: needs root";
    config_.fleet.report_deadline = absl::Minutes(2);
    config_.fleet.report_interval = absl::Seconds(30);
    coordinator::LeasePolicy os;
    os.soak = absl::ZeroDuration();
    os.canary = kCanary;
    os.canary_soak = kCanarySoak;
    config_.leases[tended::v1::LEASE_KIND_OS_UPGRADE] = os;
    coordinator::LeasePolicy reboot;
    reboot.soak = absl::ZeroDuration();
    config_.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    ASSERT_TRUE(coordinator::ValidateCoordinatorConfig(config_).ok());
    harness_ = std::make_unique<testing::CoordinatorHarness>(config_, &clock_);
    StartCoordinator();

    agent_config_.report_interval = absl::Seconds(30);
    agent_config_.check_period = absl::Minutes(5);
    agent_config_.reboot.method = agent::RebootMethod::kSimulate;
    agent_config_.reboot.delay = absl::Seconds(5);
    agent_config_.apt.enabled = true;
    agent_config_.apt.plan_interval = absl::Minutes(10);
    agent_config_.apt.update_interval = absl::Hours(24);
  }

  void TearDown() override {
    for (Node& node : nodes_) node.agent.reset();
    nodes_.clear();
    endpoint_.Set(nullptr);
    harness_.reset();
  }

  // Starts the coordinator, or restarts it on its state.
  void StartCoordinator() {
    endpoint_.Set(nullptr);
    absl::Status started = harness_->Restart();
    ASSERT_TRUE(started.ok()) << started;
    coordinator_ = harness_->get();
    endpoint_.Set(coordinator_);
  }

  // A node with `installed` in its dpkg root and an agent driving its own apt engine.
  void AddNode(const std::string& name, const std::vector<Deb>& installed) {
    Node& node = nodes_.emplace_back();
    node.name = name;
    const std::string root = dir_.Path(name);
    node.lab = std::make_unique<LabRoot>(root, *repos_, kPolicy);
    node.lab->Install(dir_.Path("work-" + name), installed);
    ASSERT_TRUE(testing::PrepareNodeRoot(root, agent::SimulatedRebooter::NewBootId()).ok());
    agent::apt::AptOptions options;
    options.root = root;
    options.clock = &clock_;
    auto packages = agent::apt::CreateAptPackageManager(options);
    ASSERT_TRUE(packages.ok()) << packages.status();
    node.packages = *std::move(packages);
    node.rebooter = std::make_unique<agent::SimulatedRebooter>(RootPath(root), clock_);
    node.client = std::make_unique<testing::InProcessCoordinatorClient>(&endpoint_);
    StartAgent(node);
  }

  void StartAgent(Node& node) {
    agent::Agent::Dependencies deps;
    deps.clock = &clock_;
    deps.coordinator = node.client.get();
    deps.rebooter = node.rebooter.get();
    deps.packages = node.packages.get();
    deps.apt_in_background = false;
    auto created = agent::Agent::Create(agent_config_, node.name, RootPath(node.lab->path()), deps);
    ASSERT_TRUE(created.ok()) << created.status();
    node.agent = *std::move(created);
  }

  // One step: every agent does what is due, then the coordinator ticks; the checks run.
  void Step() {
    clock_.Advance(kStep);
    for (Node& node : nodes_) {
      node.client->Pump();
      node.agent->RunOnce();
    }
    coordinator_->Tick();
    CheckAtMostOneDisrupted();
  }

  // Steps until `done` or `limit` of simulated time passed. Returns whether `done` held.
  bool StepUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time end = clock_.Now() + limit;
    while (clock_.Now() < end) {
      if (done()) return true;
      Step();
    }
    return done();
  }

  std::vector<Lease> Leases(bool include_released) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(include_released);
    auto leases = coordinator_->ListLeases(request).leases();
    return {leases.begin(), leases.end()};
  }

  void CheckAtMostOneDisrupted() {
    std::vector<Lease> active = Leases(false);
    ASSERT_LE(active.size(), 1u) << active.size() << " leases active at once";
    max_active_ = std::max(max_active_, active.size());
  }

  std::vector<Lease> OsLeases() {
    std::vector<Lease> out;
    for (const Lease& lease : Leases(true)) {
      if (lease.kind() == tended::v1::LEASE_KIND_OS_UPGRADE) out.push_back(lease);
    }
    std::sort(out.begin(), out.end(), [](const Lease& a, const Lease& b) {
      return a.fencing_token() < b.fencing_token();
    });
    return out;
  }

  tended::v1::GateResult CanaryGate() {
    tended::v1::ExplainGatesRequest request;
    request.set_kind(tended::v1::LEASE_KIND_OS_UPGRADE);
    auto explained = coordinator_->ExplainGates(request);
    EXPECT_TRUE(explained.ok());
    for (const auto& gate : explained->explanations(0).gates()) {
      if (gate.gate() == "canary") return gate;
    }
    return {};
  }

  Node& node(const std::string& name) {
    for (Node& n : nodes_) {
      if (n.name == name) return n;
    }
    std::abort();
  }

  static inline testing::TempDir* suite_dir_ = nullptr;
  static inline RepoSet* repos_ = nullptr;

  testing::FakeClock clock_;
  testing::TempDir dir_;
  coordinator::CoordinatorConfig config_;
  agent::AgentConfig agent_config_;
  std::unique_ptr<testing::CoordinatorHarness> harness_;
  coordinator::Coordinator* coordinator_ = nullptr;
  testing::CoordinatorEndpoint endpoint_;
  std::vector<Node> nodes_;
  size_t max_active_ = 0;
};

TEST_F(OsUpgradeRolloutTest, CanaryFirstThenSoakThenTheOthersThenTheirReboots) {
  const std::vector<Deb> base = {Deb{"libfoo", "1.0"}, Deb{"rebooter", "1.0", "", kRebootPostinst}};
  AddNode("node-a", base);
  AddNode("node-b", base);
  AddNode(kCanary, base);

  // The canary's OS upgrade is granted first, whoever asked first.
  ASSERT_TRUE(StepUntil([&] { return !OsLeases().empty(); }, absl::Minutes(5)));
  EXPECT_EQ(OsLeases()[0].node_name(), kCanary);

  // It installs for real, is verified and released; its reboot follows under a REBOOT lease.
  ASSERT_TRUE(StepUntil(
      [&] { return OsLeases()[0].phase() == tended::v1::LEASE_PHASE_RELEASED; },
      absl::Minutes(10)));
  const absl::Time canary_released = FromProtoTimestamp(OsLeases()[0].release_time());
  EXPECT_EQ(node(kCanary).lab->State("libfoo"), "ii 1.1");
  EXPECT_EQ(node(kCanary).lab->State("rebooter"), "ii 1.1");
  EXPECT_EQ(node("node-a").lab->State("libfoo"), "ii 1.0");
  ASSERT_TRUE(StepUntil([&] { return node(kCanary).rebooter->reboot_count() == 1; },
                        absl::Minutes(10)));

  // The others wait out the canary's soak.
  ASSERT_TRUE(StepUntil([&] { return Leases(false).empty(); }, absl::Minutes(10)));
  tended::v1::GateResult soaking = CanaryGate();
  EXPECT_EQ(soaking.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(soaking.reason(), HasSubstr("soak ends"));
  EXPECT_EQ(OsLeases().size(), 1u);

  // Then they go, one at a time, each followed by its reboot.
  ASSERT_TRUE(StepUntil(
      [&] {
        std::vector<Lease> os = OsLeases();
        return os.size() == 3 && os[2].phase() == tended::v1::LEASE_PHASE_RELEASED &&
               node("node-a").rebooter->reboot_count() == 1 &&
               node("node-b").rebooter->reboot_count() == 1 && Leases(false).empty();
      },
      kCanarySoak + absl::Hours(1)));
  std::vector<Lease> os = OsLeases();
  for (size_t i = 1; i < os.size(); ++i) {
    EXPECT_NE(os[i].node_name(), kCanary);
    EXPECT_GE(FromProtoTimestamp(os[i].grant_time()), canary_released + kCanarySoak);
  }
  for (Node& n : nodes_) {
    EXPECT_EQ(n.lab->State("libfoo"), "ii 1.1") << n.name;
    EXPECT_EQ(n.lab->State("rebooter"), "ii 1.1") << n.name;
    EXPECT_FALSE(PathExists(n.lab->Path("var/run/reboot-required"))) << n.name;
  }
  EXPECT_EQ(max_active_, 1u);
  tended::v1::ListNodesResponse listed = coordinator_->ListNodes();
  for (const auto& known : listed.nodes()) {
    EXPECT_EQ(known.facts().os_upgrade().last_step().state(), tended::v1::STEP_STATE_SUCCEEDED)
        << known.facts().node_name();
    EXPECT_EQ(known.facts().os_upgrade().upgrades_available(), 0u);
  }
}

TEST_F(OsUpgradeRolloutTest, AFailingCanaryStopsTheRolloutWithItsReason) {
  const std::vector<Deb> base = {Deb{"libfoo", "1.0"}, Deb{"broken", "1.0"}};
  AddNode("node-a", base);
  AddNode("node-b", base);
  AddNode(kCanary, base);

  ASSERT_TRUE(StepUntil(
      [&] {
        std::vector<Lease> os = OsLeases();
        return !os.empty() && os[0].phase() == tended::v1::LEASE_PHASE_VERIFYING;
      },
      absl::Minutes(10)));
  EXPECT_EQ(OsLeases()[0].node_name(), kCanary);
  EXPECT_THAT(OsLeases()[0].status_message(), HasSubstr("failed"));

  // Hours later nothing else was granted, and the gate says why, also after a restart.
  StepUntil([] { return false; }, kCanarySoak + absl::Hours(1));
  StartCoordinator();
  for (int i = 0; i < 10; ++i) Step();
  EXPECT_EQ(OsLeases().size(), 1u);
  tended::v1::GateResult gate = CanaryGate();
  EXPECT_EQ(gate.verdict(), tended::v1::GATE_VERDICT_BLOCK);
  EXPECT_THAT(gate.reason(), HasSubstr("canary node-c failed:"));
  EXPECT_THAT(gate.reason(), HasSubstr("broken"));
  EXPECT_EQ(node("node-a").lab->State("broken"), "ii 1.0");
  EXPECT_EQ(node("node-b").lab->State("libfoo"), "ii 1.0");
  EXPECT_NE(node(kCanary).lab->State("broken").substr(0, 2), "ii");
}

TEST_F(OsUpgradeRolloutTest, ADpkgStepFoundAfterACrashIsReportedInterruptedNotRedone) {
  AddNode(kCanary, {Deb{"libfoo", "1.0"}});
  ASSERT_TRUE(StepUntil([&] { return !OsLeases().empty(); }, absl::Minutes(5)));
  Lease lease = OsLeases()[0];
  // The agent crashes right after proving its lease and journaling the step, before dpkg:
  // its journal is what a crash mid-dpkg leaves.
  Node& canary = node(kCanary);
  canary.agent.reset();
  auto instance = ReadFileToString(canary.lab->Path("var/lib/tended/agent-id"));
  ASSERT_TRUE(instance.ok()) << instance.status();
  tended::v1::BeginDisruptionRequest begin = testing::BeginRequest(
      lease, "dpkg", std::string(absl::StripAsciiWhitespace(*instance)));
  auto* change = begin.add_packages();
  change->set_name("libfoo");
  change->set_from_version("1.0");
  change->set_to_version("1.1");
  auto begun = coordinator_->BeginDisruption(begin);
  ASSERT_TRUE(begun.ok()) << begun.status();
  tended::state::v1::AgentState journal;
  journal.set_format_version(1);
  *journal.mutable_lease() = begun->lease();
  journal.set_step("dpkg");
  *journal.mutable_step_packages() = begin.packages();
  *journal.mutable_step_start_time() = ToProtoTimestamp(clock_.Now());
  ASSERT_TRUE(WriteProtoJsonFile(canary.lab->Path("var/lib/tended/agent-state.json"), journal).ok());

  StartAgent(canary);
  for (int i = 0; i < 5; ++i) Step();
  lease = OsLeases()[0];
  EXPECT_EQ(lease.phase(), tended::v1::LEASE_PHASE_VERIFYING);
  EXPECT_THAT(lease.status_message(), HasSubstr("interrupted"));
  EXPECT_EQ(canary.lab->State("libfoo"), "ii 1.0");  // Not silently redone.
  EXPECT_THAT(CanaryGate().reason(), HasSubstr("canary node-c failed:"));
}

}  // namespace
}  // namespace tended
