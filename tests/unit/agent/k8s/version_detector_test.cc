// The node's Kubernetes versions: dpkg's status file read under the root, and on a control
// plane the kubeadm versions apt offers and the probe of the next minor's repository,
// against the fake package manager and HTTP client, and once against a real HTTP server on
// loopback. Every failure ends up as a sentence in check_error.
#include "agent/k8s/version_detector.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "agent/k8s/step_runner.h"
#include "common/file_util.h"
#include "common/proto_time.h"
#include "tests/fakes/canned_http_server.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/fake_package_manager.h"
#include "tests/fakes/node_root.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent::k8s {
namespace {

using tended::testing::CannedHttpServer;
using tended::testing::FakeHttpClient;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kNextRelease[] = "https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release";

std::string Stanza(const std::string& package, const std::string& version,
                   const std::string& status = "install ok installed") {
  return "Package: " + package + "\nStatus: " + status +
         "\nPriority: optional\nArchitecture: amd64\nVersion: " + version +
         "\nDescription: " + package + "\n more words\n .\n even more\n\n";
}

std::string NodeStatusFile() {
  return Stanza("kubeadm", "1.31.4-1.1", "hold ok installed") +
         Stanza("kubelet", "1.31.4-1.1", "hold ok installed") + Stanza("kubectl", "1.31.2-1.1") +
         Stanza("containerd.io", "1.7.24-1") + Stanza("libc6", "2.36-9+deb12u9") +
         Stanza("old-tool", "0.9", "deinstall ok config-files");
}

class VersionDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::PrepareNodeRoot(dir_.path(), "boot-1").ok());
    WriteStatus(NodeStatusFile());
  }

  void WriteStatus(const std::string& text) {
    ASSERT_TRUE(MakeDirectories(dir_.Path("var/lib/dpkg")).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("var/lib/dpkg/status"), text).ok());
  }
  void MakeControlPlane() {
    ASSERT_TRUE(MakeDirectories(dir_.Path("etc/kubernetes/manifests")).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("etc/kubernetes/manifests/kube-apiserver.yaml"),
                                    "apiVersion: v1\nkind: Pod\n")
                    .ok());
  }

  RootPath Root() const { return RootPath(dir_.path()); }

  tended::v1::K8sNodeFacts Detect(HttpClient& http, VersionDetectorOptions options = {}) {
    VersionDetector detector(packages_, http, clock_, Root(), options);
    return detector.Detect();
  }

  tended::testing::TempDir dir_;
  tended::testing::FakePackageManager packages_;
  FakeHttpClient http_;
  tended::testing::FakeClock clock_;
};

TEST(ParseInstalledPackagesTest, OnlyInstalledStanzasHeldOnesIncluded) {
  absl::StatusOr<std::map<std::string, std::string>> got = ParseInstalledPackages(
      NodeStatusFile() + "package: lower\nSTATUS: install ok installed\nversion: 2\r\n");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got,
              UnorderedElementsAre(Pair("kubeadm", "1.31.4-1.1"), Pair("kubelet", "1.31.4-1.1"),
                                   Pair("kubectl", "1.31.2-1.1"), Pair("containerd.io", "1.7.24-1"),
                                   Pair("libc6", "2.36-9+deb12u9"), Pair("lower", "2")));
  got = ParseInstalledPackages("");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(*got, IsEmpty());
  // Half-installed or unpacked packages are not installed.
  got = ParseInstalledPackages(Stanza("kubeadm", "1.32.0-1.1", "install reinstreq half-installed") +
                               Stanza("kubelet", "1.32.0-1.1", "install ok unpacked"));
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(*got, IsEmpty());
}

TEST(ParseInstalledPackagesTest, GarbageIsAClearErrorNamingTheLine) {
  auto error = [](const std::string& text) {
    absl::StatusOr<std::map<std::string, std::string>> got = ParseInstalledPackages(text);
    EXPECT_FALSE(got.ok()) << text;
    return got.ok() ? std::string() : std::string(got.status().message());
  };
  EXPECT_THAT(error(Stanza("a", "1") + "this is not deb822\n"),
              HasSubstr("line 11 is not a \"Field: value\" line: \"this is not deb822\""));
  EXPECT_THAT(error(" starts with a continuation\n"), HasSubstr("line 1 continues a field"));
  EXPECT_THAT(error("\x7f\x45LF\x02\x01\x01\n"), HasSubstr("line 1 is not"));
  EXPECT_THAT(error("Package: kubeadm\nStatus: install ok installed\n\n"),
              HasSubstr("the installed package at line 1 has no Version field"));
  EXPECT_THAT(error("Version: 1\nStatus: install ok installed\n"), HasSubstr("no Package field"));
}

TEST_F(VersionDetectorTest, ReadsInstalledVersionsAndWhetherItIsAControlPlane) {
  absl::StatusOr<tended::v1::K8sNodeFacts> facts = ReadInstalledK8s(Root());
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->kubeadm_version(), "1.31.4-1.1");
  EXPECT_EQ(facts->kubelet_version(), "1.31.4-1.1");
  EXPECT_EQ(facts->kubectl_version(), "1.31.2-1.1");
  EXPECT_EQ(facts->containerd_version(), "1.7.24-1");
  EXPECT_FALSE(facts->control_plane());

  MakeControlPlane();
  WriteStatus(Stanza("containerd", "1.6.20~ds1-1") + Stanza("containerd.io", "1.7.24-1") +
              Stanza("kubelet", "1.30.1-1.1"));
  facts = ReadInstalledK8s(Root());
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_TRUE(facts->control_plane());
  EXPECT_EQ(facts->containerd_version(), "1.6.20~ds1-1");  // Debian's containerd first.
  EXPECT_EQ(facts->kubeadm_version(), "");
  EXPECT_EQ(facts->kubelet_version(), "1.30.1-1.1");
}

TEST_F(VersionDetectorTest, MissingHugeOrGarbledStatusFilesAreErrors) {
  ASSERT_EQ(::unlink(dir_.Path("var/lib/dpkg/status").c_str()), 0);
  absl::StatusOr<tended::v1::K8sNodeFacts> facts = ReadInstalledK8s(Root());
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(facts.status().message(), HasSubstr("no dpkg database at " + dir_.path()));

  WriteStatus("garbage\n");
  facts = ReadInstalledK8s(Root());
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(facts.status().message(), HasSubstr("is not a dpkg status file: line 1"));

  // A sparse file just over the cap.
  ASSERT_EQ(::truncate(dir_.Path("var/lib/dpkg/status").c_str(), kMaxDpkgStatusBytes + 1), 0);
  facts = ReadInstalledK8s(Root());
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(VersionHelpersTest, NextMinorReleaseUrlAndProperVersions) {
  EXPECT_EQ(*NextMinor("1.31.4-1.1"), "1.32");
  EXPECT_EQ(*NextMinor("v1.9.0"), "1.10");
  EXPECT_FALSE(NextMinor("banana").ok());
  EXPECT_EQ(*ReleaseUrlForMinor(VersionDetectorOptions().repo_url_pattern, "1.32"), kNextRelease);
  EXPECT_EQ(*ReleaseUrlForMinor("http://mirror.local/k8s/v{minor}", "1.32"),
            "http://mirror.local/k8s/v1.32/Release");
  EXPECT_THAT(ReleaseUrlForMinor("https://pkgs.k8s.io/deb/", "1.32").status().message(),
              HasSubstr("has no {minor}"));
  EXPECT_THAT(ReleaseUrlForMinor("file:/srv/v{minor}/", "1.32").status().message(),
              HasSubstr("is not http(s)"));
  EXPECT_THAT(ProperKubeVersions(
                  {"1.31.2-1.1", "1.31.10-1.1", "garbage", "1.31.4-1.1", "1.31", "1.31.10-1.2"}),
              ElementsAre("1.31.10-1.1", "1.31.10-1.2", "1.31.4-1.1", "1.31.2-1.1"));
}

TEST_F(VersionDetectorTest, AWorkerReportsInstalledVersionsOnly) {
  clock_.Set(absl::FromUnixSeconds(1800000000));
  tended::v1::K8sNodeFacts facts = Detect(http_);
  EXPECT_EQ(facts.kubeadm_version(), "1.31.4-1.1");
  EXPECT_EQ(facts.containerd_version(), "1.7.24-1");
  EXPECT_FALSE(facts.control_plane());
  EXPECT_EQ(FromProtoTimestamp(facts.checked_time()), absl::FromUnixSeconds(1800000000));
  EXPECT_EQ(facts.check_error(), "");
  EXPECT_THAT(facts.kubeadm_candidates(), IsEmpty());
  EXPECT_EQ(facts.next_minor(), "");
  EXPECT_EQ(packages_.updates, 0);
  EXPECT_THAT(packages_.available_versions_asked, IsEmpty());
  EXPECT_THAT(http_.requests(), IsEmpty());
}

TEST_F(VersionDetectorTest, AControlPlaneListsCandidatesAndFindsTheNextMinor) {
  MakeControlPlane();
  packages_.available_versions["kubeadm"] = {"1.31.4-1.1", "1.31.10-1.1", "not-a-version",
                                             "1.31.0-1.1"};
  http_.Script(kNextRelease, {FakeHttpClient::Answer(200, "Origin: obs://build.opensuse.org\n")});
  tended::v1::K8sNodeFacts facts = Detect(http_);
  EXPECT_EQ(facts.check_error(), "");
  EXPECT_TRUE(facts.control_plane());
  EXPECT_EQ(packages_.updates, 1);
  EXPECT_THAT(packages_.available_versions_asked, ElementsAre("kubeadm"));
  EXPECT_THAT(facts.kubeadm_candidates(), ElementsAre("1.31.10-1.1", "1.31.4-1.1", "1.31.0-1.1"));
  EXPECT_EQ(facts.next_minor(), "1.32");
  EXPECT_TRUE(facts.next_minor_available());
  ASSERT_EQ(http_.requests().size(), 1u);
  EXPECT_EQ(http_.requests()[0].method, "GET");
  EXPECT_EQ(http_.requests()[0].url, kNextRelease);
}

TEST_F(VersionDetectorTest, NotFoundOrForbiddenMeansTheNextMinorIsNotOutYet) {
  MakeControlPlane();
  for (int code : {404, 403, 410}) {
    FakeHttpClient http;
    http.SetDefault(FakeHttpClient::Answer(code));
    tended::v1::K8sNodeFacts facts = Detect(http);
    EXPECT_EQ(facts.check_error(), "") << code;
    EXPECT_EQ(facts.next_minor(), "1.32");
    EXPECT_FALSE(facts.next_minor_available()) << code;
  }
}

TEST_F(VersionDetectorTest, RedirectsAreFollowedABoundedNumberOfTimes) {
  MakeControlPlane();
  HttpClient::Response to_cdn = FakeHttpClient::Answer(302);
  to_cdn.headers = {{"location", "https://cdn.example/repositories/v1.32/deb/Release"}};
  HttpClient::Response relative = FakeHttpClient::Answer(301);
  relative.headers = {{"location", "/final/Release"}};
  http_.Script(kNextRelease, {to_cdn});
  http_.Script("https://cdn.example/repositories/v1.32/deb/Release", {relative});
  http_.Script("https://cdn.example/final/Release", {FakeHttpClient::Answer(403)});
  http_.SetDefault(FakeHttpClient::Answer(500));
  tended::v1::K8sNodeFacts facts = Detect(http_);
  EXPECT_EQ(facts.check_error(), "");
  EXPECT_FALSE(facts.next_minor_available());
  EXPECT_EQ(http_.requests().size(), 3u);

  FakeHttpClient loop;
  HttpClient::Response again = FakeHttpClient::Answer(307);
  again.headers = {{"location", kNextRelease}};
  loop.SetDefault(again);
  facts = Detect(loop);
  EXPECT_THAT(facts.check_error(), HasSubstr("cannot tell whether Kubernetes 1.32 is available"));
  EXPECT_THAT(facts.check_error(), HasSubstr("more than 5 redirects"));
  EXPECT_EQ(loop.requests().size(), 6u);
}

TEST_F(VersionDetectorTest, FailuresBecomeSentencesAndTheRestIsStillReported) {
  MakeControlPlane();
  packages_.update_error = absl::UnavailableError("Could not resolve 'pkgs.k8s.io'");
  packages_.available_versions["kubeadm"] = {"1.31.4-1.1"};
  http_.SetDefault(FakeHttpClient::Answer(500, "oops"));
  tended::v1::K8sNodeFacts facts = Detect(http_);
  EXPECT_THAT(facts.check_error(), HasSubstr("refreshing the package lists failed"));
  EXPECT_THAT(facts.check_error(), HasSubstr("Could not resolve 'pkgs.k8s.io'"));
  EXPECT_THAT(facts.check_error(), HasSubstr("HTTP 500"));
  EXPECT_THAT(facts.kubeadm_candidates(), ElementsAre("1.31.4-1.1"));
  EXPECT_EQ(facts.kubelet_version(), "1.31.4-1.1");
  EXPECT_FALSE(facts.next_minor_available());

  packages_.update_error = absl::OkStatus();
  packages_.available_versions_error = absl::InternalError("apt engine (available_versions) died");
  FakeHttpClient down;
  down.SetDefault(absl::UnavailableError("GET https://pkgs.k8s.io/...: connection refused"));
  facts = Detect(down);
  EXPECT_THAT(facts.check_error(), HasSubstr("listing the kubeadm versions failed: apt engine"));
  EXPECT_THAT(facts.check_error(), HasSubstr("connection refused"));
  EXPECT_EQ(facts.check_error().find("refreshing"), std::string::npos);

  // A garbled dpkg database: still a report, with the control plane known.
  packages_.available_versions_error = absl::OkStatus();
  WriteStatus("\x01\x02garbage\n");
  facts = Detect(http_);
  EXPECT_THAT(facts.check_error(), HasSubstr("cannot read the installed packages"));
  EXPECT_TRUE(facts.control_plane());
  EXPECT_EQ(facts.kubeadm_version(), "");
  EXPECT_TRUE(facts.has_checked_time());

  // kubeadm not installed on a control plane: no next minor to look for.
  WriteStatus(Stanza("kubelet", "1.31.4-1.1"));
  facts = Detect(http_);
  EXPECT_THAT(facts.check_error(), HasSubstr("kubeadm is not installed"));
  EXPECT_EQ(facts.next_minor(), "");
}

// The real libcurl client against a server on loopback: 200, 404, and one that never answers.
TEST_F(VersionDetectorTest, ProbesARealServer) {
  MakeControlPlane();
  CurlHttpClient curl;
  {
    CannedHttpServer server(CannedHttpServer::Response(200, "Origin: k8s\n", "text/plain"));
    VersionDetectorOptions options;
    options.repo_url_pattern = server.base_url() + "/core:/stable:/v{minor}/deb/";
    tended::v1::K8sNodeFacts facts = Detect(curl, options);
    EXPECT_EQ(facts.check_error(), "");
    EXPECT_TRUE(facts.next_minor_available());
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_THAT(server.requests()[0], HasSubstr("GET /core:/stable:/v1.32/deb/Release HTTP/1.1"));
  }
  {
    CannedHttpServer server(CannedHttpServer::Response(404, "not found", "text/plain"));
    VersionDetectorOptions options;
    options.repo_url_pattern = server.base_url() + "/v{minor}/";
    tended::v1::K8sNodeFacts facts = Detect(curl, options);
    EXPECT_EQ(facts.check_error(), "");
    EXPECT_FALSE(facts.next_minor_available());
    EXPECT_EQ(facts.next_minor(), "1.32");
  }
  {
    CannedHttpServer server("", /*hang=*/true);
    VersionDetectorOptions options;
    options.repo_url_pattern = server.base_url() + "/v{minor}/";
    options.probe_timeout = absl::Seconds(1);
    const absl::Time start = absl::Now();
    tended::v1::K8sNodeFacts facts = Detect(curl, options);
    EXPECT_LT(absl::Now() - start, absl::Seconds(20));
    EXPECT_THAT(facts.check_error(), HasSubstr("cannot tell whether Kubernetes 1.32 is available"));
    EXPECT_FALSE(facts.next_minor_available());
  }
}

}  // namespace
}  // namespace tended::agent::k8s

namespace tended::agent::k8s {
namespace {

// The reader the agent uses for every report parses dpkg's status again only when dpkg
// replaced it; the control plane check follows the manifest at once.
TEST_F(VersionDetectorTest, TheInstalledReaderParsesAgainOnlyWhenTheStatusFileChanged) {
  DpkgInstalledK8sReader reader(Root());
  absl::StatusOr<tended::v1::K8sNodeFacts> facts = reader.Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->kubelet_version(), "1.31.4-1.1");
  EXPECT_FALSE(facts->control_plane());

  // Overwritten in place with garbage of the same size, its times put back: not parsed again.
  const std::string path = dir_.Path("var/lib/dpkg/status");
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  {
    std::FILE* file = std::fopen(path.c_str(), "r+");
    ASSERT_NE(file, nullptr);
    const std::string garbage(static_cast<size_t>(before.st_size), '\x01');
    ASSERT_EQ(std::fwrite(garbage.data(), 1, garbage.size(), file), garbage.size());
    std::fclose(file);
  }
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  MakeControlPlane();
  facts = reader.Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->kubelet_version(), "1.31.4-1.1");
  EXPECT_TRUE(facts->control_plane());

  // Replaced as dpkg does (a new file renamed over it): read again.
  WriteStatus(Stanza("kubelet", "1.32.0-1.1"));
  facts = reader.Read();
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->kubelet_version(), "1.32.0-1.1");
  EXPECT_EQ(facts->kubeadm_version(), "");
  // Gone: the error, not the old answer.
  ASSERT_TRUE(RemoveFileIfExists(path).ok());
  EXPECT_FALSE(reader.Read().ok());
}

}  // namespace
}  // namespace tended::agent::k8s
