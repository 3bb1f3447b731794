// mTLS and identities over real gRPC on 127.0.0.1, with a PKI minted in the test: a node
// certificate acts only for its own node on every NodeService call, operators act only as
// their role allows, expired, not-yet-valid and untrusted certificates and plaintext
// clients are refused at the handshake, a client without a certificate reaches health
// only, and rotated certificates are used without a restart.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crl_set.h"
#include "common/file_util.h"
#include "common/grpc_tls.h"
#include "common/x509_mint.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tended/v1/node_service.grpc.pb.h"
#include "tended/v1/operator_service.grpc.pb.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/served_coordinator.h"
#include "tests/fakes/temp_dir.h"
#include "tests/fakes/wire_agent.h"

namespace tended {
namespace {

using testing::CallContext;
using ::testing::HasSubstr;
using testing::ServedCoordinator;
using testing::WireAgent;

constexpr absl::Duration kSettle = absl::Seconds(60);

bool WaitFor(const std::function<bool()>& done, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

CertificateSpec NodeSpec(const std::string& node) {
  CertificateSpec spec;
  spec.common_name = "system:node:" + node;
  spec.organizations = {"system:nodes"};
  return spec;
}

CertificateSpec OperatorSpec(const std::string& name, const std::string& unit) {
  CertificateSpec spec;
  spec.common_name = name;
  spec.organizations = {"tended:operators"};
  if (!unit.empty()) spec.organizational_units = {unit};
  return spec;
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::Create("tended test CA", absl::Hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<CertificateAuthority>(*std::move(ca));
    CertificateSpec server;
    server.common_name = "tended-coordinator";
    server.dns_names = {"localhost"};
    server.ip_addresses = {"127.0.0.1"};
    server.server = true;
    server.client = false;
    auto minted = ca_->Issue(server);
    ASSERT_TRUE(minted.ok()) << minted.status();
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("ca.crt"), ca_->self().cert_pem).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("client-ca.crt"), ca_->self().cert_pem).ok());
    Write("server", *minted);
  }

  void Write(const std::string& name, const MintedCertificate& minted) {
    ASSERT_TRUE(WriteFileAtomically(dir_.Path(name + ".key"), minted.key_pem, 0600).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_.Path(name + ".crt"), minted.cert_pem, 0644).ok());
  }

  void StartServer(const std::string& crl_directory = "") {
    TlsFiles files{dir_.Path("server.crt"), dir_.Path("server.key"), dir_.Path("client-ca.crt"),
                   absl::Seconds(1), crl_directory};
    auto credentials = MakeServerTlsCredentials(files);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    ServedCoordinator::Options options;
    if (!crl_directory.empty()) {
      // As the coordinator's main does: the per-call check beside the handshake's.
      CrlSet::Options crl_options;
      crl_options.directory = crl_directory;
      crl_options.ca_file = files.ca_file;
      crl_options.refresh_interval = files.refresh_interval;
      auto crls = CrlSet::Create(crl_options, Clock::Real());
      ASSERT_TRUE(crls.ok()) << crls.status();
      crls_ = *std::move(crls);
      options.server.access.crls = crls_;
      options.server.access.on_revoked = [this](absl::string_view service,
                                                absl::string_view method) {
        absl::MutexLock lock(&mutex_);
        ++revoked_[absl::StrCat(service, ".", method)];
      };
    }
    options.credentials = *credentials;
    options.server.access.enforce = true;
    options.server.access.operators = {{"carol", coordinator::OperatorRole::kRead},
                                       {"mallory", coordinator::OperatorRole::kNone}};
    options.server.access.on_denied = [this](absl::string_view service, absl::string_view method) {
      absl::MutexLock lock(&mutex_);
      ++denied_[absl::StrCat(service, ".", method)];
    };
    coordinator::CoordinatorConfig config =
        testing::LoopbackCoordinatorConfig(dir_.Path("state"), absl::ZeroDuration());
    auto served = ServedCoordinator::Start(config, std::move(options));
    ASSERT_TRUE(served.ok()) << served.status();
    served_ = *std::move(served);
  }

  // A channel presenting `name`.crt/key (written by Write), trusting ca.crt.
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& name) {
    TlsFiles files{dir_.Path(name + ".crt"), dir_.Path(name + ".key"), dir_.Path("ca.crt"),
                   absl::Seconds(1)};
    auto credentials = MakeChannelTlsCredentials(files);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return nullptr;
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
    // Every channel its own connection: a new channel is a new handshake.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(served_->address(), *credentials, arguments);
  }

  std::shared_ptr<grpc::Channel> Mint(const std::string& name, const CertificateSpec& spec) {
    auto minted = ca_->Issue(spec);
    EXPECT_TRUE(minted.ok()) << minted.status();
    Write(name, *minted);
    return ChannelAs(name);
  }

  int Denied(const std::string& key) {
    absl::MutexLock lock(&mutex_);
    return denied_[key];
  }
  int Revoked(const std::string& key) {
    absl::MutexLock lock(&mutex_);
    return revoked_[key];
  }

  grpc::Status ListNodes(const std::shared_ptr<grpc::Channel>& channel) {
    tended::v1::ListNodesResponse response;
    return tended::v1::OperatorService::NewStub(channel)->ListNodes(
        CallContext(absl::Seconds(10)).get(), {}, &response);
  }

  // A CRL of ca_ revoking `revoked` (certificate PEMs), numbered after the last one.
  std::string MintCrl(const std::vector<std::string>& revoked,
                      absl::Duration next_update = absl::Hours(1)) {
    RevocationListSpec spec;
    spec.revoked_cert_pems = revoked;
    spec.next_update = next_update;
    spec.number = ++crl_number_;
    auto crl = ca_->RevocationList(spec);
    EXPECT_TRUE(crl.ok()) << crl.status();
    return crl.ok() ? *crl : "";
  }
  // crl/<hash>.r0, where the handshake's lookup looks.
  std::string CrlPath() {
    auto crl = ca_->RevocationList({}, absl::Hours(1));
    EXPECT_TRUE(crl.ok()) << crl.status();
    auto name = HashedCrlFileName(crl.value_or(""));
    EXPECT_TRUE(name.ok()) << name.status();
    return dir_.Path("crl/" + name.value_or("none"));
  }
  // Writes (by rename) a CRL revoking `revoked` at CrlPath().
  void PublishCrl(const std::vector<std::string>& revoked) {
    ASSERT_TRUE(MakeDirectories(dir_.Path("crl")).ok());
    ASSERT_TRUE(WriteFileAtomically(CrlPath(), MintCrl(revoked)).ok());
  }
  std::string SerialOf(const MintedCertificate& minted) {
    auto key = RevocationKeyOfPem(minted.cert_pem);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.ok() ? key->serial : "?";
  }

  // A ReportFacts call for `node` over a new channel (so a new handshake) as `node`.crt.
  grpc::Status ReportOverNewConnection(const std::string& node) {
    WireAgent agent(node, "agent-" + node, "boot-1");
    agent.SetChannel(ChannelAs(node));
    return agent.Report(absl::Seconds(10));
  }

  testing::TempDir dir_;
  int64_t crl_number_ = 0;
  std::unique_ptr<CertificateAuthority> ca_;
  std::unique_ptr<ServedCoordinator> served_;
  absl::Mutex mutex_;
  std::map<std::string, int> denied_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, int> revoked_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<CrlSet> crls_;
};

TEST_F(MtlsTest, ANodeCertificateIsRefusedOnEveryCallForAnotherNode) {
  StartServer();
  auto as_a = Mint("node-a", NodeSpec("node-a"));
  auto as_b = Mint("node-b", NodeSpec("node-b"));
  auto admin = Mint("alice", OperatorSpec("alice", "tended:role:admin"));

  WireAgent b("node-b", "agent-b", "boot-1");
  b.SetChannel(as_b);
  b.SetRebootRequired(true);
  ASSERT_TRUE(b.Report().ok());
  // node-b, with its own certificate, gets a lease.
  ASSERT_TRUE(WaitFor(
      [&] {
        (void)b.Report();
        return b.Acquire(tended::v1::LEASE_KIND_REBOOT, "kernel").ok() &&
               b.held_lease().has_value();
      },
      kSettle));
  const tended::v1::Lease lease = *b.held_lease();

  // The same calls, filled for node-b, over node-a's certificate.
  b.SetChannel(as_a);
  auto expect_denied = [](const grpc::Status& status, const std::string& call) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << call << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("node node-a")) << call;
  };
  expect_denied(b.Report(), "ReportFacts");
  expect_denied(b.Acquire(tended::v1::LEASE_KIND_REBOOT, "again"), "AcquireLease");
  expect_denied(b.Renew(), "RenewLease");
  expect_denied(b.Begin("reboot"), "BeginDisruption");
  tended::v1::StepReport step;
  step.set_step("drain");
  expect_denied(b.ReportStep(step), "ReportStep");
  expect_denied(b.Release("done"), "ReleaseLease");
  auto stub_a = tended::v1::NodeService::NewStub(as_a);
  tended::v1::CancelLeaseRequestRequest cancel;
  cancel.set_node_name("node-b");
  cancel.set_agent_instance_id("agent-b");
  tended::v1::CancelLeaseRequestResponse cancelled;
  expect_denied(stub_a->CancelLeaseRequest(CallContext().get(), cancel, &cancelled),
                "CancelLeaseRequest");
  {
    tended::v1::WatchDirectivesRequest watch;
    watch.set_node_name("node-b");
    watch.set_agent_instance_id("agent-b");
    auto context = CallContext();
    auto stream = stub_a->WatchDirectives(context.get(), watch);
    tended::v1::Directive directive;
    EXPECT_FALSE(stream->Read(&directive));
    expect_denied(stream->Finish(), "WatchDirectives");
  }
  // node-a's own report for itself, offering node-b's lease for adoption, is refused too.
  WireAgent a("node-a", "agent-a", "boot-1");
  a.SetChannel(as_a);
  tended::v1::ReportFactsRequest offer = a.FactsRequest();
  *offer.mutable_held_lease() = lease;
  expect_denied(a.SendFacts(offer), "ReportFacts with another node's lease");
  EXPECT_TRUE(a.Report().ok());

  for (const char* method : {"AcquireLease", "RenewLease", "BeginDisruption", "ReportStep",
                             "ReleaseLease", "CancelLeaseRequest", "WatchDirectives"}) {
    EXPECT_EQ(Denied(absl::StrCat("node.", method)), 1) << method;
  }
  EXPECT_EQ(Denied("node.ReportFacts"), 2);

  // Nothing changed for node-b: its lease is still held, and its own certificate works.
  tended::v1::ListLeasesResponse leases;
  ASSERT_TRUE(tended::v1::OperatorService::NewStub(admin)
                  ->ListLeases(CallContext().get(), {}, &leases)
                  .ok());
  ASSERT_EQ(leases.leases_size(), 1);
  EXPECT_EQ(leases.leases(0).id(), lease.id());
  EXPECT_EQ(leases.leases(0).phase(), tended::v1::LEASE_PHASE_GRANTED);
  b.SetChannel(as_b);
  EXPECT_TRUE(b.Renew().ok());
}

TEST_F(MtlsTest, OperatorsActOnlyAsTheirRoleAllows) {
  StartServer();
  auto carol = Mint("carol", OperatorSpec("carol", ""));  // read, from the configuration
  auto dave = Mint("dave", OperatorSpec("dave", "tended:role:read"));
  auto alice = Mint("alice", OperatorSpec("alice", "tended:role:admin"));
  auto mallory = Mint("mallory", OperatorSpec("mallory", "tended:role:admin"));  // config: none
  auto nobody = Mint("erin", OperatorSpec("erin", ""));
  auto node = Mint("node-a", NodeSpec("node-a"));

  for (const auto& reader : {carol, dave}) {
    auto ops = tended::v1::OperatorService::NewStub(reader);
    tended::v1::ListNodesResponse nodes;
    EXPECT_TRUE(ops->ListNodes(CallContext().get(), {}, &nodes).ok());
    tended::v1::ListLeasesResponse leases;
    EXPECT_TRUE(ops->ListLeases(CallContext().get(), {}, &leases).ok());
    tended::v1::ExplainGatesResponse gates;
    EXPECT_TRUE(ops->ExplainGates(CallContext().get(), {}, &gates).ok());
    tended::v1::ListEventsResponse events;
    EXPECT_TRUE(ops->ListEvents(CallContext().get(), {}, &events).ok());
    tended::v1::ListK8sRolloutsResponse rollouts;
    EXPECT_TRUE(ops->ListK8sRollouts(CallContext().get(), {}, &rollouts).ok());

    std::map<std::string, grpc::Status> writes;
    tended::v1::HaltRequest halt;
    halt.set_reason("test");
    tended::v1::HaltResponse halted;
    writes["Halt"] = ops->Halt(CallContext().get(), halt, &halted);
    tended::v1::ResumeResponse resumed;
    writes["Resume"] = ops->Resume(CallContext().get(), {}, &resumed);
    tended::v1::ForceReleaseLeaseRequest release;
    release.set_lease_id("lease-1");
    release.set_reason("test");
    tended::v1::ForceReleaseLeaseResponse released;
    writes["ForceReleaseLease"] = ops->ForceReleaseLease(CallContext().get(), release, &released);
    tended::v1::RemoveNodeRequest remove;
    remove.set_node_name("node-a");
    remove.set_reason("test");
    tended::v1::RemoveNodeResponse removed;
    writes["RemoveNode"] = ops->RemoveNode(CallContext().get(), remove, &removed);
    tended::v1::ResumeRolloutRequest resume_rollout;
    resume_rollout.set_reason("test");
    tended::v1::ResumeRolloutResponse rollout_resumed;
    writes["ResumeRollout"] =
        ops->ResumeRollout(CallContext().get(), resume_rollout, &rollout_resumed);
    tended::v1::StartK8sRolloutRequest start;
    start.set_target_version("1.31.2");
    start.set_reason("test");
    tended::v1::StartK8sRolloutResponse started;
    writes["StartK8sRollout"] = ops->StartK8sRollout(CallContext().get(), start, &started);
    tended::v1::CancelK8sRolloutRequest cancel;
    cancel.set_rollout_id("r1");
    cancel.set_reason("test");
    tended::v1::CancelK8sRolloutResponse cancelled;
    writes["CancelK8sRollout"] = ops->CancelK8sRollout(CallContext().get(), cancel, &cancelled);
    for (const auto& [method, status] : writes) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << method << ": " << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr("needs the admin role")) << method;
    }
  }
  for (const char* method : {"Halt", "Resume", "ForceReleaseLease", "RemoveNode", "ResumeRollout",
                             "StartK8sRollout", "CancelK8sRollout"}) {
    EXPECT_EQ(Denied(absl::StrCat("operator.", method)), 2) << method;
  }
  // The halt never happened.
  tended::v1::ExplainGatesResponse gates;
  ASSERT_TRUE(tended::v1::OperatorService::NewStub(alice)
                  ->ExplainGates(CallContext().get(), {}, &gates)
                  .ok());

  // An admin may; the configuration's `none` wins over an admin OU; an operator without a
  // role may not even read; a node is not an operator.
  tended::v1::HaltRequest halt;
  halt.set_reason("admin halts");
  tended::v1::HaltResponse halted;
  EXPECT_TRUE(
      tended::v1::OperatorService::NewStub(alice)->Halt(CallContext().get(), halt, &halted).ok());
  EXPECT_EQ(tended::v1::OperatorService::NewStub(mallory)
                ->Halt(CallContext().get(), halt, &halted)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListNodes(mallory).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListNodes(nobody).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status as_node = ListNodes(node);
  EXPECT_EQ(as_node.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(as_node.error_message(), HasSubstr("is for operators; the caller is node node-a"));
  // An operator is not a node.
  WireAgent impostor("node-a", "agent-a", "boot-1");
  impostor.SetChannel(alice);
  EXPECT_EQ(impostor.Report().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(MtlsTest, ExpiredNotYetValidAndUntrustedCertificatesAreRefusedAtTheHandshake) {
  StartServer();
  ASSERT_TRUE(ListNodes(Mint("alice", OperatorSpec("alice", "tended:role:admin"))).ok());

  CertificateSpec expired = OperatorSpec("alice", "tended:role:admin");
  expired.not_before = -absl::Hours(48);
  expired.not_after = -absl::Hours(24);
  CertificateSpec early = OperatorSpec("alice", "tended:role:admin");
  early.not_before = absl::Hours(24);
  early.not_after = absl::Hours(48);
  auto other_ca = CertificateAuthority::Create("another CA", absl::Hours(24));
  ASSERT_TRUE(other_ca.ok());
  auto untrusted = other_ca->Issue(OperatorSpec("alice", "tended:role:admin"));
  ASSERT_TRUE(untrusted.ok());
  Write("untrusted", *untrusted);

  for (const auto& [name, channel] :
       std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>>{
           {"expired", Mint("expired", expired)},
           {"not yet valid", Mint("early", early)},
           {"untrusted", ChannelAs("untrusted")}}) {
    grpc::Status status = ListNodes(channel);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << name << ": " << status.error_message();
  }
  // Refused before any service saw them.
  absl::MutexLock lock(&mutex_);
  EXPECT_TRUE(denied_.empty());
}

TEST_F(MtlsTest, PlaintextAndCertificatelessClientsReachOnlyHealth) {
  StartServer();
  auto plaintext = grpc::CreateChannel(served_->address(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(ListNodes(plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::health::v1::HealthCheckResponse health;
  EXPECT_EQ(grpc::health::v1::Health::NewStub(plaintext)
                ->Check(CallContext(absl::Seconds(10)).get(), {}, &health)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // Server-authenticated TLS without a client certificate.
  auto ca_pem = ReadFileToString(dir_.Path("ca.crt"));
  ASSERT_TRUE(ca_pem.ok());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = *ca_pem;
  auto anonymous = grpc::CreateChannel(served_->address(), grpc::SslCredentials(ssl));
  ASSERT_TRUE(
      grpc::health::v1::Health::NewStub(anonymous)->Check(CallContext().get(), {}, &health).ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(ListNodes(anonymous).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  WireAgent agent("node-a", "agent-a", "boot-1");
  agent.SetChannel(anonymous);
  EXPECT_EQ(agent.Report().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(MtlsTest, RotatedCertificatesAreUsedWithoutARestart) {
  StartServer();
  // The client's certificate expired: refused. The same channel works once the files hold
  // a fresh certificate.
  CertificateSpec expired = OperatorSpec("alice", "tended:role:admin");
  expired.not_before = -absl::Hours(48);
  expired.not_after = -absl::Hours(24);
  auto channel = Mint("alice", expired);
  ASSERT_EQ(ListNodes(channel).error_code(), grpc::StatusCode::UNAVAILABLE);
  auto fresh = ca_->Issue(OperatorSpec("alice", "tended:role:admin"));
  ASSERT_TRUE(fresh.ok());
  Write("alice", *fresh);
  EXPECT_TRUE(WaitFor([&] { return ListNodes(channel).ok(); }, kSettle));

  // The server's client CA bundle gains a new CA: its certificates are accepted from then on.
  auto new_ca = CertificateAuthority::Create("the next CA", absl::Hours(24));
  ASSERT_TRUE(new_ca.ok());
  auto bob = new_ca->Issue(OperatorSpec("bob", "tended:role:read"));
  ASSERT_TRUE(bob.ok());
  Write("bob", *bob);
  auto as_bob = ChannelAs("bob");
  ASSERT_EQ(ListNodes(as_bob).error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("client-ca.crt"),
                                  ca_->self().cert_pem + new_ca->self().cert_pem)
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return ListNodes(ChannelAs("bob")).ok(); }, kSettle));

  // The server's own certificate is replaced by one from the new CA: a client trusting
  // only the new CA connects once the server has re-read its files.
  CertificateSpec server;
  server.common_name = "tended-coordinator";
  server.ip_addresses = {"127.0.0.1"};
  server.server = true;
  server.client = false;
  auto rotated = new_ca->Issue(server);
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("ca.crt"), new_ca->self().cert_pem).ok());
  auto trusting_new = ChannelAs("bob");
  ASSERT_EQ(ListNodes(trusting_new).error_code(), grpc::StatusCode::UNAVAILABLE);
  Write("server", *rotated);
  EXPECT_TRUE(WaitFor([&] { return ListNodes(ChannelAs("bob")).ok(); }, kSettle));
}

TEST(TlsFilesTest, AKeyFileWritableByOthersIsRefusedWithItsPath) {
  testing::TempDir dir;
  auto ca = CertificateAuthority::Create("ca", absl::Hours(1));
  ASSERT_TRUE(ca.ok());
  auto leaf = ca->Issue(NodeSpec("n1"));
  ASSERT_TRUE(leaf.ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("ca.crt"), ca->self().cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("n1.crt"), leaf->cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("n1.key"), leaf->key_pem, 0666).ok());
  ASSERT_EQ(::chmod(dir.Path("n1.key").c_str(), 0666), 0);
  TlsFiles files{dir.Path("n1.crt"), dir.Path("n1.key"), dir.Path("ca.crt")};
  absl::Status status = CheckTlsFiles(files);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr(dir.Path("n1.key")));
  EXPECT_FALSE(MakeServerTlsCredentials(files).ok());
  EXPECT_FALSE(MakeChannelTlsCredentials(files).ok());

  ASSERT_EQ(::chmod(dir.Path("n1.key").c_str(), 0600), 0);
  EXPECT_TRUE(CheckTlsFiles(files).ok());
  // A key that is not the certificate's.
  auto other = ca->Issue(NodeSpec("n2"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WriteFileAtomically(dir.Path("n1.key"), other->key_pem, 0600).ok());
  EXPECT_THAT(CheckTlsFiles(files).message(), HasSubstr("does not match the certificate"));
  EXPECT_THAT(
      CheckTlsFiles({dir.Path("missing.crt"), dir.Path("n1.key"), dir.Path("ca.crt")}).message(),
      HasSubstr(dir.Path("missing.crt")));
}

// tls.crl_directory: a node certificate a CRL of its CA revokes fails the handshake; its
// CA's other certificates, and those of a CA with no CRL in the folder, still connect.
TEST_F(MtlsTest, ARevokedNodeCertificateIsRefusedAtTheHandshake) {
  auto other = CertificateAuthority::Create("tended other test CA", absl::Hours(24));
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(
      WriteFileAtomically(dir_.Path("client-ca.crt"), ca_->self().cert_pem + other->self().cert_pem)
          .ok());
  auto node_a = ca_->Issue(NodeSpec("node-a"));
  auto node_b = ca_->Issue(NodeSpec("node-b"));
  auto node_c = other->Issue(NodeSpec("node-c"));
  ASSERT_TRUE(node_a.ok() && node_b.ok() && node_c.ok());
  Write("node-a", *node_a);
  Write("node-b", *node_b);
  Write("node-c", *node_c);
  auto crl = ca_->RevocationList({node_b->cert_pem}, absl::Hours(1));
  ASSERT_TRUE(crl.ok()) << crl.status();
  auto crl_name = HashedCrlFileName(*crl);
  ASSERT_TRUE(crl_name.ok()) << crl_name.status();
  ASSERT_TRUE(MakeDirectories(dir_.Path("crl")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("crl/" + *crl_name), *crl).ok());

  // A folder that is not there is an error at start, naming it.
  TlsFiles missing{dir_.Path("server.crt"), dir_.Path("server.key"), dir_.Path("client-ca.crt"),
                   absl::Seconds(1), dir_.Path("no-such-crls")};
  auto refused = MakeServerTlsCredentials(missing);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(dir_.Path("no-such-crls")));

  StartServer(dir_.Path("crl"));
  WireAgent a("node-a", "agent-a", "boot-1");
  a.SetChannel(ChannelAs("node-a"));
  grpc::Status a_status = a.Report();
  EXPECT_TRUE(a_status.ok()) << a_status.error_message();
  WireAgent c("node-c", "agent-c", "boot-1");
  c.SetChannel(ChannelAs("node-c"));
  grpc::Status c_status = c.Report();
  EXPECT_TRUE(c_status.ok()) << c_status.error_message();
  WireAgent b("node-b", "agent-b", "boot-1");
  b.SetChannel(ChannelAs("node-b"));
  grpc::Status b_status = b.Report();
  EXPECT_EQ(b_status.error_code(), grpc::StatusCode::UNAVAILABLE) << b_status.error_message();
  // The handshake failed: no call reached the services to be denied.
  EXPECT_EQ(Denied("node.ReportFacts"), 0);
}

// An operator revokes by publishing a newer CRL under the same <hash>.r0 name. The
// handshake's check (OpenSSL's hashed-folder lookup inside gRPC) read the old file once and
// keeps it (without the per-call check this test failed: node-b kept connecting for the
// whole minute); the per-call check refuses node-b's next call within the reload interval,
// naming the serial, and counts it.
TEST_F(MtlsTest, ACrlReplacedInPlaceRevokesWithoutARestart) {
  auto node_a = ca_->Issue(NodeSpec("node-a"));
  auto node_b = ca_->Issue(NodeSpec("node-b"));
  ASSERT_TRUE(node_a.ok() && node_b.ok());
  Write("node-a", *node_a);
  Write("node-b", *node_b);
  PublishCrl({node_a->cert_pem});
  StartServer(dir_.Path("crl"));
  // node-b connects (this handshake reads the CRL), node-a is refused by it.
  grpc::Status b_before = ReportOverNewConnection("node-b");
  ASSERT_TRUE(b_before.ok()) << b_before.error_message();
  WireAgent b_connected("node-b", "agent-node-b", "boot-1");
  b_connected.SetChannel(ChannelAs("node-b"));
  ASSERT_TRUE(b_connected.Report().ok());
  grpc::Status a_before = ReportOverNewConnection("node-a");
  EXPECT_EQ(a_before.error_code(), grpc::StatusCode::UNAVAILABLE) << a_before.error_message();

  PublishCrl({node_b->cert_pem});
  grpc::Status b_after;
  ASSERT_TRUE(WaitFor(
      [&] {
        b_after = ReportOverNewConnection("node-b");
        return !b_after.ok();
      },
      kSettle))
      << "a CRL rewritten in place was not applied";
  EXPECT_EQ(b_after.error_code(), grpc::StatusCode::UNAUTHENTICATED) << b_after.error_message();
  EXPECT_THAT(b_after.error_message(),
              HasSubstr(absl::StrCat("serial ", SerialOf(*node_b), ", issuer CN=tended test CA")));
  EXPECT_THAT(b_after.error_message(), HasSubstr("is revoked by the CRL in " + CrlPath()));
  // Calls on a connection opened before the revocation are refused too.
  grpc::Status b_connected_after = b_connected.Report();
  EXPECT_EQ(b_connected_after.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << b_connected_after.error_message();
  EXPECT_GE(Revoked("node.ReportFacts"), 2);
  EXPECT_EQ(Revoked("node.ReportFacts"), Denied("node.ReportFacts"));
  // An operator's certificate is checked the same way.
  auto bob = ca_->Issue(OperatorSpec("bob", "tended:role:admin"));
  ASSERT_TRUE(bob.ok());
  Write("bob", *bob);
  ASSERT_TRUE(ListNodes(ChannelAs("bob")).ok());
  PublishCrl({node_b->cert_pem, bob->cert_pem});
  grpc::Status bob_after;
  ASSERT_TRUE(WaitFor(
      [&] {
        bob_after = ListNodes(ChannelAs("bob"));
        return !bob_after.ok();
      },
      kSettle));
  EXPECT_EQ(bob_after.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(bob_after.error_message(), HasSubstr(absl::StrCat("serial ", SerialOf(*bob))));
  EXPECT_EQ(Revoked("operator.ListNodes"), 1);
}

// Lifting a revocation (a newer CRL without the serial) applies to the per-call check
// without a restart; a revocation the handshake already read stays until the coordinator
// restarts (or its certificate or CA files change), which docs/security.md says.
TEST_F(MtlsTest, ALiftedRevocationAppliesToCallsAndToTheHandshakeAfterARestart) {
  auto node_a = ca_->Issue(NodeSpec("node-a"));
  auto node_b = ca_->Issue(NodeSpec("node-b"));
  ASSERT_TRUE(node_a.ok() && node_b.ok());
  Write("node-a", *node_a);
  Write("node-b", *node_b);
  PublishCrl({node_a->cert_pem});
  StartServer(dir_.Path("crl"));
  ASSERT_TRUE(ReportOverNewConnection("node-b").ok());
  PublishCrl({node_a->cert_pem, node_b->cert_pem});
  ASSERT_TRUE(WaitFor([&] { return !ReportOverNewConnection("node-b").ok(); }, kSettle));

  // Both lifted.
  PublishCrl({});
  grpc::Status b_lifted;
  EXPECT_TRUE(WaitFor(
      [&] {
        b_lifted = ReportOverNewConnection("node-b");
        return b_lifted.ok();
      },
      kSettle))
      << b_lifted.error_message();
  // The per-call check has the new CRL (node-b passes it); the handshake still holds the
  // first one, which revokes node-a.
  grpc::Status a_cached = ReportOverNewConnection("node-a");
  EXPECT_EQ(a_cached.error_code(), grpc::StatusCode::UNAVAILABLE) << a_cached.error_message();

  served_.reset();
  StartServer(dir_.Path("crl"));
  grpc::Status a_restarted = ReportOverNewConnection("node-a");
  EXPECT_TRUE(a_restarted.ok()) << a_restarted.error_message();
}

// An operator who writes the CRL in place: while the file is half-written it does not
// parse, and the revocations it held before stay in force; other certificates still pass.
TEST_F(MtlsTest, AHalfWrittenCrlKeepsTheRevocationsInForce) {
  auto node_a = ca_->Issue(NodeSpec("node-a"));
  auto node_b = ca_->Issue(NodeSpec("node-b"));
  ASSERT_TRUE(node_a.ok() && node_b.ok());
  Write("node-a", *node_a);
  Write("node-b", *node_b);
  PublishCrl({});
  StartServer(dir_.Path("crl"));
  ASSERT_TRUE(ReportOverNewConnection("node-b").ok());
  PublishCrl({node_b->cert_pem});
  ASSERT_TRUE(WaitFor([&] { return !ReportOverNewConnection("node-b").ok(); }, kSettle));

  const std::string path = CrlPath();
  const std::string next = MintCrl({});
  {
    std::ofstream in_place(path, std::ios::binary | std::ios::trunc);
    in_place << next.substr(0, next.size() / 2);
  }
  ASSERT_TRUE(WaitFor([&] { return !crls_->stats().rejected.empty(); }, kSettle));
  EXPECT_THAT(crls_->stats().rejected.front(), HasSubstr(path));
  grpc::Status b_status = ReportOverNewConnection("node-b");
  EXPECT_EQ(b_status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << b_status.error_message();
  grpc::Status a_status = ReportOverNewConnection("node-a");
  EXPECT_TRUE(a_status.ok()) << a_status.error_message();

  {
    std::ofstream in_place(path, std::ios::binary | std::ios::trunc);
    in_place << next;
  }
  EXPECT_TRUE(WaitFor([&] { return ReportOverNewConnection("node-b").ok(); }, kSettle));
  EXPECT_TRUE(crls_->stats().rejected.empty());
}

// A CRL past its nextUpdate: the handshake refuses every certificate of its CA (OpenSSL's
// "CRL has expired" inside gRPC: fail closed), while the per-call check keeps its
// revocations and counts it as expired for the tended_crl_expired gauge.
TEST_F(MtlsTest, AnExpiredCrlFailsTheHandshakeOfItsCa) {
  auto node_a = ca_->Issue(NodeSpec("node-a"));
  ASSERT_TRUE(node_a.ok());
  Write("node-a", *node_a);
  RevocationListSpec spec;
  spec.last_update = -absl::Hours(2);
  spec.next_update = -absl::Hours(1);
  auto crl = ca_->RevocationList(spec);
  ASSERT_TRUE(crl.ok()) << crl.status();
  ASSERT_TRUE(MakeDirectories(dir_.Path("crl")).ok());
  ASSERT_TRUE(WriteFileAtomically(CrlPath(), *crl).ok());
  StartServer(dir_.Path("crl"));
  grpc::Status a_status = ReportOverNewConnection("node-a");
  EXPECT_EQ(a_status.error_code(), grpc::StatusCode::UNAVAILABLE) << a_status.error_message();
  EXPECT_EQ(crls_->stats().expired, 1);
  EXPECT_EQ(crls_->stats().files_loaded, 1);
}

}  // namespace
}  // namespace tended
