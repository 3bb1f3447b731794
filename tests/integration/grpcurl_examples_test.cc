// Every grpcurl example in README.md and docs/*.md, run the way grpcurl runs it (there is
// no grpcurl binary here): server reflection resolves the service into a descriptor pool,
// the -d JSON is parsed into a dynamic message of the method's input type (an unknown
// field or a bad enum name fails here, as it does in grpcurl), and the call goes out as
// raw bytes on a generic unary call. The coordinator is served on loopback with a small
// fleet named as the docs name nodes (k8s-node1..3).
//
// The rule: no example may fail with INVALID_ARGUMENT or UNIMPLEMENTED, or fail to parse or
// resolve. NOT_FOUND and FAILED_PRECONDITION are accepted, because the docs use placeholder
// ids (ROLLOUT_ID, reboot-k8s-node3-7) and calls that need a state this fleet is not in (a
// stopped rollout, Kubernetes configured). Fragments with "..." in place of arguments are
// prose, not examples, and are skipped.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "tended/testing/reflection.pb.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended {
namespace {

using tended::testing::reflection::ServerReflectionRequest;
using tended::testing::reflection::ServerReflectionResponse;

constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

struct Example {
  std::string file;
  int line = 0;
  std::string text;  // The command as written (continuations joined).
};

// Splits a shell command line into words: single and double quotes, backslash escapes.
std::vector<std::string> ShellWords(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

// grpcurl commands in a Markdown file: whole lines in fenced code blocks (a trailing
// backslash continues the line) and inline code spans that start with `grpcurl `.
std::vector<Example> GrpcurlExamples(const std::string& file, absl::string_view markdown) {
  std::vector<Example> examples;
  std::vector<std::string> lines = absl::StrSplit(markdown, '\n');
  bool fenced = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = absl::StripLeadingAsciiWhitespace(lines[i]);
    if (absl::StartsWith(line, "```")) {
      fenced = !fenced;
      continue;
    }
    if (fenced) {
      if (!absl::StartsWith(line, "grpcurl ")) continue;
      Example example{file, static_cast<int>(i + 1), std::string(line)};
      while (absl::EndsWith(example.text, "\\") && i + 1 < lines.size()) {
        example.text.pop_back();
        example.text += std::string(absl::StripLeadingAsciiWhitespace(lines[++i]));
      }
      examples.push_back(example);
      continue;
    }
    for (size_t at = line.find("`grpcurl "); at != absl::string_view::npos;
         at = line.find("`grpcurl ", at + 1)) {
      size_t end = line.find('`', at + 1);
      if (end == absl::string_view::npos) break;
      examples.push_back(
          {file, static_cast<int>(i + 1), std::string(line.substr(at + 1, end - at - 1))});
    }
  }
  return examples;
}

// What one grpcurl command asks for.
struct GrpcurlCall {
  std::string verb;    // "list", "describe" or "call".
  std::string symbol;  // describe: the symbol; call: "pkg.Service/Method".
  std::string data = "{}";
};

std::optional<GrpcurlCall> ParseGrpcurl(const std::string& text, std::string* error) {
  std::vector<std::string> words = ShellWords(text);
  GrpcurlCall call;
  std::vector<std::string> positional;
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "-plaintext") continue;
    // The transport flags of an mTLS example: the call itself is what is checked here (the
    // served coordinator is plaintext; tests/integration/mtls_test.cc covers the transport).
    if ((words[i] == "-cacert" || words[i] == "-cert" || words[i] == "-key") &&
        i + 1 < words.size()) {
      ++i;
      continue;
    }
    if (words[i] == "-d" && i + 1 < words.size()) {
      call.data = words[++i];
      continue;
    }
    if (absl::StartsWith(words[i], "-")) {
      *error = "unknown grpcurl flag " + words[i];
      return std::nullopt;
    }
    positional.push_back(words[i]);
  }
  if (positional.size() < 2) {
    *error = "no address and verb";
    return std::nullopt;
  }
  if (positional[1] == "list" && positional.size() <= 3) {
    call.verb = "list";
    if (positional.size() == 3) call.symbol = positional[2];
  } else if (positional[1] == "describe" && positional.size() == 3) {
    call.verb = "describe";
    call.symbol = positional[2];
  } else if (positional.size() == 2 && absl::StrContains(positional[1], '/')) {
    call.verb = "call";
    call.symbol = positional[1];
  } else {
    *error = "not a grpcurl command this test knows";
    return std::nullopt;
  }
  return call;
}

class GrpcurlExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto served = testing::ServedCoordinator::Start(
        testing::LoopbackCoordinatorConfig(dir_.Path("state"), absl::Hours(1)));
    ASSERT_TRUE(served.ok()) << served.status();
    served_ = std::move(*served);
    channel_ = served_->NewChannel();
    for (auto& agent : agents_) {
      agent.SetChannel(channel_);
      agent.SetRebootRequired(true, {"linux-image-6.1.0-28-amd64"});
      ASSERT_TRUE(agent.Report().ok());
      heartbeat_.Add(&agent);
    }
  }

  ServerReflectionResponse Ask(const ServerReflectionRequest& request) {
    grpc::internal::RpcMethod method(kReflectionMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
                                     channel_);
    grpc::ClientContext context;
    auto stream = std::unique_ptr<
        grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>>(
        grpc::internal::ClientReaderWriterFactory<ServerReflectionRequest,
                                                  ServerReflectionResponse>::Create(channel_.get(),
                                                                                    method,
                                                                                    &context));
    ServerReflectionResponse response;
    if (stream->Write(request)) {
      stream->WritesDone();
      stream->Read(&response);
    }
    (void)stream->Finish();
    return response;
  }

  // Loads the file holding `symbol` and its dependencies into pool_; false when reflection
  // does not know it.
  bool Resolve(const std::string& symbol) {
    ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    ServerReflectionResponse response = Ask(request);
    if (response.has_error_response()) return false;
    std::vector<std::string> pending(
        response.file_descriptor_response().file_descriptor_proto().begin(),
        response.file_descriptor_response().file_descriptor_proto().end());
    std::map<std::string, google::protobuf::FileDescriptorProto> files;
    for (int round = 0; round < 50 && !pending.empty(); ++round) {
      std::vector<std::string> next;
      for (const std::string& bytes : pending) {
        google::protobuf::FileDescriptorProto file;
        if (!file.ParseFromString(bytes)) return false;
        if (pool_.FindFileByName(file.name()) != nullptr) continue;
        files[file.name()] = file;
        for (const std::string& dependency : file.dependency()) {
          if (files.count(dependency) > 0 || pool_.FindFileByName(dependency) != nullptr) {
            continue;
          }
          ServerReflectionRequest by_name;
          by_name.set_file_by_filename(dependency);
          ServerReflectionResponse answer = Ask(by_name);
          if (answer.has_error_response()) return false;
          for (const auto& more : answer.file_descriptor_response().file_descriptor_proto()) {
            next.push_back(more);
          }
        }
      }
      pending = std::move(next);
    }
    for (int round = 0; round < 50 && !files.empty(); ++round) {
      for (auto it = files.begin(); it != files.end();) {
        bool ready = true;
        for (const auto& dependency : it->second.dependency()) {
          ready = ready && pool_.FindFileByName(dependency) != nullptr;
        }
        if (ready) {
          if (pool_.BuildFile(it->second) == nullptr) return false;
          it = files.erase(it);
        } else {
          ++it;
        }
      }
    }
    return files.empty();
  }

  // Runs one example; an empty string when it passes the rule, else why not.
  std::string Run(const Example& example) {
    std::string error;
    std::optional<GrpcurlCall> call = ParseGrpcurl(example.text, &error);
    if (!call.has_value()) return error;
    if (call->verb == "list") {
      ServerReflectionRequest request;
      request.set_list_services("");
      ServerReflectionResponse response = Ask(request);
      if (response.list_services_response().service().empty()) return "no services listed";
      if (!call->symbol.empty() && !Resolve(call->symbol)) return "unknown service";
      return "";
    }
    if (call->verb == "describe") {
      if (!Resolve(call->symbol)) return "reflection does not know " + call->symbol;
      const std::string& name = call->symbol;
      bool found = pool_.FindServiceByName(name) != nullptr ||
                   pool_.FindMessageTypeByName(name) != nullptr ||
                   pool_.FindEnumTypeByName(name) != nullptr ||
                   pool_.FindMethodByName(name) != nullptr;
      return found ? "" : "resolved but not found: " + name;
    }
    std::vector<std::string> parts = absl::StrSplit(call->symbol, '/');
    if (parts.size() != 2) return "bad method " + call->symbol;
    if (!Resolve(parts[0])) return "reflection does not know " + parts[0];
    const google::protobuf::ServiceDescriptor* service = pool_.FindServiceByName(parts[0]);
    if (service == nullptr) return "no service " + parts[0];
    const google::protobuf::MethodDescriptor* method = service->FindMethodByName(parts[1]);
    if (method == nullptr) return "no method " + call->symbol;
    if (method->client_streaming() || method->server_streaming()) return "streaming method";
    google::protobuf::DynamicMessageFactory factory(&pool_);
    std::unique_ptr<google::protobuf::Message> request(
        factory.GetPrototype(method->input_type())->New());
    std::unique_ptr<google::protobuf::Message> response(
        factory.GetPrototype(method->output_type())->New());
    auto parsed = google::protobuf::util::JsonStringToMessage(call->data, request.get());
    if (!parsed.ok()) return absl::StrCat("the request JSON does not parse: ", parsed.ToString());
    grpc::ByteBuffer request_bytes;
    grpc::ByteBuffer response_bytes;
    bool own_buffer = false;
    if (!grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::Message>(
             *request, &request_bytes, &own_buffer)
             .ok()) {
      return "request does not serialize";
    }
    grpc::internal::RpcMethod rpc(absl::StrCat("/", call->symbol).c_str(),
                                  grpc::internal::RpcMethod::NORMAL_RPC, channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), rpc, &context, request_bytes, &response_bytes);
    ++calls_[status.error_code()];
    switch (status.error_code()) {
      case grpc::StatusCode::OK: {
        std::vector<grpc::Slice> slices;
        if (!response_bytes.Dump(&slices).ok()) return "response unreadable";
        std::string bytes;
        for (const auto& slice : slices) bytes.append(slice.begin(), slice.end());
        if (!response->ParseFromString(bytes)) return "response does not parse";
        std::string json;
        if (!google::protobuf::util::MessageToJsonString(*response, &json).ok()) {
          return "response does not print as JSON";
        }
        return "";
      }
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::FAILED_PRECONDITION:
        return "";
      default:
        return absl::StrCat("status ", status.error_code(), ": ", status.error_message());
    }
  }

  static std::vector<Example> AllExamples() {
    std::vector<std::string> files = {"README.md"};
    for (const auto& entry : std::filesystem::directory_iterator(TENDED_SOURCE_DIR "/docs")) {
      if (entry.path().extension() == ".md")
        files.push_back("docs/" + entry.path().filename().string());
    }
    std::sort(files.begin(), files.end());
    std::vector<Example> examples;
    for (const std::string& file : files) {
      absl::StatusOr<std::string> text = ReadFileToString(TENDED_SOURCE_DIR "/" + file);
      EXPECT_TRUE(text.ok()) << text.status();
      if (!text.ok()) continue;
      for (Example& example : GrpcurlExamples(file, *text)) {
        if (!absl::StrContains(example.text, "...")) examples.push_back(std::move(example));
      }
    }
    return examples;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ServedCoordinator> served_;
  std::shared_ptr<grpc::Channel> channel_;
  google::protobuf::DescriptorPool pool_;
  std::map<int, int> calls_;  // Status code -> calls that ended with it.
  testing::WireAgent agents_[3] = {{"k8s-node1", "instance-1", "boot-1"},
                                   {"k8s-node2", "instance-2", "boot-2"},
                                   {"k8s-node3", "instance-3", "boot-3"}};
  testing::FleetHeartbeat heartbeat_{absl::Milliseconds(200)};
};

TEST(GrpcurlExtractionTest, FencedInlineAndContinuedCommands) {
  std::vector<Example> examples =
      GrpcurlExamples("x.md",
                      "text `grpcurl -plaintext a:1 list` and `tendedctl nodes`\n"
                      "```sh\n"
                      "grpcurl -plaintext -d '{\"a\":1}' \\\n"
                      "  a:1 pkg.S/M\n"
                      "tendedctl x\n"
                      "```\n"
                      "grpcurl outside a block is prose\n");
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].text, "grpcurl -plaintext a:1 list");
  EXPECT_EQ(examples[0].line, 1);
  EXPECT_EQ(examples[1].text, "grpcurl -plaintext -d '{\"a\":1}' a:1 pkg.S/M");
  std::string error;
  std::optional<GrpcurlCall> call = ParseGrpcurl(examples[1].text, &error);
  ASSERT_TRUE(call.has_value()) << error;
  EXPECT_EQ(call->verb, "call");
  EXPECT_EQ(call->symbol, "pkg.S/M");
  EXPECT_EQ(call->data, "{\"a\":1}");
  EXPECT_FALSE(ParseGrpcurl("grpcurl -insecure a:1 list", &error).has_value());
}

TEST_F(GrpcurlExamplesTest, EveryExampleInTheDocsRunsThroughReflection) {
  std::vector<Example> examples = AllExamples();
  // README, runbook and k8s-upgrades hold about thirty; fewer means the extraction broke.
  EXPECT_GE(examples.size(), 25u);
  for (const Example& example : examples) {
    std::string problem = Run(example);
    EXPECT_EQ(problem, "") << example.file << ":" << example.line << ": " << example.text;
  }
  // Most calls succeed outright: the placeholders are the exception.
  EXPECT_GE(calls_[grpc::StatusCode::OK], 15) << "calls that answered OK";
}

TEST_F(GrpcurlExamplesTest, TheRuleCatchesABadExample) {
  EXPECT_THAT(Run({"x.md", 1,
                   "grpcurl -plaintext c:7443 -d '{\"kind\":\"LEASE_KIND_NAP\"}' "
                   "tended.v1.OperatorService/ExplainGates"}),
              ::testing::HasSubstr("does not parse"));
  EXPECT_THAT(Run({"x.md", 1, "grpcurl -plaintext c:7443 tended.v1.OperatorService/Nope"}),
              ::testing::HasSubstr("no method"));
  EXPECT_THAT(Run({"x.md", 1, "grpcurl -plaintext -d '{}' c:7443 tended.v1.OperatorService/Halt"}),
              ::testing::HasSubstr("status 3"));  // INVALID_ARGUMENT: a halt needs a reason.
}

}  // namespace
}  // namespace tended
