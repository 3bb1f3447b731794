// The shipped tended-agent program: it does not load libapt-pkg (the engine runs in
// tended-apt-engine), and `tended-agent plan` still works by running that engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "agent/apt/subprocess.h"
#include "common/file_util.h"
#include "common/x509_mint.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgent[] = TENDED_BINARY_DIR "/agent/tended-agent";
constexpr char kEngine[] = TENDED_BINARY_DIR "/agent/tended-apt-engine";

std::string DynamicSection(const char* program) {
  absl::StatusOr<apt::ProcessResult> run = apt::RunProcess({"readelf", "--dynamic", program});
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return "";
  EXPECT_EQ(run->exit_code, 0) << run->output;
  return run->output;
}

TEST(AgentBinaryTest, TheDaemonDoesNotLoadLibaptPkg) {
  std::string agent = DynamicSection(kAgent);
  EXPECT_THAT(agent, HasSubstr("libgrpc"));  // The section was read.
  EXPECT_THAT(agent, Not(HasSubstr("libapt-pkg")));
  EXPECT_THAT(DynamicSection(kEngine), HasSubstr("libapt-pkg"));
}

TEST(AgentBinaryTest, PlanRunsTheEngine) {
  absl::StatusOr<apt::ProcessResult> help = apt::RunProcess({kAgent, "plan", "--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0) << help->output;
  EXPECT_THAT(help->output, HasSubstr("usage: tended-agent plan [--root DIR]"));

  absl::StatusOr<apt::ProcessResult> bad = apt::RunProcess({kAgent, "plan", "--bogus"});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 2);
  EXPECT_THAT(bad->output, HasSubstr("unknown argument \"--bogus\""));

  absl::StatusOr<apt::ProcessResult> no_root =
      apt::RunProcess({kAgent, "plan", "--root", "/nonexistent/tended-root"});
  ASSERT_TRUE(no_root.ok());
  EXPECT_EQ(no_root->exit_code, 1);
  EXPECT_THAT(no_root->output, HasSubstr("no dpkg database at /nonexistent/tended-root"));
}

// Started with a certificate that names another node, the agent stops at once with exit
// code 2 (a configuration error), naming both nodes, before it dials anything.
TEST(AgentBinaryTest, RefusesACertificateOfAnotherNode) {
  testing::TempDir dir;
  auto ca = CertificateAuthority::Create("agent binary test CA", absl::Hours(1));
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateSpec spec;
  spec.common_name = "system:node:k8s-node2";
  spec.organizations = {"system:nodes"};
  auto minted = ca->Issue(spec);
  ASSERT_TRUE(minted.ok()) << minted.status();
  ASSERT_TRUE(
      WriteFileAtomically(dir.Path("node.pem"), minted->cert_pem + minted->key_pem, 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("ca.crt"), ca->self().cert_pem).ok());
  {
    std::ofstream config(dir.Path("agent.yaml"));
    config << "node_name: k8s-node1\ncoordinator: 127.0.0.1:1\nroot: " << dir.path()
           << "\nreboot:\n  method: simulate\ntls:\n  cert_file: " << dir.Path("node.pem")
           << "\n  key_file: " << dir.Path("node.pem") << "\n  ca_file: " << dir.Path("ca.crt")
           << "\n";
  }
  absl::StatusOr<apt::ProcessResult> run =
      apt::RunProcess({kAgent, "--config", dir.Path("agent.yaml")}, {}, "", absl::Minutes(2));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 2) << run->output;
  EXPECT_THAT(run->output, HasSubstr("is node k8s-node2's (CN=system:node:k8s-node2), but this "
                                     "agent is node k8s-node1"));
}

}  // namespace
}  // namespace tended::agent
