// The agent's check of its own certificate against its node name, on certificates minted
// by a test CA.
#include "agent/node_identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/x509_mint.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

using ::testing::HasSubstr;

class NodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::Create("node identity test CA", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<CertificateAuthority>(*std::move(ca));
  }

  // Writes a certificate with this subject and returns its path.
  std::string Mint(const std::string& name, const std::string& common_name,
                   std::vector<std::string> organizations) {
    CertificateSpec spec;
    spec.common_name = common_name;
    spec.organizations = std::move(organizations);
    auto minted = ca_->Issue(spec);
    EXPECT_TRUE(minted.ok()) << minted.status();
    std::string path = dir_.Path(name + ".pem");
    // As kubelet-client-current.pem: the certificate, then the key.
    EXPECT_TRUE(WriteFileAtomically(path, minted->cert_pem + minted->key_pem, 0600).ok());
    return path;
  }

  testing::TempDir dir_;
  std::unique_ptr<CertificateAuthority> ca_;
};

TEST_F(NodeIdentityTest, ItsOwnNodesCertificatePasses) {
  std::string cert = Mint("node1", "system:node:k8s-node1", {"system:nodes"});
  EXPECT_TRUE(CheckCertificateNamesNode(cert, "k8s-node1").ok());
}

TEST_F(NodeIdentityTest, AnotherNodesCertificateIsRefusedWithBothNames) {
  std::string cert = Mint("node2", "system:node:k8s-node2", {"system:nodes"});
  absl::Status status = CheckCertificateNamesNode(cert, "k8s-node1");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("the certificate in " + cert + " is node k8s-node2's"));
  EXPECT_THAT(status.message(), HasSubstr("this agent is node k8s-node1"));
  // A node whose name merely starts with the agent's is another node.
  EXPECT_FALSE(CheckCertificateNamesNode(cert, "k8s-node").ok());
}

TEST_F(NodeIdentityTest, ACertificateNamingNoNodeIsRefused) {
  std::string operator_cert = Mint("alice", "alice", {"tended:operators"});
  absl::Status status = CheckCertificateNamesNode(operator_cert, "k8s-node1");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("names no node (its CN is \"alice\""));
  std::string no_group = Mint("nogroup", "system:node:k8s-node1", {});
  EXPECT_THAT(CheckCertificateNamesNode(no_group, "k8s-node1").message(),
              HasSubstr("lacks O=system:nodes"));
}

TEST_F(NodeIdentityTest, UnreadableFilesNameThePath) {
  absl::Status missing = CheckCertificateNamesNode(dir_.Path("missing.pem"), "k8s-node1");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr(dir_.Path("missing.pem")));
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("junk.pem"), "not a certificate\n").ok());
  EXPECT_THAT(CheckCertificateNamesNode(dir_.Path("junk.pem"), "k8s-node1").message(),
              HasSubstr("holds no PEM certificate"));
}

}  // namespace
}  // namespace tended::agent
