// `tended-agent etcd-snapshot` end to end against a fake Maintenance server: in-process
// (RunSnapshotCommand) for its output and exit codes, and once through the built program.
#include "agent/etcd/snapshot_command.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "agent/apt/subprocess.h"
#include "agent/etcd/snapshot.h"
#include "common/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/etcd/fake_maintenance_server.h"

namespace tended::agent::etcd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kAgent[] = TENDED_BINARY_DIR "/agent/tended-agent";

class SnapshotCommandTest : public ::testing::Test {
 protected:
  int Run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return RunSnapshotCommand(args, clock_, out_, err_);
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::string database_ = FakeDatabase(70000);
  std::string sha256_ = absl::BytesToHexString(Sha256Of(database_));
};

TEST_F(SnapshotCommandTest, PrintsWhatItWrote) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_)), "3.5.21");
  const std::string out = dir_.Path("by-hand.db");
  ASSERT_EQ(Run({"--endpoint", server.endpoint(), "--out", out, "--timeout=30s"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "path: " + out + "\nsize: 70032 bytes\nsha256: " + sha256_ +
                            " (database, checked against etcd's trailer)\netcd version: 3.5.21\n");
  EXPECT_THAT(err_.str(), IsEmpty());
  EXPECT_TRUE(PathExists(out));
}

TEST_F(SnapshotCommandTest, NamesTheFileByTheTimeInsideAFolder) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_)));
  ASSERT_EQ(Run({"--endpoint=" + server.endpoint(), "--out=" + dir_.path() + "/"}), 0)
      << err_.str();
  const std::string expected = dir_.Path(SnapshotFileName(clock_.Now()));
  EXPECT_THAT(out_.str(), HasSubstr("path: " + expected + "\n"));
  EXPECT_TRUE(PathExists(expected));
}

TEST_F(SnapshotCommandTest, FailsWithTheReasonAndNoFile) {
  SnapshotResponses stream = EtcdStream(database_);
  stream.pop_back();
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(stream));
  const std::string out = dir_.Path("bad.db");
  EXPECT_EQ(Run({"--endpoint", server.endpoint(), "--out", out}), 1);
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("tended-agent etcd-snapshot: etcd snapshot from "),
                                HasSubstr("sha256 mismatch")));
  EXPECT_THAT(out_.str(), IsEmpty());
  EXPECT_FALSE(PathExists(out));
}

TEST_F(SnapshotCommandTest, RefusesBadArguments) {
  const std::string out = dir_.Path("x.db");
  struct Case {
    std::vector<std::string> args;
    std::string words;
  };
  for (const Case& c : std::vector<Case>{
           {{"--out", out}, "--endpoint is required"},
           {{"--endpoint", "http://127.0.0.1:2379"}, "--out is required"},
           {{"--endpoint", "http://127.0.0.1:2379", "--out", out, "--bogus"},
            "unknown argument \"--bogus\""},
           {{"--endpoint", "http://127.0.0.1:2379", "--out"}, "--out needs a value"},
           {{"--endpoint", "http://127.0.0.1:2379", "--out", out, "--timeout", "soon"},
            "--timeout \"soon\" is not a positive duration such as 90s or 2m"},
           {{"--endpoint", "http://127.0.0.1:2379", "--out", out, "--timeout", "-1s"},
            "not a positive duration"},
       }) {
    EXPECT_EQ(Run(c.args), 2) << c.words;
    EXPECT_THAT(err_.str(),
                AllOf(HasSubstr(c.words), HasSubstr("usage: tended-agent etcd-snapshot")));
  }
  EXPECT_EQ(Run({"--endpoint", "127.0.0.1:2379", "--out", out}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("must be http://HOST:PORT or https://HOST:PORT"));
  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("/etc/kubernetes/pki/etcd/healthcheck-client.crt"));
  EXPECT_FALSE(PathExists(out));
}

TEST_F(SnapshotCommandTest, TheProgramRunsIt) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_)));
  const std::string out = dir_.Path("program.db");
  absl::StatusOr<apt::ProcessResult> run =
      apt::RunProcess({kAgent, "etcd-snapshot", "--endpoint", server.endpoint(), "--out", out});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->output;
  EXPECT_THAT(run->output, AllOf(HasSubstr("path: " + out), HasSubstr("sha256: " + sha256_),
                                 HasSubstr("etcd version: 3.5.17")));
  absl::StatusOr<std::string> file = ReadFileToString(out);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*file, database_ + Sha256Of(database_));

  absl::StatusOr<apt::ProcessResult> bad = apt::RunProcess(
      {kAgent, "etcd-snapshot", "--endpoint", server.endpoint(), "--out", dir_.Path("a/b.db")});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 1);
  EXPECT_THAT(bad->output,
              HasSubstr("the folder " + dir_.Path("a") + " for the etcd snapshot does not exist"));
}

}  // namespace
}  // namespace tended::agent::etcd
