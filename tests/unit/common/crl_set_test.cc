#include "common/crl_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/x509_mint.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kRefresh = absl::Seconds(10);

CertificateSpec Client(const std::string& name) {
  CertificateSpec spec;
  spec.common_name = name;
  spec.organizations = {"tended:operators"};
  return spec;
}

// The DER inside a one-block PEM.
std::string PemToDer(const std::string& pem) {
  std::string body;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (!line.empty() && line.front() != '-') absl::StrAppend(&body, line);
  }
  std::string der;
  EXPECT_TRUE(absl::Base64Unescape(body, &der));
  return der;
}

// Writes in place: same inode, as an operator's editor or `cp` would.
void WriteInPlace(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

class CrlSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CertificateAuthority::Create("tended test CA", absl::Hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<CertificateAuthority>(*std::move(ca));
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("ca.crt"), ca_->self().cert_pem).ok());
    ASSERT_TRUE(MakeDirectories(dir_.Path("crl")).ok());
    for (const char* name : {"a", "b", "c"}) {
      auto minted = ca_->Issue(Client(name));
      ASSERT_TRUE(minted.ok()) << minted.status();
      certs_.push_back(minted->cert_pem);
      auto key = RevocationKeyOfPem(minted->cert_pem);
      ASSERT_TRUE(key.ok()) << key.status();
      keys_.push_back(*key);
    }
  }

  std::string Crl(const std::vector<std::string>& revoked, absl::Duration last_update = {},
                  int64_t number = -1, const CertificateAuthority* by = nullptr) {
    RevocationListSpec spec;
    spec.revoked_cert_pems = revoked;
    spec.last_update = last_update;
    spec.number = number;
    auto crl = (by != nullptr ? by : ca_.get())->RevocationList(spec);
    EXPECT_TRUE(crl.ok()) << crl.status();
    return crl.ok() ? *crl : "";
  }

  void Publish(const std::string& name, const std::string& contents) {
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("crl/" + name), contents).ok());
  }

  std::unique_ptr<CrlSet> Load(CrlSet::Options options = {}) {
    options.directory = dir_.Path("crl");
    options.ca_file = dir_.Path("ca.crt");
    options.refresh_interval = kRefresh;
    auto set = CrlSet::Create(options, clock_);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *std::move(set) : nullptr;
  }

  bool Revoked(CrlSet& set, int which) {
    return set.Find(keys_[which].issuer_der, keys_[which].serial).has_value();
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::unique_ptr<CertificateAuthority> ca_;
  std::vector<std::string> certs_;
  std::vector<RevocationKey> keys_;
};

TEST(SerialHexTest, UpperCaseWithoutLeadingZeros) {
  EXPECT_EQ(SerialHex(std::string("\x00\x0a\xbc", 3), false), "ABC");
  EXPECT_EQ(SerialHex(std::string("\x00", 1), false), "0");
  EXPECT_EQ(SerialHex("", false), "0");
  EXPECT_EQ(SerialHex("\x01", true), "-1");
}

TEST_F(CrlSetTest, FindsWhatTheCrlRevokesForItsIssuerOnly) {
  Publish("tended.crl.pem", Crl({certs_[1]}));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_FALSE(Revoked(*set, 0));
  std::optional<CrlSet::Revocation> found = set->Find(keys_[1].issuer_der, keys_[1].serial);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->serial, keys_[1].serial);
  EXPECT_THAT(found->issuer, HasSubstr("CN=tended test CA"));
  EXPECT_EQ(found->file, dir_.Path("crl/tended.crl.pem"));
  // The same serial from another issuer is not revoked.
  EXPECT_FALSE(set->Find("another issuer", keys_[1].serial).has_value());
  CrlSet::Stats stats = set->stats();
  EXPECT_EQ(stats.files_loaded, 1);
  EXPECT_THAT(stats.rejected, IsEmpty());
  EXPECT_EQ(stats.issuers, 1);
  EXPECT_EQ(stats.revoked_serials, 1);
  EXPECT_EQ(stats.expired, 0);
}

TEST_F(CrlSetTest, ACrlReplacedInPlaceAppliesAfterTheRefreshInterval) {
  auto first = Crl({certs_[0]});
  auto name = HashedCrlFileName(first);
  ASSERT_TRUE(name.ok());
  Publish(*name, first);
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_FALSE(Revoked(*set, 1));

  Publish(*name, Crl({certs_[1]}, absl::Seconds(1)));
  // Not looked at again before the interval has passed.
  clock_.Advance(kRefresh - absl::Seconds(1));
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_FALSE(Revoked(*set, 1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Revoked(*set, 1));
  // Lifted: the newer CRL does not list it.
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_EQ(set->stats().reloads, 2);
}

TEST_F(CrlSetTest, AnUnchangedFolderIsNotReadAgain) {
  Publish("tended.crl.pem", Crl({certs_[0]}));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(kRefresh);
    EXPECT_TRUE(Revoked(*set, 0));
  }
  EXPECT_EQ(set->stats().reloads, 1);
  // A file that appears is read at the next check.
  Publish("more.crl.pem", Crl({certs_[2]}, absl::Seconds(1)));
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 2));
  EXPECT_EQ(set->stats().reloads, 2);
}

TEST_F(CrlSetTest, GarbageIsRejectedByNameAndTheOtherCrlsApply) {
  Publish("tended.crl.pem", Crl({certs_[0]}));
  Publish("garbage.r0", "this is not a CRL\n");
  Publish("truncated.pem", Crl({certs_[1]}).substr(0, 200));
  Publish("binary.der", std::string("\x30\x82\xff\xff\x00\x01", 6));
  Publish("empty.r1", "");
  ASSERT_TRUE(MakeDirectories(dir_.Path("crl/subfolder")).ok());
  Publish(".hidden", "skipped: a dot file");
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_FALSE(Revoked(*set, 1));
  CrlSet::Stats stats = set->stats();
  EXPECT_EQ(stats.files_loaded, 1);
  ASSERT_THAT(stats.rejected, SizeIs(4));
  EXPECT_THAT(stats.rejected[0], HasSubstr(dir_.Path("crl/binary.der")));
  EXPECT_THAT(stats.rejected[1], HasSubstr(dir_.Path("crl/empty.r1")));
  EXPECT_THAT(stats.rejected[2], HasSubstr(dir_.Path("crl/garbage.r0")));
  EXPECT_THAT(stats.rejected[3], HasSubstr(dir_.Path("crl/truncated.pem")));
}

TEST_F(CrlSetTest, AHalfWrittenFileKeepsItsPreviousCrlInForce) {
  const std::string path = dir_.Path("crl/tended.crl.pem");
  WriteInPlace(path, Crl({certs_[0]}));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(Revoked(*set, 0));

  const std::string next = Crl({certs_[0], certs_[1]}, absl::Seconds(1));
  WriteInPlace(path, next.substr(0, next.size() / 2));
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_FALSE(Revoked(*set, 1));
  CrlSet::Stats stats = set->stats();
  EXPECT_EQ(stats.files_loaded, 1);
  ASSERT_THAT(stats.rejected, SizeIs(1));
  EXPECT_THAT(stats.rejected[0], HasSubstr("its previous CRL stays in force"));

  WriteInPlace(path, next);
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_TRUE(Revoked(*set, 1));
  EXPECT_THAT(set->stats().rejected, IsEmpty());

  // Removed: its CRL no longer applies.
  ASSERT_TRUE(RemoveFileIfExists(path).ok());
  clock_.Advance(kRefresh);
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_EQ(set->stats().issuers, 0);
}

TEST_F(CrlSetTest, CrlsNotSignedByTheTrustedCasAreRejected) {
  auto stranger = CertificateAuthority::Create("a stranger CA", absl::Hours(24));
  ASSERT_TRUE(stranger.ok());
  // The same subject as ours, another key: the signature does not verify.
  auto impostor = CertificateAuthority::Create("tended test CA", absl::Hours(24));
  ASSERT_TRUE(impostor.ok());
  Publish("stranger.pem", Crl({certs_[0]}, {}, -1, &*stranger));
  Publish("impostor.pem", Crl({certs_[1]}, {}, -1, &*impostor));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_FALSE(Revoked(*set, 1));
  CrlSet::Stats stats = set->stats();
  EXPECT_EQ(stats.files_loaded, 0);
  ASSERT_THAT(stats.rejected, SizeIs(2));
  EXPECT_THAT(stats.rejected[0], HasSubstr("not signed by any CA in"));
  EXPECT_THAT(stats.rejected[1], HasSubstr("CN=a stranger CA"));
}

TEST_F(CrlSetTest, TheNewestCrlOfAnIssuerApplies) {
  // By lastUpdate: an old CRL left beside the new one does not bring its revocation back.
  Publish("old.pem", Crl({certs_[0]}, -absl::Hours(2)));
  Publish("new.pem", Crl({certs_[1]}, -absl::Hours(1)));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_TRUE(Revoked(*set, 1));
  EXPECT_EQ(set->stats().issuers, 1);

  // By CRL number, when both have one, whatever the dates say.
  Publish("old.pem", Crl({certs_[0]}, -absl::Hours(1), 8));
  Publish("new.pem", Crl({certs_[1]}, -absl::Hours(3), 9));
  clock_.Advance(kRefresh);
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_TRUE(Revoked(*set, 1));

  // A tie: what either revokes.
  Publish("old.pem", Crl({certs_[0]}, -absl::Hours(1), 9));
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_TRUE(Revoked(*set, 1));
  EXPECT_FALSE(Revoked(*set, 2));
}

TEST_F(CrlSetTest, AnExpiredCrlStillRevokesAndIsCounted) {
  Publish("tended.crl.pem", Crl({certs_[0]}));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->stats().expired, 0);
  // Minted with nextUpdate a day after now; the fake clock goes two days past it.
  clock_.Set(absl::Now() + absl::Hours(48));
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_EQ(set->stats().expired, 1);
}

TEST_F(CrlSetTest, DerCrlsAndSeveralPemCrlsInOneFileLoad) {
  auto other = CertificateAuthority::Create("tended other CA", absl::Hours(24));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(
      WriteFileAtomically(dir_.Path("ca.crt"), ca_->self().cert_pem + other->self().cert_pem).ok());
  auto theirs = other->Issue(Client("d"));
  ASSERT_TRUE(theirs.ok());
  auto their_key = RevocationKeyOfPem(theirs->cert_pem);
  ASSERT_TRUE(their_key.ok());
  Publish("both.pem", Crl({certs_[0]}, {}, 1) + Crl({theirs->cert_pem}, {}, -1, &*other));
  Publish("tended.crl", PemToDer(Crl({certs_[1]}, {}, 1)));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_TRUE(set->Find(their_key->issuer_der, their_key->serial).has_value());
  // Ours from both files: the same CRL number, a tie.
  EXPECT_TRUE(Revoked(*set, 1));
  EXPECT_EQ(set->stats().issuers, 2);
  EXPECT_EQ(set->stats().files_loaded, 2);
  // A DER CRL with bytes after it is not taken.
  Publish("tended.crl", PemToDer(Crl({certs_[1]})) + "x");
  clock_.Advance(kRefresh);
  EXPECT_THAT(set->stats().rejected, ElementsAre(HasSubstr("neither a PEM nor a DER CRL")));
}

TEST_F(CrlSetTest, WhatOneReloadReadsIsBounded) {
  // One CRL number: a tie, so what each file revokes applies.
  Publish("a.pem", Crl({certs_[0]}, {}, 1));
  Publish("b.pem", Crl({certs_[1]}, {}, 1));
  Publish("c.pem", Crl({certs_[2]}, {}, 1));
  CrlSet::Options few;
  few.max_files = 2;
  auto set = Load(few);
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(Revoked(*set, 0));
  EXPECT_TRUE(Revoked(*set, 1));
  EXPECT_FALSE(Revoked(*set, 2));
  EXPECT_THAT(set->stats().rejected,
              ElementsAre(HasSubstr(dir_.Path("crl/c.pem") + ": more than 2 files")));

  CrlSet::Options small;
  small.max_file_bytes = 100;
  set = Load(small);
  ASSERT_NE(set, nullptr);
  EXPECT_FALSE(Revoked(*set, 0));
  EXPECT_THAT(set->stats().rejected,
              ElementsAre(HasSubstr("larger than 100 bytes"), HasSubstr("larger than 100 bytes"),
                          HasSubstr("larger than 100 bytes")));
}

TEST_F(CrlSetTest, AFolderThatGoesAwayKeepsWhatWasLoaded) {
  CrlSet::Options options;
  options.directory = dir_.Path("no-such-folder");
  options.ca_file = dir_.Path("ca.crt");
  auto missing = CrlSet::Create(options, clock_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_.Path("no-such-folder")));

  Publish("tended.crl.pem", Crl({certs_[0]}));
  auto set = Load();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(RemoveFileIfExists(dir_.Path("crl/tended.crl.pem")).ok());
  ASSERT_EQ(::rmdir(dir_.Path("crl").c_str()), 0);
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 0));
  // So does a CA bundle that no longer reads.
  ASSERT_TRUE(MakeDirectories(dir_.Path("crl")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("ca.crt"), "garbage").ok());
  clock_.Advance(kRefresh);
  EXPECT_TRUE(Revoked(*set, 0));
}

}  // namespace
}  // namespace tended
