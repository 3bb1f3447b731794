// The tendedctl program against a coordinator served on loopback with a small fleet (two
// scripted agents: one holds the reboot lease, one waits behind it): status and explain
// answer "what is it doing and why?", --json prints parseable JSON, halt --reason,
// the address from the environment and from tendedctl.yaml, and the exit codes
// for a refusal (1), a usage error (2) and an unreachable coordinator (3).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

struct CtlRun {
  int exit = -1;
  std::string out;
  std::string err;
};

class TendedctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto served = testing::ServedCoordinator::Start(
        testing::LoopbackCoordinatorConfig(dir_.Path("state"), absl::Hours(1)));
    ASSERT_TRUE(served.ok()) << served.status();
    served_ = std::move(*served);
    for (auto* agent : {&holder_, &waiter_}) {
      agent->SetChannel(served_->NewChannel());
      agent->SetRebootRequired(true, {"linux-image-6.1.0-28-amd64"});
      ASSERT_TRUE(agent->Report().ok());
      heartbeat_.Add(agent);
    }
    // The coordinator grants nothing until its recovery after an empty start ends.
    tended::v1::AcquireLeaseResponse response;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      ASSERT_TRUE(
          holder_.Acquire(tended::v1::LEASE_KIND_REBOOT, "reboot-required", &response).ok());
      if (!response.lease().id().empty()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_FALSE(response.lease().id().empty()) << "no lease granted within 60 s";
    lease_id_ = response.lease().id();
    ASSERT_TRUE(waiter_.Acquire(tended::v1::LEASE_KIND_REBOOT, "reboot-required", &response).ok());
    ASSERT_TRUE(response.lease().id().empty());
  }

  // Runs tendedctl with `args` (no --address unless given) and `env` added to a clean
  // environment (HOME and XDG_CONFIG_HOME point into the scratch folder).
  CtlRun Run(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    const std::string out_path = dir_.Path(absl::StrCat("ctl-", ++runs_, ".out"));
    const std::string err_path = dir_.Path(absl::StrCat("ctl-", runs_, ".err"));
    std::vector<std::string> argv = {TENDED_BINARY_DIR "/coordinator/ctl/tendedctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    env.push_back("HOME=" + dir_.Path("home"));
    env.push_back("XDG_CONFIG_HOME=" + dir_.Path("xdg"));
    env.push_back("TZ=UTC");
    CtlRun run;
    pid_t pid = fork();
    if (pid == 0) {
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> c_argv, c_env;
      for (auto& arg : argv) c_argv.push_back(arg.data());
      for (auto& var : env) c_env.push_back(var.data());
      c_argv.push_back(nullptr);
      c_env.push_back(nullptr);
      execve(c_argv[0], c_argv.data(), c_env.data());
      _exit(127);
    }
    if (pid < 0) return run;
    int status = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    run.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadFileToString(out_path).value_or("");
    run.err = ReadFileToString(err_path).value_or("");
    return run;
  }

  std::vector<std::string> At(std::vector<std::string> args) {
    args.insert(args.begin(), {"--insecure", "--address", served_->address()});
    return args;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServedCoordinator> served_;
  testing::WireAgent holder_{"node-a", "instance-a", "boot-a"};
  testing::WireAgent waiter_{"node-b", "instance-b", "boot-b"};
  testing::FleetHeartbeat heartbeat_{absl::Milliseconds(200)};
  std::string lease_id_;
  int runs_ = 0;
};

TEST_F(TendedctlTest, StatusShowsEachNodeItsLeaseAndWhatItWaitsFor) {
  CtlRun run = Run(At({"status"}));
  ASSERT_EQ(run.exit, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("fleet: running, 2 nodes, 1 disrupted, 1 waiting"));
  EXPECT_THAT(run.out, HasSubstr("NODE"));
  EXPECT_THAT(run.out, AllOf(HasSubstr("node-a"), HasSubstr(lease_id_), HasSubstr("renew by")));
  EXPECT_THAT(run.out, HasSubstr("reboot: concurrency"));
}

TEST_F(TendedctlTest, StatusAsJsonHoldsNodesLeasesAndGates) {
  CtlRun run = Run(At({"--json", "status"}));
  ASSERT_EQ(run.exit, 0) << run.err;
  nlohmann::json json = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << run.out;
  EXPECT_EQ(json["nodes"]["nodes"].size(), 2u);
  EXPECT_EQ(json["leases"]["leases"][0]["id"], lease_id_);
  EXPECT_FALSE(json["gates"]["explanations"].empty());
}

TEST_F(TendedctlTest, ExplainGivesEveryGateAndWhy) {
  CtlRun run = Run(At({"explain", "reboot"}));
  ASSERT_EQ(run.exit, 0) << run.err;
  EXPECT_THAT(run.out, AllOf(HasSubstr("reboot: blocked, waiting: node-b"),
                             HasSubstr("BLOCK concurrency"), HasSubstr("pass  halt")));
  EXPECT_EQ(Run(At({"explain", "sideways"})).exit, 2);
}

TEST_F(TendedctlTest, HaltWithReasonFlagThenResumeAsJson) {
  CtlRun halt = Run(At({"halt", "--reason", "storage incident"}));
  ASSERT_EQ(halt.exit, 0) << halt.err;
  EXPECT_THAT(halt.out, HasSubstr("storage incident"));
  EXPECT_THAT(Run(At({"status"})).out, HasSubstr("fleet: HALTED"));
  CtlRun resume = Run(At({"--json", "resume"}));
  ASSERT_EQ(resume.exit, 0) << resume.err;
  EXPECT_FALSE(nlohmann::json::parse(resume.out, nullptr, false).is_discarded()) << resume.out;
}

TEST_F(TendedctlTest, EveryReadingCommandPrintsJson) {
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"nodes"},
                                             {"leases"},
                                             {"gates"},
                                             {"explain"},
                                             {"events"},
                                             {"audit"},
                                             {"k8s-rollout", "list"}}) {
    std::vector<std::string> args = {"--json"};
    args.insert(args.end(), command.begin(), command.end());
    CtlRun run = Run(At(args));
    EXPECT_EQ(run.exit, 0) << command[0] << ": " << run.err;
    // events prints one JSON object per event; the others one document.
    if (command[0] == "events") {
      EXPECT_THAT(run.out, HasSubstr("\"type\": \"EVENT_TYPE_LEASE_GRANTED\""));
      continue;
    }
    EXPECT_FALSE(nlohmann::json::parse(run.out, nullptr, false).is_discarded())
        << command[0] << ": " << run.out;
  }
}

TEST_F(TendedctlTest, ARefusalExitsOneAndSaysWhy) {
  CtlRun run = Run(At({"release", "reboot-nobody-99", "--reason", "test"}));
  EXPECT_EQ(run.exit, 1);
  EXPECT_THAT(run.err, AllOf(HasSubstr("refused"), HasSubstr("NOT_FOUND")));
}

TEST_F(TendedctlTest, AnUnreachableCoordinatorExitsThree) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  CtlRun run = Run({"--insecure", "nodes"}, {"TENDED_ADDRESS=" + address});
  EXPECT_EQ(run.exit, 3);
  EXPECT_THAT(run.err, AllOf(HasSubstr("cannot reach the coordinator at " + address),
                             HasSubstr("TENDED_ADDRESS")));
}

TEST_F(TendedctlTest, AddressFromEnvironmentAndFromConfigFile) {
  CtlRun from_env = Run({"--insecure", "nodes"}, {"TENDED_ADDRESS=" + served_->address()});
  EXPECT_EQ(from_env.exit, 0) << from_env.err;
  EXPECT_THAT(from_env.out, HasSubstr("node-b"));

  ASSERT_TRUE(MakeDirectories(dir_.Path("xdg/tended")).ok());
  ASSERT_TRUE(
      WriteFileAtomically(dir_.Path("xdg/tended/tendedctl.yaml"),
                          absl::StrCat("address: \"", served_->address(), "\"\ninsecure: true\n"))
          .ok());
  CtlRun from_file = Run({"nodes"});
  EXPECT_EQ(from_file.exit, 0) << from_file.err;
  EXPECT_THAT(from_file.out, HasSubstr("node-a"));

  ASSERT_TRUE(WriteFileAtomically(dir_.Path("xdg/tended/tendedctl.yaml"), "adress: typo\n").ok());
  CtlRun bad = Run({"nodes"});
  EXPECT_EQ(bad.exit, 2);
  EXPECT_THAT(bad.err, HasSubstr("adress"));
}

}  // namespace
}  // namespace tended
