// An etcd Maintenance service in the test's process on 127.0.0.1 (a port the kernel picks),
// whose Snapshot stream a test scripts: the real protocol from a given database, or a stream
// cut short, corrupted, failed or never ending.
#ifndef TENDED_TESTS_UNIT_AGENT_ETCD_FAKE_MAINTENANCE_SERVER_H_
#define TENDED_TESTS_UNIT_AGENT_ETCD_FAKE_MAINTENANCE_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"

namespace tended::agent::etcd {

using SnapshotResponses = std::vector<etcdserverpb::SnapshotResponse>;

inline std::string Sha256Of(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// A database of `size` bytes that is not all the same byte.
inline std::string FakeDatabase(size_t size) {
  std::string database(size, '\0');
  uint32_t state = 2463534242u;
  for (char& byte : database) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    byte = static_cast<char>(state);
  }
  return database;
}

// What etcd sends for `database`: 32 KiB chunks counting remaining_bytes down to 0, then the
// sha256 of the database in a message of its own.
inline SnapshotResponses EtcdStream(const std::string& database, const std::string& version = "") {
  constexpr size_t kChunk = 32 * 1024;
  SnapshotResponses stream;
  for (size_t offset = 0; offset < database.size(); offset += kChunk) {
    etcdserverpb::SnapshotResponse& response = stream.emplace_back();
    response.set_blob(database.substr(offset, kChunk));
    response.set_remaining_bytes(database.size() - std::min(database.size(), offset + kChunk));
    response.set_version(version);
  }
  etcdserverpb::SnapshotResponse& trailer = stream.emplace_back();
  trailer.set_blob(Sha256Of(database));
  trailer.set_version(version);
  return stream;
}

class FakeMaintenanceServer final : public etcdserverpb::Maintenance::Service {
 public:
  using Script = std::function<grpc::Status(grpc::ServerContext*,
                                            grpc::ServerWriter<etcdserverpb::SnapshotResponse>*)>;

  // Sends `responses`, then ends the call with `end`.
  static Script Send(SnapshotResponses responses, grpc::Status end = grpc::Status::OK) {
    return [responses = std::move(responses), end](
               grpc::ServerContext*, grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) {
      for (const etcdserverpb::SnapshotResponse& response : responses) {
        if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "gone");
      }
      return end;
    };
  }

  // One small chunk every 20 ms, announcing more, until the client goes away.
  static Script Trickle() {
    return [](grpc::ServerContext* context,
              grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) {
      etcdserverpb::SnapshotResponse chunk;
      chunk.set_blob(std::string(1024, 'x'));
      chunk.set_remaining_bytes(1u << 30);
      while (!context->IsCancelled() && writer->Write(chunk)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    };
  }

  explicit FakeMaintenanceServer(Script script, std::string status_version = "3.5.17")
      : script_(std::move(script)), status_version_(std::move(status_version)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port_, 0);
  }

  ~FakeMaintenanceServer() override {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    }
  }

  std::string endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int status_calls() const { return status_calls_; }

  grpc::Status Snapshot(grpc::ServerContext* context, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override {
    return script_(context, writer);
  }

  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* response) override {
    ++status_calls_;
    response->set_version(status_version_);
    return grpc::Status::OK;
  }

 private:
  Script script_;
  std::string status_version_;
  std::atomic<int> status_calls_{0};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tended::agent::etcd

#endif  // TENDED_TESTS_UNIT_AGENT_ETCD_FAKE_MAINTENANCE_SERVER_H_
