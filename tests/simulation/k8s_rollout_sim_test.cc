// Kubernetes rollouts end to end on the five-node reference fleet: the real coordinator (on
// a real ledger) and five real agents in one process on one fake clock, each agent running
// its lease's typed steps through the real K8sStepRunner. What cannot run here is faked at
// its seam: kubeadm and systemctl (FakeCommandRunner, which records every call), the apt
// engine's packages (FakePackageManager, whose lists follow the node's Kubernetes apt
// source) and the node's installed versions (read from it). The control plane's etcd
// snapshot is real: Debian's etcd, started on loopback ports chosen at run time.
//
// Covered: a patch and a minor rollout in the reference order; a failure injected at each
// kind of step (the rollout stops, the node's lease is held, no later node is touched); an
// agent crash in the middle of each step (the journal says "in flight"; the new agent begins
// it again and finishes); a coordinator restart after every step; a halt after the grant.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/k8s/apt_source.h"
#include "agent/k8s/etcd_snapshotter.h"
#include "agent/k8s/step_runner.h"
#include "agent/k8s/version_check.h"
#include "agent/simulated_rebooter.h"
#include "common/file_util.h"
#include "common/k8s_steps.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/schedule.h"
#include "coordinator/core/coordinator.h"
#include "tests/fakes/coordinator_harness.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_k8s_node.h"
#include "tests/fakes/fake_package_manager.h"
#include "tests/fakes/in_process_coordinator_client.h"
#include "tests/fakes/node_root.h"
#include "tests/fakes/real_etcd.h"
#include "tests/fakes/temp_dir.h"
#include "tests/simulation/simulated_fleet.h"

namespace tended {
namespace {

using tended::v1::K8sRollout;
using tended::v1::Lease;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kStep = absl::Seconds(5);
constexpr char kSourceFile[] = "/etc/apt/sources.list.d/kubernetes.list";
constexpr char kPattern[] = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/";
const std::vector<std::string> kFleet = {"k8s-master", "k8s-node1", "k8s-node2", "k8s-node3",
                                         "k8s-node4"};

// What each minor's repository offers, newest first.
std::vector<std::string> Offered(const std::string& minor) {
  if (minor == "1.31") return {"1.31.1-1.1", "1.31.0-1.1"};
  return {"1.30.5-1.1", "1.30.2-1.1"};
}

struct Node {
  std::string name;
  std::string root;
  testing::FakePackageManager packages;
  testing::FakeCommandRunner commands;
  std::unique_ptr<testing::FakeInstalledK8s> installed;
  std::unique_ptr<agent::k8s::EtcdSnapshotter> etcd;
  std::unique_ptr<agent::k8s::K8sStepRunner> steps;
  std::unique_ptr<agent::k8s::ScheduledVersionCheck> check;
  std::unique_ptr<agent::SimulatedRebooter> rebooter;
  // Checks the promise at the moment of the reboot, then reboots (the chaos test).
  std::unique_ptr<agent::Rebooter> checked;
  std::unique_ptr<testing::InProcessCoordinatorClient> client;
  std::unique_ptr<agent::Agent> agent;
};

class K8sRolloutSimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    InitLogging(LogTarget::kStderr,
                std::getenv("TENDED_SIM_LOG") ? std::getenv("TENDED_SIM_LOG") : "off");
    etcd_dir_ = new testing::TempDir();
    auto etcd = testing::RealEtcd::Start(etcd_dir_->path());
    if (etcd.ok()) {
      etcd_ = etcd->release();
      for (int i = 0; i < 50; ++i) (void)etcd_->Put(absl::StrCat("/registry/pods/p", i), "spec");
    } else {
      etcd_error_ = new std::string(etcd.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete etcd_;
    delete etcd_dir_;
    delete etcd_error_;
  }

  void SetUp() override {
    if (etcd_ == nullptr) GTEST_SKIP() << "no etcd here: " << *etcd_error_;
    config_.fleet.report_deadline = absl::Minutes(2);
    config_.fleet.report_interval = absl::Seconds(30);
    config_.history_limit = 500;
    coordinator::LeasePolicy reboot;
    reboot.soak = absl::ZeroDuration();
    config_.leases[tended::v1::LEASE_KIND_REBOOT] = reboot;
    coordinator::LeasePolicy k8s;
    k8s.concurrency = 1;
    k8s.soak = absl::Minutes(10);
    k8s.expected_duration = absl::Minutes(45);
    k8s.renew_deadline = absl::Minutes(10);
    k8s.return_deadline = absl::Hours(1);
    k8s.begin_wait = absl::Minutes(30);
    k8s.control_plane_order = {"k8s-master"};
    k8s.worker_order = {"k8s-node4", "k8s-node3", "k8s-node2", "k8s-node1"};
    config_.leases[tended::v1::LEASE_KIND_K8S_UPGRADE] = k8s;
    ASSERT_TRUE(coordinator::ValidateCoordinatorConfig(config_).ok());
    clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 12, 6, 9, 0, 0), absl::UTCTimeZone()));
    harness_ = std::make_unique<testing::CoordinatorHarness>(config_, &clock_);
    StartCoordinator(/*restart=*/false);

    agent_config_.report_interval = absl::Seconds(30);
    agent_config_.check_period = absl::Minutes(5);
    agent_config_.reboot.method = agent::RebootMethod::kSimulate;
    agent_config_.k8s.enabled = true;
    ++runs_;
    for (const std::string& name : kFleet) AddNode(name);
    // Every agent reported; the first start's report deadline passed.
    StepFor(config_.fleet.report_deadline + absl::Seconds(10));
  }

  void TearDown() override {
    for (auto& node : nodes_) node->agent.reset();
    nodes_.clear();
    endpoint_.Set(nullptr);
    harness_.reset();
  }

  void StartCoordinator(bool restart) {
    endpoint_.Set(nullptr);
    absl::Status started = restart ? harness_->Restart() : harness_->Start();
    ASSERT_TRUE(started.ok()) << started;
    coordinator_ = harness_->get();
    endpoint_.Set(coordinator_);
  }

  void AddNode(const std::string& name) {
    auto node = std::make_unique<Node>();
    Node& n = *node;
    n.name = name;
    n.root = dir_.Path(absl::StrCat("run-", runs_, "/", name));
    ASSERT_TRUE(testing::PrepareNodeRoot(n.root, agent::SimulatedRebooter::NewBootId()).ok());
    ASSERT_TRUE(MakeDirectories(n.root + "/etc/apt/sources.list.d").ok());
    ASSERT_TRUE(WriteFileAtomically(n.root + kSourceFile,
                                    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
                                    "https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /\n")
                    .ok());
    n.packages.installed = {{"kubeadm", "1.30.2-1.1"},
                            {"kubelet", "1.30.2-1.1"},
                            {"kubectl", "1.30.2-1.1"},
                            {"containerd", "1.6.20~ds1-1"}};
    n.packages.holds = {"kubeadm", "kubelet", "kubectl"};
    // The lists offer what the node's source line names.
    n.packages.on_update = [root = n.root](testing::FakePackageManager& packages) {
      std::string text = ReadFileToString(root + kSourceFile).value_or("");
      std::string minor = absl::StrContains(text, "/v1.31/") ? "1.31" : "1.30";
      for (const char* package : {"kubeadm", "kubelet", "kubectl"}) {
        packages.available_versions[package] = Offered(minor);
      }
    };
    n.packages.on_update(n.packages);
    n.packages.updates = 0;
    const bool control_plane = name == "k8s-master";
    n.installed = std::make_unique<testing::FakeInstalledK8s>(&n.packages, control_plane);
    if (control_plane) {
      agent::k8s::EtcdSnapshotterOptions options;
      options.snapshot.endpoint = etcd_->client_url();
      options.snapshot.ca_file.clear();
      options.snapshot.cert_file.clear();
      options.snapshot.key_file.clear();
      options.dir = "/var/lib/tended/etcd-snapshots";
      options.keep = 2;
      n.etcd = std::make_unique<agent::k8s::GrpcEtcdSnapshotter>(options, RootPath(n.root), name,
                                                                 clock_);
    }
    n.commands.OnRun([this, name](const std::vector<std::string>& argv) {
      commands_.push_back(absl::StrCat(name, ": ", agent::k8s::DescribeCommand(argv)));
    });
    agent::k8s::StepRunnerOptions step_options;
    step_options.apt_source_file = kSourceFile;
    step_options.repo_url_pattern = kPattern;
    n.steps = std::make_unique<agent::k8s::K8sStepRunner>(
        agent::k8s::K8sStepRunner::Dependencies{&n.packages, &n.commands, n.installed.get(),
                                                n.etcd.get()},
        RootPath(n.root), step_options);
    if (control_plane) {
      auto schedule = Schedule::Parse("0 12 * * sun", "UTC");
      ASSERT_TRUE(schedule.ok());
      agent::k8s::ScheduledVersionCheck::Options check_options;
      check_options.background = false;
      Node* raw = &n;
      n.check = std::make_unique<agent::k8s::ScheduledVersionCheck>(
          [this, raw] {
            (void)raw->packages.Update();
            tended::v1::K8sNodeFacts facts = raw->installed->Read().value();
            for (const std::string& v : raw->packages.available_versions["kubeadm"]) {
              facts.add_kubeadm_candidates(v);
            }
            facts.set_next_minor("1.31");
            facts.set_next_minor_available(true);
            *facts.mutable_checked_time() = ToProtoTimestamp(clock_.Now());
            return facts;
          },
          *std::move(schedule), check_options, nullptr);
    }
    n.rebooter = std::make_unique<agent::SimulatedRebooter>(RootPath(n.root), clock_);
    n.client = std::make_unique<testing::InProcessCoordinatorClient>(&endpoint_);
    nodes_.push_back(std::move(node));
    StartAgent(*nodes_.back());
  }

  void StartAgent(Node& node) {
    agent::Agent::Dependencies deps;
    deps.clock = &clock_;
    deps.coordinator = node.client.get();
    deps.rebooter = node.checked != nullptr ? node.checked.get() : node.rebooter.get();
    if (os_upgrades_) {
      deps.packages = &node.packages;
      deps.apt_in_background = false;
    }
    deps.k8s_steps = node.steps.get();
    deps.k8s_installed = node.installed.get();
    deps.k8s_version_check = node.check.get();
    deps.k8s_in_background = false;
    auto created = agent::Agent::Create(agent_config_, node.name, RootPath(node.root), deps);
    ASSERT_TRUE(created.ok()) << created.status();
    node.agent = *std::move(created);
  }

  // One step: every agent does what is due, then the coordinator ticks; the checks run.
  void Step() {
    clock_.Advance(kStep);
    for (auto& node : nodes_) {
      node->client->Pump();
      node->agent->RunOnce();
      if (crash_after_run_ == node->name) {
        crash_after_run_.clear();
        CrashAgentWithJournal(*node, crashed_journal_);
      }
    }
    coordinator_->Tick();
    if (restart_coordinator_) {
      restart_coordinator_ = false;
      ++coordinator_restarts_;
      StartCoordinator(/*restart=*/true);
    }
    std::vector<Lease> active = Leases(false);
    int k8s = 0;
    for (const Lease& lease : active) k8s += lease.kind() == tended::v1::LEASE_KIND_K8S_UPGRADE;
    ASSERT_LE(k8s, 1) << "two k8s_upgrade leases at once";
    ASSERT_LE(active.size(), 1u) << "two nodes disrupted at once";
  }

  void StepFor(absl::Duration span) {
    const absl::Time end = clock_.Now() + span;
    while (clock_.Now() < end) Step();
  }

  bool StepUntil(const std::function<bool()>& done, absl::Duration limit) {
    const absl::Time end = clock_.Now() + limit;
    while (clock_.Now() < end) {
      if (done()) return true;
      Step();
      if (::testing::Test::HasFatalFailure()) return false;
    }
    return done();
  }

  // The agent process dies while the step runs: what it wrote to disk before the step is all
  // that is left, whatever the step did to the node.
  void CrashAgentWithJournal(Node& node, const std::string& journal) {
    node.agent.reset();
    ASSERT_TRUE(
        WriteFileAtomically(node.root + "/var/lib/tended/agent-state.json", journal, 0600).ok());
    node.client = std::make_unique<testing::InProcessCoordinatorClient>(&endpoint_);
    StartAgent(node);
    ++agent_crashes_;
  }

  std::vector<Lease> Leases(bool include_released) {
    tended::v1::ListLeasesRequest request;
    request.set_include_released(include_released);
    auto leases = coordinator_->ListLeases(request).leases();
    return {leases.begin(), leases.end()};
  }

  absl::StatusOr<K8sRollout> Start(const std::string& target, tended::v1::K8sUpgradeKind kind) {
    tended::v1::StartK8sRolloutRequest request;
    request.set_target_version(target);
    request.set_kind(kind);
    request.set_reason("test");
    auto response = coordinator_->StartK8sRollout(request);
    if (!response.ok()) return response.status();
    return response->rollout();
  }

  K8sRollout Get() {
    auto response = coordinator_->GetK8sRollout({});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->rollout() : K8sRollout();
  }

  bool Ended() {
    K8sRollout rollout = Get();
    return rollout.state() != tended::v1::K8S_ROLLOUT_STATE_RUNNING &&
           rollout.state() != tended::v1::K8S_ROLLOUT_STATE_CANCELLING;
  }

  Node& node(const std::string& name) {
    for (auto& n : nodes_) {
      if (n->name == name) return *n;
    }
    std::abort();
  }

  // The nodes whose kubeadm ran, in order (a node once per kubeadm call).
  std::vector<std::string> KubeadmCalls() {
    std::vector<std::string> out;
    for (const std::string& call : commands_) {
      if (absl::StrContains(call, "kubeadm")) out.push_back(call);
    }
    return out;
  }

  void ExpectAllAt(const std::string& deb) {
    for (auto& n : nodes_) {
      for (const char* package : {"kubeadm", "kubelet", "kubectl"}) {
        EXPECT_EQ(n->packages.installed[package], deb) << n->name << " " << package;
      }
      // Held again afterwards (the fake keeps holds as they were; pinned installs unhold
      // nothing here, so the holds are the reference's).
      EXPECT_TRUE(n->packages.holds.count("kubeadm")) << n->name;
    }
  }

  static inline testing::TempDir* etcd_dir_ = nullptr;
  static inline testing::RealEtcd* etcd_ = nullptr;
  static inline std::string* etcd_error_ = nullptr;

  testing::FakeClock clock_;
  testing::TempDir dir_;
  coordinator::CoordinatorConfig config_;
  agent::AgentConfig agent_config_;
  std::unique_ptr<testing::CoordinatorHarness> harness_;
  coordinator::Coordinator* coordinator_ = nullptr;
  testing::CoordinatorEndpoint endpoint_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::string> commands_;
  std::string crash_after_run_;
  std::string crashed_journal_;
  bool restart_coordinator_ = false;
  bool os_upgrades_ = false;
  int runs_ = 0;  // SetUp() again (another seed) starts on fresh node roots.
  int coordinator_restarts_ = 0;
  int agent_crashes_ = 0;
};

TEST_F(K8sRolloutSimTest, APatchRolloutRunsInTheReferenceOrderWithARealSnapshot) {
  auto started = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << started->message();
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(4))) << Get().ShortDebugString();
  K8sRollout done = Get();
  ASSERT_EQ(done.state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << done.ShortDebugString();
  EXPECT_THAT(KubeadmCalls(),
              ElementsAre("k8s-master: kubeadm upgrade plan v1.30.5",
                          "k8s-master: kubeadm upgrade apply v1.30.5 --yes",
                          "k8s-node4: kubeadm upgrade node", "k8s-node3: kubeadm upgrade node",
                          "k8s-node2: kubeadm upgrade node", "k8s-node1: kubeadm upgrade node"));
  // Each node's kubelet restarted once, after its kubelet package.
  int restarts = 0;
  for (const std::string& call : commands_) restarts += absl::EndsWith(call, "restart kubelet");
  EXPECT_EQ(restarts, 5);
  ExpectAllAt("1.30.5-1.1");
  // The snapshot is a real file from the real etcd, recorded in the rollout.
  EXPECT_EQ(done.snapshot().node_name(), "k8s-master");
  EXPECT_EQ(done.snapshot().sha256().size(), 64u);
  ASSERT_FALSE(done.snapshot().path().empty());
  auto file = ReadFileToString(done.snapshot().path());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), done.snapshot().size_bytes());
  EXPECT_TRUE(absl::StartsWith(done.snapshot().path(), node("k8s-master").root));
  // Nothing left held: every lease verified and released.
  EXPECT_TRUE(Leases(false).empty());
  // Running it again changes nothing.
  const size_t calls = commands_.size();
  auto again = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH);
  ASSERT_TRUE(again.ok()) << again.status();
  StepFor(absl::Minutes(30));
  EXPECT_EQ(commands_.size(), calls);
}

TEST_F(K8sRolloutSimTest, AMinorRolloutSwitchesEverySourceThenUpgradesInOrder) {
  auto started = Start("1.31.1", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING) << started->message();
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(4))) << Get().ShortDebugString();
  ASSERT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << Get().ShortDebugString();
  ExpectAllAt("1.31.1-1.1");
  for (auto& n : nodes_) {
    std::string source = ReadFileToString(n->root + kSourceFile).value_or("");
    EXPECT_THAT(source, HasSubstr("signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
                                  "https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /"))
        << n->name;
  }
  EXPECT_EQ(KubeadmCalls().front(), "k8s-master: kubeadm upgrade plan v1.31.1");
  EXPECT_EQ(KubeadmCalls().back(), "k8s-node1: kubeadm upgrade node");
}

struct FailureCase {
  const char* name;
  std::string node;
  tended::v1::K8sUpgradeKind kind;
  // A command containing this fails; or, when empty, the package step named below fails.
  std::string command;
  std::string failing_package_step;
};

// gtest prints the parameter in test names and failures: the case's name is enough.
void PrintTo(const FailureCase& failure, std::ostream* os) { *os << failure.name; }

class K8sRolloutFailureTest : public K8sRolloutSimTest,
                              public ::testing::WithParamInterface<FailureCase> {};

TEST_P(K8sRolloutFailureTest, AFailedStepStopsTheRolloutWithTheNodeHeld) {
  const FailureCase& failure = GetParam();
  Node& failing = node(failure.node);
  if (!failure.command.empty()) {
    failing.commands.FailOn(failure.command, 1, "error execution phase: injected failure");
  } else if (failure.failing_package_step == "snapshot") {
    // The real etcd stays up; this agent points at a closed port instead.
    agent::k8s::EtcdSnapshotterOptions options;
    options.snapshot.endpoint = "http://127.0.0.1:1";
    options.snapshot.timeout = absl::Seconds(5);
    failing.etcd = std::make_unique<agent::k8s::GrpcEtcdSnapshotter>(
        options, RootPath(failing.root), failing.name, clock_);
    failing.steps = std::make_unique<agent::k8s::K8sStepRunner>(
        agent::k8s::K8sStepRunner::Dependencies{&failing.packages, &failing.commands,
                                                failing.installed.get(), failing.etcd.get()},
        RootPath(failing.root),
        agent::k8s::StepRunnerOptions{.apt_source_file = kSourceFile,
                                      .repo_url_pattern = kPattern});
    failing.agent.reset();
    StartAgent(failing);
  } else if (failure.failing_package_step == "source") {
    // Someone edited the node's source by hand: no line names the repository any more.
    ASSERT_TRUE(WriteFileAtomically(failing.root + kSourceFile,
                                    "deb http://deb.debian.org/debian bookworm main\n")
                    .ok());
  } else if (failure.failing_package_step == "containerd") {
    // The control plane's containerd is older than the workers': its first lease starts
    // with the pinned containerd install, which fails.
    for (auto& n : nodes_) {
      if (n->name != failure.node) n->packages.installed["containerd"] = "1.6.24~ds1-1";
    }
    failing.packages.available_versions["containerd"] = {"1.6.24~ds1-1", "1.6.20~ds1-1"};
    failing.packages.install_pinned_error =
        absl::FailedPreconditionError("dpkg: error processing package containerd (injected)");
    StepFor(absl::Minutes(1));  // Every node reports its containerd.
  } else {
    failing.packages.install_pinned_error =
        absl::FailedPreconditionError("dpkg: error processing package (injected)");
    // Only the package step named fails: the other pinned installs come first or never.
    if (failure.failing_package_step == "kubelet_packages") {
      failing.packages.install_pinned_error = absl::OkStatus();
      failing.packages.available_versions["kubelet"] = {"1.30.2-1.1"};
      failing.packages.on_update = nullptr;
    }
  }
  const std::map<std::string, std::string> before = [&] {
    std::map<std::string, std::string> versions;
    for (auto& n : nodes_) versions[n->name] = n->packages.installed["kubeadm"];
    return versions;
  }();
  auto started =
      Start(failure.kind == tended::v1::K8S_UPGRADE_KIND_MINOR ? "1.31.1" : "1.30.5", failure.kind);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(4))) << Get().ShortDebugString();
  K8sRollout failed = Get();
  ASSERT_EQ(failed.state(), tended::v1::K8S_ROLLOUT_STATE_FAILED) << failed.ShortDebugString();
  EXPECT_THAT(failed.message(), HasSubstr(failure.node));
  if (failure.failing_package_step == "containerd") {
    EXPECT_THAT(failed.message(), HasSubstr("containerd_fix failed"));
    EXPECT_EQ(failing.packages.installed["kubeadm"], "1.30.2-1.1");
  }
  if (failure.failing_package_step == "source") {
    EXPECT_THAT(failed.message(), HasSubstr("apt_source_switch failed"));
  }
  // The failing node's lease stays held for an operator, and says why.
  std::vector<Lease> held = Leases(false);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].node_name(), failure.node);
  EXPECT_THAT(held[0].status_message(), HasSubstr("the rollout stopped"));
  // Every node states where it stands; nodes after the failing one were not touched.
  bool after = false;
  for (const auto& rollout_node : failed.nodes()) {
    if (after) {
      EXPECT_EQ(rollout_node.progress(), tended::v1::K8S_NODE_PROGRESS_PENDING)
          << rollout_node.ShortDebugString();
      EXPECT_EQ(node(rollout_node.node_name()).packages.installed["kubeadm"],
                before.at(rollout_node.node_name()));
      EXPECT_TRUE(node(rollout_node.node_name()).commands.calls().empty());
    }
    if (rollout_node.node_name() == failure.node) {
      EXPECT_EQ(rollout_node.progress(), tended::v1::K8S_NODE_PROGRESS_FAILED);
      after = true;
    }
  }
  // Hours later nothing else moved.
  const size_t calls = commands_.size();
  StepFor(absl::Hours(2));
  EXPECT_EQ(commands_.size(), calls);
  EXPECT_EQ(Leases(false).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    EachStage, K8sRolloutFailureTest,
    ::testing::Values(FailureCase{"EtcdSnapshot", "k8s-master", tended::v1::K8S_UPGRADE_KIND_PATCH,
                                  "", "snapshot"},
                      FailureCase{"ContainerdFix", "k8s-master", tended::v1::K8S_UPGRADE_KIND_PATCH,
                                  "", "containerd"},
                      FailureCase{"KubeadmPackage", "k8s-master",
                                  tended::v1::K8S_UPGRADE_KIND_PATCH, "", "kubeadm_package"},
                      FailureCase{"WorkerAptSourceSwitch", "k8s-node3",
                                  tended::v1::K8S_UPGRADE_KIND_MINOR, "", "source"},
                      FailureCase{"KubeadmPlan", "k8s-master", tended::v1::K8S_UPGRADE_KIND_PATCH,
                                  "upgrade plan", ""},
                      FailureCase{"KubeadmApply", "k8s-master", tended::v1::K8S_UPGRADE_KIND_PATCH,
                                  "upgrade apply", ""},
                      FailureCase{"ControlPlaneKubeletRestart", "k8s-master",
                                  tended::v1::K8S_UPGRADE_KIND_PATCH, "restart kubelet", ""},
                      FailureCase{"WorkerKubeletPackages", "k8s-node3",
                                  tended::v1::K8S_UPGRADE_KIND_PATCH, "", "kubelet_packages"},
                      FailureCase{"WorkerKubeadmNode", "k8s-node2",
                                  tended::v1::K8S_UPGRADE_KIND_PATCH, "upgrade node", ""},
                      FailureCase{"WorkerDaemonReload", "k8s-node1",
                                  tended::v1::K8S_UPGRADE_KIND_MINOR, "daemon-reload", ""}),
    [](const ::testing::TestParamInfo<FailureCase>& info) { return info.param.name; });

TEST_F(K8sRolloutSimTest, AnAgentCrashInsideEveryStepResumesIt) {
  // Inside each step (a kubeadm or systemctl call, the lists refreshed after the source
  // switch), the journal on disk is what a crash would leave; the dying process reaches the
  // coordinator no more, and after the step returns it is replaced by a new process on that
  // journal. The new agent must begin the same step again and run it again.
  std::set<std::string> crashed_in;
  auto crash_inside = [&](Node& n, const std::string& what) {
    if (!crashed_in.insert(absl::StrCat(n.name, "/", what)).second) return;
    crashed_journal_ = ReadFileToString(n.root + "/var/lib/tended/agent-state.json").value_or("");
    EXPECT_THAT(crashed_journal_, HasSubstr("k8s_step_in_flight")) << n.name << " " << what;
    crash_after_run_ = n.name;
    // The process dies before it can report: the coordinator never hears of the step.
    n.client->SetReachable(false);
  };
  for (auto& n : nodes_) {
    Node* raw = n.get();
    raw->commands.OnRun([this, raw, crash_inside](const std::vector<std::string>& argv) {
      commands_.push_back(absl::StrCat(raw->name, ": ", agent::k8s::DescribeCommand(argv)));
      crash_inside(*raw, agent::k8s::DescribeCommand(argv));
    });
    raw->packages.on_update = [raw, crash_inside,
                               root = raw->root](testing::FakePackageManager& packages) {
      std::string text = ReadFileToString(root + kSourceFile).value_or("");
      std::string minor = absl::StrContains(text, "/v1.31/") ? "1.31" : "1.30";
      for (const char* package : {"kubeadm", "kubelet", "kubectl"}) {
        packages.available_versions[package] = Offered(minor);
      }
      if (minor == "1.31") crash_inside(*raw, "apt update");
    };
  }
  auto started = Start("1.31.1", tended::v1::K8S_UPGRADE_KIND_MINOR);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(6))) << Get().ShortDebugString();
  ASSERT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << Get().ShortDebugString();
  ExpectAllAt("1.31.1-1.1");
  // Every command step crashed once and ran again: each appears twice in a row.
  EXPECT_GE(agent_crashes_, 15);
  EXPECT_THAT(KubeadmCalls(),
              ElementsAre("k8s-master: kubeadm upgrade plan v1.31.1",
                          "k8s-master: kubeadm upgrade plan v1.31.1",
                          "k8s-master: kubeadm upgrade apply v1.31.1 --yes",
                          "k8s-master: kubeadm upgrade apply v1.31.1 --yes",
                          "k8s-node4: kubeadm upgrade node", "k8s-node4: kubeadm upgrade node",
                          "k8s-node3: kubeadm upgrade node", "k8s-node3: kubeadm upgrade node",
                          "k8s-node2: kubeadm upgrade node", "k8s-node2: kubeadm upgrade node",
                          "k8s-node1: kubeadm upgrade node", "k8s-node1: kubeadm upgrade node"));
}

TEST_F(K8sRolloutSimTest, ACoordinatorRestartAfterEveryStepResumesTheRollout) {
  for (auto& n : nodes_) {
    Node* raw = n.get();
    raw->commands.OnRun([this, raw](const std::vector<std::string>& argv) {
      commands_.push_back(absl::StrCat(raw->name, ": ", agent::k8s::DescribeCommand(argv)));
      restart_coordinator_ = true;
    });
  }
  auto started = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(6))) << Get().ShortDebugString();
  ASSERT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << Get().ShortDebugString();
  ExpectAllAt("1.30.5-1.1");
  // Master: plan, apply, kubelet restart; each worker: kubeadm node, kubelet restart.
  EXPECT_GE(coordinator_restarts_, 11);
  EXPECT_EQ(KubeadmCalls().size(), 6u);
}

TEST_F(K8sRolloutSimTest, AHaltAfterTheGrantStopsTheNextStepUntilResumed) {
  // Halt the moment the control plane's snapshot is done.
  bool halted = false;
  auto started = Start("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(StepUntil([&] { return Get().has_snapshot() && Get().snapshot().size_bytes() > 0; },
                        absl::Hours(1)));
  tended::v1::HaltRequest halt;
  halt.set_reason("incident");
  ASSERT_TRUE(coordinator_->Halt(halt).ok());
  halted = true;
  const size_t calls = commands_.size();
  const std::string kubeadm = node("k8s-master").packages.installed["kubeadm"];
  StepFor(absl::Hours(2));
  EXPECT_EQ(commands_.size(), calls) << "a step ran during the halt";
  EXPECT_EQ(node("k8s-master").packages.installed["kubeadm"], kubeadm);
  EXPECT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_RUNNING);
  ASSERT_TRUE(coordinator_->Resume().ok());
  ASSERT_TRUE(StepUntil([&] { return Ended(); }, absl::Hours(6))) << Get().ShortDebugString();
  EXPECT_TRUE(halted);
  EXPECT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED) << Get().ShortDebugString();
}

// Rollouts beside reboots and OS upgrades, under chaos: on a seeded schedule nodes come to
// need a reboot or get OS upgrades, agents crash and restart on their journals, and the
// coordinator restarts on its state. A patch and then a minor rollout run through it. The
// one promise is checked after every step (at most one node disrupted, whatever the kind:
// concurrency 1 and no overlap of kinds) and at the moment of every act (a kubeadm or
// systemctl call, a dpkg run, a reboot): the acting node holds a current lease of that kind
// in DISRUPTING. Three seeds by default; TENDED_K8S_CHAOS_SEEDS=N runs N.
class K8sRolloutChaosTest : public K8sRolloutSimTest {
 protected:
  void SetUp() override {
    os_upgrades_ = true;
    coordinator::LeasePolicy os;
    os.soak = absl::ZeroDuration();
    os.expected_duration = absl::Minutes(30);
    os.renew_deadline = absl::Minutes(5);
    os.return_deadline = absl::Minutes(30);
    config_.leases[tended::v1::LEASE_KIND_OS_UPGRADE] = os;
    agent_config_.apt.enabled = true;
    agent_config_.apt.plan_interval = absl::Minutes(2);
    agent_config_.apt.update_interval = absl::ZeroDuration();
    K8sRolloutSimTest::SetUp();
    if (IsSkipped()) return;
    for (auto& n : nodes_) {
      Node* raw = n.get();
      raw->commands.OnRun([this, raw](const std::vector<std::string>& argv) {
        commands_.push_back(absl::StrCat(raw->name, ": ", agent::k8s::DescribeCommand(argv)));
        CheckActing(raw->name, tended::v1::LEASE_KIND_K8S_UPGRADE, "a Kubernetes step");
      });
      raw->packages.on_apply = [this, raw](const agent::apt::UpgradePlan& plan) {
        CheckActing(raw->name, tended::v1::LEASE_KIND_OS_UPGRADE, "dpkg");
        ++os_upgrades_done_;
        agent::apt::ApplyResult result;
        result.installed = plan.upgrades;
        raw->packages.plan.upgrades.clear();
        return absl::StatusOr<agent::apt::ApplyResult>(result);
      };
      raw->checked =
          std::make_unique<simulation::CheckedRebooter>(raw->rebooter.get(), [this, raw] {
            CheckActing(raw->name, tended::v1::LEASE_KIND_REBOOT, "a reboot");
            ++reboots_;
          });
      raw->agent.reset();
      raw->client = std::make_unique<testing::InProcessCoordinatorClient>(&endpoint_);
      StartAgent(*raw);
    }
  }

  void CheckActing(const std::string& node, tended::v1::LeaseKind kind, const std::string& act) {
    if (coordinator_ == nullptr) return;
    int held = 0;
    for (const Lease& lease : Leases(false)) {
      if (lease.node_name() != node) {
        ADD_FAILURE() << act << " on " << node << " while " << lease.node_name() << " holds "
                      << lease.id() << " (seed " << seed_ << ")";
        ++violations_;
        continue;
      }
      if (lease.kind() == kind && lease.phase() == tended::v1::LEASE_PHASE_DISRUPTING) ++held;
    }
    if (held != 1) {
      ADD_FAILURE() << act << " on " << node << " without a DISRUPTING "
                    << tended::v1::LeaseKind_Name(kind) << " lease (seed " << seed_ << ")";
      ++violations_;
    }
  }

  void Chaos(std::mt19937_64& rng) {
    auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
    Node& n = *nodes_[std::uniform_int_distribution<size_t>(0, nodes_.size() - 1)(rng)];
    if (chance(0.004)) {
      ASSERT_TRUE(testing::MarkRebootRequired(n.root, "linux-image-6.1.0-29-amd64").ok());
      ++reboot_needs_;
    } else if (chance(0.004) && n.packages.plan.upgrades.empty()) {
      n.packages.plan.upgrades = {{"libssl3", "3.0.11-1", absl::StrCat("3.0.", ++ssl_, "-1"),
                                   "o=Debian,n=bookworm-security"}};
    } else if (chance(0.002)) {
      n.agent.reset();
      n.client = std::make_unique<testing::InProcessCoordinatorClient>(&endpoint_);
      StartAgent(n);
      ++agent_crashes_;
    } else if (chance(0.001)) {
      restart_coordinator_ = true;
    }
  }

  // Starts the rollout, again and again while preflight says not now (a reboot soaking).
  bool StartWhenPreflightPasses(const std::string& target, tended::v1::K8sUpgradeKind kind,
                                std::mt19937_64& rng) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto started = Start(target, kind);
      if (started.ok() && started->state() == tended::v1::K8S_ROLLOUT_STATE_RUNNING) return true;
      for (int i = 0; i < 12; ++i) {
        Chaos(rng);
        Step();
      }
    }
    return false;
  }

  uint64_t seed_ = 0;
  int violations_ = 0;
  int reboots_ = 0;
  int reboot_needs_ = 0;
  int os_upgrades_done_ = 0;
  int ssl_ = 11;
};

TEST_F(K8sRolloutChaosTest, RolloutsBesideRebootsAndOsUpgradesKeepThePromise) {
  const int64_t seeds = std::getenv("TENDED_K8S_CHAOS_SEEDS") != nullptr
                            ? std::atoi(std::getenv("TENDED_K8S_CHAOS_SEEDS"))
                            : 3;
  for (int64_t s = 0; s < seeds; ++s) {
    if (s > 0) {
      TearDown();
      SetUp();
    }
    seed_ = 20261206 + static_cast<uint64_t>(s);
    reboots_ = os_upgrades_done_ = agent_crashes_ = coordinator_restarts_ = 0;
    std::mt19937_64 rng(seed_);
    ASSERT_TRUE(StartWhenPreflightPasses("1.30.5", tended::v1::K8S_UPGRADE_KIND_PATCH, rng))
        << Get().ShortDebugString();
    const absl::Time patch_deadline = clock_.Now() + absl::Hours(12);
    while (!Ended() && clock_.Now() < patch_deadline) {
      Chaos(rng);
      Step();
      if (HasFatalFailure()) return;
    }
    ASSERT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED)
        << "seed " << seed_ << ": " << Get().ShortDebugString();
    ASSERT_TRUE(StartWhenPreflightPasses("1.31.1", tended::v1::K8S_UPGRADE_KIND_MINOR, rng));
    const absl::Time minor_deadline = clock_.Now() + absl::Hours(12);
    while (!Ended() && clock_.Now() < minor_deadline) {
      Chaos(rng);
      Step();
      if (HasFatalFailure()) return;
    }
    ASSERT_EQ(Get().state(), tended::v1::K8S_ROLLOUT_STATE_SUCCEEDED)
        << "seed " << seed_ << ": " << Get().ShortDebugString();
    // The chaos stops; every reboot need and OS upgrade is served.
    ASSERT_TRUE(StepUntil(
        [&] {
          if (!Leases(false).empty()) return false;
          for (auto& n : nodes_) {
            if (!n->packages.plan.upgrades.empty()) return false;
            if (PathExists(n->root + "/var/run/reboot-required")) return false;
          }
          return true;
        },
        absl::Hours(6)))
        << "seed " << seed_;
    ExpectAllAt("1.31.1-1.1");
    EXPECT_EQ(violations_, 0);
    // A run that exercised nothing proves nothing.
    EXPECT_GT(reboots_, 0) << "seed " << seed_;
    EXPECT_GT(os_upgrades_done_, 0) << "seed " << seed_;
    std::printf(
        "seed %llu: %d reboots, %d OS upgrades, %d agent crashes, %d coordinator "
        "restarts, 0 promise violations\n",
        static_cast<unsigned long long>(seed_), reboots_, os_upgrades_done_, agent_crashes_,
        coordinator_restarts_);
  }
}

}  // namespace
}  // namespace tended
