// What grpcurl needs from a running coordinator, with no .proto files at hand: server
// reflection lists every service, and each service's file descriptors (with all their
// dependencies, the health protocol's included) resolve into a complete pool. Also the
// standard health service answers.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tended/testing/reflection.pb.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using tended::testing::reflection::ServerReflectionRequest;
using tended::testing::reflection::ServerReflectionResponse;

constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
using ::testing::IsSupersetOf;

class ReflectionTest : public ::testing::Test {
 protected:
  ReflectionTest() {
    auto served = testing::ServedCoordinator::Start(
        testing::LoopbackCoordinatorConfig(dir_.Path("state"), absl::ZeroDuration()));
    EXPECT_TRUE(served.ok()) << served.status();
    served_ = std::move(*served);
    channel_ = served_->NewChannel();
  }

  // One request on the bidirectional reflection stream, as grpcurl sends them.
  ServerReflectionResponse Ask(const ServerReflectionRequest& request) {
    grpc::internal::RpcMethod method(kReflectionMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
                                     channel_);
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>>
        stream(grpc::internal::ClientReaderWriterFactory<
               ServerReflectionRequest, ServerReflectionResponse>::Create(channel_.get(), method,
                                                                          &context));
    EXPECT_TRUE(stream->Write(request));
    stream->WritesDone();
    ServerReflectionResponse response;
    EXPECT_TRUE(stream->Read(&response));
    EXPECT_TRUE(stream->Finish().ok());
    return response;
  }

  // Resolves `symbol` the way grpcurl does: its file, then every missing dependency by name.
  const google::protobuf::ServiceDescriptor* ResolveService(const std::string& symbol) {
    ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    ServerReflectionResponse response = Ask(request);
    EXPECT_FALSE(response.has_error_response()) << response.error_response().error_message();
    std::vector<std::string> pending(
        response.file_descriptor_response().file_descriptor_proto().begin(),
        response.file_descriptor_response().file_descriptor_proto().end());
    std::map<std::string, google::protobuf::FileDescriptorProto> files;
    for (int round = 0; round < 50 && !pending.empty(); ++round) {
      std::vector<std::string> next;
      for (const std::string& bytes : pending) {
        google::protobuf::FileDescriptorProto file;
        EXPECT_TRUE(file.ParseFromString(bytes));
        files[file.name()] = file;
        for (const std::string& dependency : file.dependency()) {
          if (files.count(dependency) > 0) continue;
          ServerReflectionRequest by_name;
          by_name.set_file_by_filename(dependency);
          ServerReflectionResponse answer = Ask(by_name);
          EXPECT_FALSE(answer.has_error_response())
              << dependency << ": " << answer.error_response().error_message();
          for (const auto& more : answer.file_descriptor_response().file_descriptor_proto()) {
            next.push_back(more);
          }
        }
      }
      pending = std::move(next);
    }
    // Build in dependency order: BuildFile needs its imports first.
    for (int round = 0; round < 50 && !files.empty(); ++round) {
      for (auto it = files.begin(); it != files.end();) {
        bool ready = true;
        for (const auto& dependency : it->second.dependency()) {
          ready = ready && pool_.FindFileByName(dependency) != nullptr;
        }
        if (ready) {
          EXPECT_NE(pool_.BuildFile(it->second), nullptr) << it->first;
          it = files.erase(it);
        } else {
          ++it;
        }
      }
    }
    EXPECT_TRUE(files.empty()) << "unresolvable descriptors remain";
    return pool_.FindServiceByName(symbol);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServedCoordinator> served_;
  std::shared_ptr<grpc::Channel> channel_;
  google::protobuf::DescriptorPool pool_;
};

TEST_F(ReflectionTest, ListsBothServicesHealthAndReflection) {
  ServerReflectionRequest request;
  request.set_list_services("");
  ServerReflectionResponse response = Ask(request);
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_THAT(names,
              IsSupersetOf({"tended.v1.NodeService", "tended.v1.OperatorService",
                            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}));
}

TEST_F(ReflectionTest, EveryListedServiceDescribesCompletely) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"tended.v1.NodeService",
       {"ReportFacts", "WatchDirectives", "AcquireLease", "RenewLease", "BeginDisruption",
        "ReleaseLease", "CancelLeaseRequest", "ReportStep"}},
      {"tended.v1.OperatorService",
       {"ListNodes", "ListLeases", "ExplainGates", "Halt", "Resume", "ForceReleaseLease",
        "ListEvents", "RemoveNode", "ResumeRollout"}},
      {"grpc.health.v1.Health", {"Check", "Watch"}},
  };
  for (const auto& [name, methods] : expected) {
    const google::protobuf::ServiceDescriptor* service = ResolveService(name);
    ASSERT_NE(service, nullptr) << name;
    for (const std::string& method : methods) {
      EXPECT_NE(service->FindMethodByName(method), nullptr) << name << "." << method;
    }
  }
  // Message types resolve too, so `grpcurl describe tended.v1.Lease` works.
  const auto* lease = pool_.FindMessageTypeByName("tended.v1.Lease");
  ASSERT_NE(lease, nullptr);
  EXPECT_NE(lease->FindFieldByName("fencing_token"), nullptr);
  EXPECT_NE(pool_.FindMessageTypeByName("google.protobuf.Timestamp"), nullptr);
}

TEST_F(ReflectionTest, UnknownSymbolIsAnErrorNotACrash) {
  ServerReflectionRequest request;
  request.set_file_containing_symbol("tended.v1.NoSuchService");
  ServerReflectionResponse response = Ask(request);
  ASSERT_TRUE(response.has_error_response());
  EXPECT_EQ(response.error_response().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ReflectionTest, HealthServiceAnswers) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"", "tended.v1.NodeService", "tended.v1.OperatorService"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("tended.v1.Nope");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ReflectionTest, HealthWatchReportsNotServingOnShutdown) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  auto reader = health->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  std::thread stopper([this] { served_->server().Shutdown(); });
  const bool told = reader->Read(&response);
  EXPECT_TRUE(told) << "the stream ended without NOT_SERVING";
  if (told) {
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    // Then the stream ends, and the server with it.
    EXPECT_FALSE(reader->Read(&response));
  }
  EXPECT_TRUE(reader->Finish().ok());
  stopper.join();
}

}  // namespace
}  // namespace tended
