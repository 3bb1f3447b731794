// TakeSnapshot against a real etcd (Debian's /usr/bin/etcd, 3.4.23) on loopback, over plain
// http and over https with client certificates as on a kubeadm control plane: etcdctl accepts
// the file (`snapshot status`, and `snapshot restore`, which checks the sha256 trailer), and
// the record's sha256 is that of the database part of the file.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/apt/subprocess.h"
#include "agent/etcd/snapshot.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/real_etcd.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/etcd/fake_maintenance_server.h"

namespace tended::agent::etcd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kKeys = 200;

absl::StatusOr<apt::ProcessResult> Etcdctl(std::vector<std::string> args) {
  args.insert(args.begin(), testing::kEtcdctlProgram);
  return apt::RunProcess(args, {"ETCDCTL_API=3"});
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
absl::StatusOr<std::pair<testing::EtcdServerTls, SnapshotOptions>> MakeTls(
    const testing::TempDir& dir) {
  const std::string ca_key = dir.Path("ca.key"), ca_crt = dir.Path("ca.crt");
  std::vector<std::vector<std::string>> commands = {{"openssl",
                                                     "req",
                                                     "-x509",
                                                     "-newkey",
                                                     "ec",
                                                     "-pkeyopt",
                                                     "ec_paramgen_curve:prime256v1",
                                                     "-nodes",
                                                     "-keyout",
                                                     ca_key,
                                                     "-out",
                                                     ca_crt,
                                                     "-days",
                                                     "2",
                                                     "-subj",
                                                     "/CN=tended-test-ca",
                                                     "-addext",
                                                     "basicConstraints=critical,CA:TRUE",
                                                     "-addext",
                                                     "keyUsage=critical,keyCertSign,cRLSign"}};
  for (const std::string name : {"server", "client"}) {
    const std::string ext = dir.Path(name + ".ext");
    RETURN_IF_ERROR(WriteFileAtomically(
        ext, name == "server"
                 ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                 : "extendedKeyUsage=clientAuth\n"));
    commands.push_back({"openssl", "req", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                        dir.Path(name + ".key"), "-out", dir.Path(name + ".csr"), "-subj",
                        "/CN=tended-test-" + name});
    commands.push_back({"openssl", "x509", "-req", "-in", dir.Path(name + ".csr"), "-CA", ca_crt,
                        "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-out",
                        dir.Path(name + ".crt"), "-extfile", ext});
  }
  for (const std::vector<std::string>& command : commands) {
    ASSIGN_OR_RETURN(apt::ProcessResult run, apt::RunProcess(command));
    if (run.exit_code != 0) {
      return absl::InternalError(absl::StrCat("openssl failed: ", run.output));
    }
  }
  SnapshotOptions client;
  client.ca_file = ca_crt;
  client.cert_file = dir.Path("client.crt");
  client.key_file = dir.Path("client.key");
  return std::make_pair(
      testing::EtcdServerTls{ca_crt, dir.Path("server.crt"), dir.Path("server.key")}, client);
}

class RealEtcdSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(testing::kEtcdProgram, X_OK) != 0 ||
        ::access(testing::kEtcdctlProgram, X_OK) != 0) {
      GTEST_SKIP() << "etcd or etcdctl is not installed (Debian packages etcd-server, "
                      "etcd-client)";
    }
  }

  // etcdctl's view of the file, and a check that the record describes it.
  nlohmann::json CheckSnapshotFile(const tended::v1::EtcdSnapshotRecord& record) {
    absl::StatusOr<std::string> file = ReadFileToString(record.path());
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok() || file->size() <= 32) return {};
    EXPECT_EQ(record.size_bytes(), file->size());
    const std::string database = file->substr(0, file->size() - 32);
    EXPECT_EQ(record.sha256(), absl::BytesToHexString(Sha256Of(database)));
    EXPECT_EQ(record.sha256(), absl::BytesToHexString(file->substr(file->size() - 32)));

    absl::StatusOr<apt::ProcessResult> status =
        Etcdctl({"snapshot", "status", record.path(), "-w", "json"});
    EXPECT_TRUE(status.ok()) << status.status();
    if (!status.ok()) return {};
    EXPECT_EQ(status->exit_code, 0) << status->output;
    nlohmann::json json = nlohmann::json::parse(status->output, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << status->output;
    if (json.is_discarded()) return {};
    EXPECT_EQ(json.value("totalSize", 0u), database.size()) << json.dump();
    EXPECT_NE(json.value("hash", 0u), 0u) << json.dump();
    return json;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
};

TEST_F(RealEtcdSnapshotTest, EtcdctlAcceptsTheSnapshotAndRestoresIt) {
  absl::StatusOr<std::unique_ptr<testing::RealEtcd>> etcd = testing::RealEtcd::Start(dir_.path());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE((*etcd)->Put(absl::StrCat("/registry/test/key-", i), std::string(1000, 'v')).ok());
  }

  SnapshotOptions options;
  options.endpoint = (*etcd)->client_url();
  const std::string path = dir_.Path(SnapshotFileName(clock_.Now()));
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = TakeSnapshot(options, path, clock_);
  ASSERT_TRUE(record.ok()) << record.status() << "\n" << (*etcd)->process().LogTail();
  EXPECT_EQ(record->path(), path);
  EXPECT_THAT(record->etcd_version(), StartsWith("3."));

  nlohmann::json status = CheckSnapshotFile(*record);
  EXPECT_GE(status.value("revision", 0), kKeys + 1) << status.dump();
  EXPECT_GE(status.value("totalKey", 0), kKeys) << status.dump();

  // etcdctl 3.4's restore checks the trailer against the database (etcdutl's does the same).
  absl::StatusOr<apt::ProcessResult> restore =
      Etcdctl({"snapshot", "restore", path, "--data-dir", dir_.Path("restored")});
  ASSERT_TRUE(restore.ok());
  EXPECT_EQ(restore->exit_code, 0) << restore->output;
  EXPECT_TRUE(PathExists(dir_.Path("restored/member/snap/db")));

  // And refuses the file once a byte of the database changed: the trailer is what it checks.
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[bytes->size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("corrupt.db"), *bytes).ok());
  absl::StatusOr<apt::ProcessResult> refused =
      Etcdctl({"snapshot", "restore", dir_.Path("corrupt.db"), "--data-dir", dir_.Path("refused")});
  ASSERT_TRUE(refused.ok());
  EXPECT_NE(refused->exit_code, 0) << refused->output;
  EXPECT_THAT(refused->output, HasSubstr("sha256"));
}

TEST_F(RealEtcdSnapshotTest, TakesItOverHttpsWithAClientCertificate) {
  absl::StatusOr<std::pair<testing::EtcdServerTls, SnapshotOptions>> tls = MakeTls(dir_);
  ASSERT_TRUE(tls.ok()) << tls.status();
  absl::StatusOr<std::unique_ptr<testing::RealEtcd>> etcd =
      testing::RealEtcd::Start(dir_.path(), &tls->first);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  ASSERT_THAT((*etcd)->client_url(), StartsWith("https://127.0.0.1:"));

  SnapshotOptions options = tls->second;
  options.endpoint = (*etcd)->client_url();
  options.timeout = absl::Seconds(30);
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record =
      TakeSnapshot(options, dir_.Path("tls.db"), clock_);
  ASSERT_TRUE(record.ok()) << record.status() << "\n" << (*etcd)->process().LogTail();
  CheckSnapshotFile(*record);

  // Without the client certificate etcd (--client-cert-auth) turns us away; nothing is left.
  SnapshotOptions anonymous = options;
  anonymous.cert_file.clear();
  anonymous.key_file.clear();
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> refused =
      TakeSnapshot(anonymous, dir_.Path("anonymous.db"), clock_);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("etcd snapshot from " + options.endpoint + " failed"));
  EXPECT_FALSE(PathExists(dir_.Path("anonymous.db")));
}

}  // namespace
}  // namespace tended::agent::etcd
