// TakeSnapshot against a fake Maintenance server: etcd's protocol gives etcd's file layout and
// a full record; a stream cut short, corrupted, failed, empty or too slow is refused with an
// error that says which, and leaves no file (not even a temporary one) behind.
#include <dirent.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "agent/etcd/snapshot.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/temp_dir.h"
#include "tests/unit/agent/etcd/fake_maintenance_server.h"

namespace tended::agent::etcd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr size_t kDatabaseSize = 3 * 32 * 1024 + 4096;  // Three full chunks and a short one.

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return {"<cannot list " + dir + ">"};
  while (struct dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(listing);
  return names;
}

class SnapshotFakeServerTest : public ::testing::Test {
 protected:
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> Take(FakeMaintenanceServer& server,
                                                      absl::Duration timeout = absl::Seconds(20)) {
    SnapshotOptions options;
    options.endpoint = server.endpoint();
    options.timeout = timeout;
    return TakeSnapshot(options, out_path_, clock_);
  }

  // The refusal leaves the folder as it was: empty.
  void ExpectRefused(const absl::StatusOr<tended::v1::EtcdSnapshotRecord>& record,
                     absl::StatusCode code, const std::string& words) {
    ASSERT_FALSE(record.ok()) << "taken: " << record->DebugString();
    EXPECT_EQ(record.status().code(), code) << record.status();
    EXPECT_THAT(std::string(record.status().message()), HasSubstr(words));
    EXPECT_THAT(FilesIn(dir_.path()), IsEmpty());
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::string database_ = FakeDatabase(kDatabaseSize);
  std::string out_path_ = dir_.Path("etcd.db");
};

TEST_F(SnapshotFakeServerTest, WritesTheDatabaseAndItsSha256AndFillsTheRecord) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_)));
  absl::Time asked_at = clock_.Now();
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = Take(server);
  ASSERT_TRUE(record.ok()) << record.status();

  absl::StatusOr<std::string> file = ReadFileToString(out_path_);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*file, database_ + Sha256Of(database_));
  EXPECT_EQ(record->path(), out_path_);
  EXPECT_EQ(record->size_bytes(), kDatabaseSize + 32);
  EXPECT_EQ(record->sha256(), absl::BytesToHexString(Sha256Of(database_)));
  EXPECT_EQ(FromProtoTimestamp(record->time()), asked_at);
  EXPECT_EQ(record->node_name(), "");
  // 3.4 and 3.5 do not say their version in the stream: Status does.
  EXPECT_EQ(record->etcd_version(), "3.5.17");
  EXPECT_EQ(server.status_calls(), 1);
  EXPECT_THAT(FilesIn(dir_.path()), UnorderedElementsAre("etcd.db"));
}

TEST_F(SnapshotFakeServerTest, TakesTheVersionFromTheStreamWhenItSaysIt) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_, "3.6.5")));
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = Take(server);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->etcd_version(), "3.6.5");
  EXPECT_EQ(server.status_calls(), 0);
}

TEST_F(SnapshotFakeServerTest, ReplacesAnOlderFileAtThePath) {
  ASSERT_TRUE(WriteFileAtomically(out_path_, "old").ok());
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream(database_)));
  ASSERT_TRUE(Take(server).ok());
  absl::StatusOr<std::string> file = ReadFileToString(out_path_);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->size(), kDatabaseSize + 32);
}

TEST_F(SnapshotFakeServerTest, RefusesAStreamThatEndsWhileEtcdAnnouncesMore) {
  SnapshotResponses stream = EtcdStream(database_);
  stream.resize(2);
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(stream));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss,
                "the stream ended early, after 65536 bytes, with etcd announcing 36864 more");
}

TEST_F(SnapshotFakeServerTest, RefusesAStreamWithoutItsSha256Trailer) {
  SnapshotResponses stream = EtcdStream(database_);
  stream.pop_back();
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(stream));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss,
                "sha256 mismatch, the snapshot is corrupt or incomplete");
}

TEST_F(SnapshotFakeServerTest, RefusesACorruptedByte) {
  SnapshotResponses stream = EtcdStream(database_);
  std::string blob = stream[1].blob();
  blob[100] ^= 0x01;
  stream[1].set_blob(blob);
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(stream));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss,
                absl::StrCat("etcd's trailer says ", absl::BytesToHexString(Sha256Of(database_)),
                             " but the ", kDatabaseSize, " database bytes hash to "));
}

TEST_F(SnapshotFakeServerTest, RefusesACorruptedTrailer) {
  SnapshotResponses stream = EtcdStream(database_);
  std::string trailer = stream.back().blob();
  trailer[0] ^= 0x80;
  stream.back().set_blob(trailer);
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(stream));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss, "sha256 mismatch");
}

TEST_F(SnapshotFakeServerTest, RefusesAnRpcErrorMidway) {
  SnapshotResponses stream = EtcdStream(database_);
  stream.resize(2);
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(
      stream, grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed")));
  ExpectRefused(Take(server), absl::StatusCode::kUnavailable,
                "failed after 65536 bytes: etcdserver: leader changed");
}

TEST_F(SnapshotFakeServerTest, RefusesAnRpcErrorBeforeAnyData) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(
      {}, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "etcdserver: permission denied")));
  ExpectRefused(Take(server), absl::StatusCode::kPermissionDenied,
                "failed: etcdserver: permission denied");
}

TEST_F(SnapshotFakeServerTest, RefusesAnEmptyStream) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Send({}));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss, "etcd sent an empty snapshot");
}

TEST_F(SnapshotFakeServerTest, RefusesATrailerWithoutADatabase) {
  // sha256 of nothing matches its trailer: still no snapshot.
  FakeMaintenanceServer server(FakeMaintenanceServer::Send(EtcdStream("")));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss,
                "the snapshot is only 32 bytes, no database before etcd's 32-byte sha256");
}

TEST_F(SnapshotFakeServerTest, RefusesFewerBytesThanTheTrailer) {
  etcdserverpb::SnapshotResponse tiny;
  tiny.set_blob("0123456789");
  FakeMaintenanceServer server(FakeMaintenanceServer::Send({tiny}));
  ExpectRefused(Take(server), absl::StatusCode::kDataLoss, "the snapshot is only 10 bytes");
}

TEST_F(SnapshotFakeServerTest, GivesUpOnAStreamThatNeverEnds) {
  FakeMaintenanceServer server(FakeMaintenanceServer::Trickle());
  absl::Time start = absl::Now();
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = Take(server, absl::Milliseconds(700));
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  ExpectRefused(record, absl::StatusCode::kDeadlineExceeded, "did not finish within 700ms (");
}

TEST_F(SnapshotFakeServerTest, SaysWhenNothingListens) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  SnapshotOptions options;
  options.endpoint = absl::StrCat("http://127.0.0.1:", *port);
  options.timeout = absl::Seconds(20);
  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = TakeSnapshot(options, out_path_, clock_);
  ExpectRefused(record, absl::StatusCode::kUnavailable,
                absl::StrCat("etcd snapshot from http://127.0.0.1:", *port, " failed: "));
}

TEST_F(SnapshotFakeServerTest, RefusesBadOptionsBeforeConnecting) {
  struct Case {
    std::string endpoint, ca, cert, key, path;
    std::string words;
  };
  const std::string missing = dir_.Path("missing.crt");
  std::vector<Case> cases = {
      {"127.0.0.1:2379", "", "", "", out_path_,
       "etcd endpoint \"127.0.0.1:2379\" must be http://HOST:PORT or https://HOST:PORT"},
      {"https://127.0.0.1", "", "", "", out_path_, "etcd endpoint \"https://127.0.0.1\": "},
      {"http://127.0.0.1:2379", missing, "", "", out_path_,
       "CA, certificate and key files are for https endpoints, but http://127.0.0.1:2379 is "
       "plain http"},
      {"https://127.0.0.1:2379", "", missing, "", out_path_,
       "needs both its certificate and its key file; got only the certificate"},
      {"https://127.0.0.1:2379", missing, "", "", out_path_,
       "cannot read the etcd CA file: open " + missing},
      {"http://127.0.0.1:2379", "", "", "", dir_.Path("no/such/etcd.db"),
       "the folder " + dir_.Path("no/such") + " for the etcd snapshot does not exist"},
      {"http://127.0.0.1:2379", "", "", "", "", "no path given for the etcd snapshot"},
  };
  for (const Case& c : cases) {
    SnapshotOptions options;
    options.endpoint = c.endpoint;
    options.ca_file = c.ca;
    options.cert_file = c.cert;
    options.key_file = c.key;
    absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = TakeSnapshot(options, c.path, clock_);
    ASSERT_FALSE(record.ok()) << c.endpoint;
    EXPECT_THAT(std::string(record.status().message()), HasSubstr(c.words));
  }
  SnapshotOptions no_time;
  no_time.endpoint = "http://127.0.0.1:2379";
  no_time.timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(TakeSnapshot(no_time, out_path_, clock_).status().message()),
              AllOf(HasSubstr("timeout must be positive"), HasSubstr("0")));
  EXPECT_THAT(FilesIn(dir_.path()), IsEmpty());
}

}  // namespace
}  // namespace tended::agent::etcd
