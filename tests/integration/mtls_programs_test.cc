// The shipped programs over mTLS: `tendedctl certs` mints a PKI (keys 0600 in a 0700
// folder), tended-coordinator serves with it and refuses to start with neither `tls:` nor
// --insecure, tendedctl acts as the operator its certificate names and is refused what its
// role does not allow, and /metrics counts the refusals and says the transport is secure;
// with metrics_tls, /metrics itself is HTTPS with client certificates; a CRL that `openssl
// ca` rewrites in tls.crl_directory (docs/security.md's commands) revokes without a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_util.h"
#include "common/http_client.h"
#include "tests/fakes/coordinator_process.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

const std::string kCoordinator = TENDED_BINARY_DIR "/coordinator/tended-coordinator";
const std::string kCtl = TENDED_BINARY_DIR "/coordinator/ctl/tendedctl";

struct Ran {
  std::string exit;  // "exited with 0", ...
  std::string output;
};

Ran RunProgram(const std::vector<std::string>& argv, const std::string& log_path) {
  auto child = testing::ChildProcess::Start(argv, log_path);
  if (!child.ok()) return {"not started: " + std::string(child.status().message()), ""};
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while ((*child)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  Ran ran{(*child)->DescribeExit(), ""};
  (*child)->Stop();
  ran.output = ReadFileToString(log_path).value_or("");
  (void)RemoveFileIfExists(log_path);
  return ran;
}

int Mode(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return -1;
  return static_cast<int>(info.st_mode & 07777);
}

TEST(MtlsProgramsTest, TendedctlCertsAndTheCoordinatorServeOperatorsByRole) {
  TempDir dir;
  const std::string pki = dir.Path("pki");
  Ran minted = RunProgram({kCtl, "--out", pki, "--nodes", "node-a,node-b", "--operators",
                           "alice:admin,carol:read", "certs"},
                          dir.Path("certs.log"));
  ASSERT_EQ(minted.exit, "exited with 0") << minted.output;
  EXPECT_EQ(Mode(pki), 0700);
  for (const char* stem :
       {"ca", "coordinator", "node-node-a", "node-node-b", "operator-alice", "operator-carol"}) {
    EXPECT_EQ(Mode(absl::StrCat(pki, "/", stem, ".key")), 0600) << stem;
    EXPECT_TRUE(PathExists(absl::StrCat(pki, "/", stem, ".crt"))) << stem;
  }
  // Never over existing files.
  Ran again = RunProgram({kCtl, "--out", pki, "--nodes", "node-a", "certs"}, dir.Path("again.log"));
  EXPECT_EQ(again.exit, "exited with 1");
  EXPECT_THAT(again.output, HasSubstr("exists; not overwriting"));

  auto metrics_port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(metrics_port.ok());
  const std::string config = dir.Path("coordinator.yaml");
  const std::string base = absl::StrCat("listen: 127.0.0.1:0\nstate_dir: ", dir.Path("state"),
                                        "\nmetrics_listen: 127.0.0.1:", *metrics_port, "\n");
  // Neither tls: nor --insecure: refused.
  ASSERT_TRUE(WriteFileAtomically(config, base).ok());
  Ran refused = RunProgram({kCoordinator, "--config", config}, dir.Path("refused.log"));
  EXPECT_EQ(refused.exit, "exited with 2");
  EXPECT_THAT(refused.output, HasSubstr("no `tls:` section"));

  ASSERT_TRUE(WriteFileAtomically(
                  config, absl::StrCat(base, "tls:\n  cert_file: ", pki, "/coordinator.crt\n",
                                       "  key_file: ", pki, "/coordinator.key\n",
                                       "  client_ca_file: ", pki, "/ca.crt\n"))
                  .ok());
  auto coordinator = testing::CoordinatorProcess::LaunchArgv({kCoordinator, "--config", config},
                                                             dir.Path("coordinator.log"));
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->WaitServing(absl::Seconds(60)).ok()) << (*coordinator)->LogTail();
  EXPECT_THAT((*coordinator)->Log(), HasSubstr("over mTLS"));
  const std::string address = absl::StrCat("127.0.0.1:", (*coordinator)->port());
  auto ctl_as = [&](const std::string& who, std::vector<std::string> command) {
    std::vector<std::string> argv = {kCtl,
                                     "--address",
                                     address,
                                     "--cert",
                                     absl::StrCat(pki, "/operator-", who, ".crt"),
                                     "--key",
                                     absl::StrCat(pki, "/operator-", who, ".key"),
                                     "--ca",
                                     pki + "/ca.crt"};
    argv.insert(argv.end(), command.begin(), command.end());
    return RunProgram(argv, dir.Path("ctl.log"));
  };
  Ran nodes = ctl_as("carol", {"nodes"});
  EXPECT_EQ(nodes.exit, "exited with 0") << nodes.output;
  Ran halt = ctl_as("carol", {"halt", "not", "allowed"});
  EXPECT_NE(halt.exit, "exited with 0");
  EXPECT_THAT(halt.output, HasSubstr("needs the admin role"));
  Ran admin_halt = ctl_as("alice", {"halt", "maintenance"});
  EXPECT_EQ(admin_halt.exit, "exited with 0") << admin_halt.output;
  Ran plaintext =
      RunProgram({kCtl, "--address", address, "--insecure", "nodes"}, dir.Path("ctl.log"));
  EXPECT_NE(plaintext.exit, "exited with 0");
  Ran no_cert = RunProgram({kCtl, "--address", address, "nodes"}, dir.Path("ctl.log"));
  EXPECT_EQ(no_cert.exit, "exited with 2");
  EXPECT_THAT(no_cert.output, HasSubstr("mTLS needs --cert, --key and --ca"));

  auto metrics = testing::HttpRequestLoopback(*metrics_port, "GET", "/metrics", absl::Seconds(30));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(metrics->body, HasSubstr("\ntended_insecure_transport 0\n"));
  EXPECT_THAT(
      metrics->body,
      HasSubstr("tended_permission_denied_total{service=\"operator\",method=\"Halt\"} 1\n"));
  (*coordinator)->Stop();
}

// metrics_tls on the real coordinator: HTTPS with client certificates from the PKI's CA; a
// plain-HTTP scrape and one without a certificate get nothing.
TEST(MtlsProgramsTest, TheCoordinatorServesMetricsOverTls) {
  TempDir dir;
  const std::string pki = dir.Path("pki");
  Ran minted = RunProgram({kCtl, "--out", pki, "--operators", "prometheus:read", "certs"},
                          dir.Path("certs.log"));
  ASSERT_EQ(minted.exit, "exited with 0") << minted.output;
  auto metrics_port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(metrics_port.ok());
  const std::string config = dir.Path("coordinator.yaml");
  ASSERT_TRUE(
      WriteFileAtomically(
          config, absl::StrCat("listen: 127.0.0.1:0\nstate_dir: ", dir.Path("state"),
                               "\nmetrics_listen: 127.0.0.1:", *metrics_port,
                               "\ntls:\n  cert_file: ", pki, "/coordinator.crt\n  key_file: ", pki,
                               "/coordinator.key\n  client_ca_file: ", pki,
                               "/ca.crt\nmetrics_tls:\n  cert_file: ", pki,
                               "/coordinator.crt\n  key_file: ", pki,
                               "/coordinator.key\n  client_ca_file: ", pki, "/ca.crt\n"))
          .ok());
  auto coordinator = testing::CoordinatorProcess::LaunchArgv({kCoordinator, "--config", config},
                                                             dir.Path("coordinator.log"));
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->WaitServing(absl::Seconds(60)).ok()) << (*coordinator)->LogTail();
  EXPECT_THAT((*coordinator)->Log(), HasSubstr("over HTTPS (certificate " + pki));

  HttpClient::Request scrape;
  scrape.url = absl::StrCat("https://127.0.0.1:", *metrics_port, "/metrics");
  scrape.timeout = absl::Seconds(30);
  scrape.tls.ca_file = pki + "/ca.crt";
  auto without_certificate = CurlHttpClient().Send(scrape);
  EXPECT_FALSE(without_certificate.ok() && without_certificate->status_code == 200);
  scrape.tls.client_certificate_file = pki + "/operator-prometheus.crt";
  scrape.tls.client_key_file = pki + "/operator-prometheus.key";
  auto scraped = CurlHttpClient().Send(scrape);
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_EQ(scraped->status_code, 200);
  EXPECT_THAT(scraped->body, HasSubstr("\ntended_insecure_transport 0\n"));
  auto plain = testing::HttpRequestLoopback(*metrics_port, "GET", "/metrics", absl::Seconds(30));
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  (*coordinator)->Stop();
}

// docs/security.md's revocation commands, run as written (openssl ca, openssl rehash), on a
// PKI from `tendedctl certs`, against the real coordinator: the CRL `openssl ca -gencrl`
// rewrites in place revokes carol's certificate for the next calls without a restart, the
// refusal names the serial, and /metrics counts it and the CRL files.
TEST(MtlsProgramsTest, ACrlRewrittenByOpensslCaRevokesWithoutARestart) {
  if (::access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/openssl";
  TempDir dir;
  const std::string pki = dir.Path("pki");
  Ran minted = RunProgram({kCtl, "--out", pki, "--operators", "alice:admin,carol:read", "certs"},
                          dir.Path("certs.log"));
  ASSERT_EQ(minted.exit, "exited with 0") << minted.output;
  auto shell = [&](const std::string& script) {
    return RunProgram({"/bin/sh", "-ec", absl::StrCat("cd ", pki, "\n", script)},
                      dir.Path("sh.log"));
  };
  const std::string gencrl =
      "openssl ca -config crl.cnf -keyfile ca.key -cert ca.crt -gencrl -out "
      "crl/tended.crl.pem\n";
  Ran published = shell(absl::StrCat(
      "touch index.txt\n"
      "printf '[ca]\\ndefault_ca = tended\\n[tended]\\ndatabase = index.txt\\ndefault_md = "
      "sha256\\ndefault_crl_days = 30\\n' > crl.cnf\n"
      "mkdir -p crl\n",
      gencrl, "openssl rehash crl\n"));
  ASSERT_EQ(published.exit, "exited with 0") << published.output;

  auto metrics_port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(metrics_port.ok());
  const std::string config = dir.Path("coordinator.yaml");
  ASSERT_TRUE(WriteFileAtomically(
                  config, absl::StrCat("listen: 127.0.0.1:0\nstate_dir: ", dir.Path("state"),
                                       "\nmetrics_listen: 127.0.0.1:", *metrics_port,
                                       "\ntls:\n  cert_file: ", pki, "/coordinator.crt\n",
                                       "  key_file: ", pki, "/coordinator.key\n",
                                       "  client_ca_file: ", pki, "/ca.crt\n",
                                       "  reload_interval: 1s\n  crl_directory: ", pki, "/crl\n"))
                  .ok());
  auto coordinator = testing::CoordinatorProcess::LaunchArgv({kCoordinator, "--config", config},
                                                             dir.Path("coordinator.log"));
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->WaitServing(absl::Seconds(60)).ok()) << (*coordinator)->LogTail();
  const std::string address = absl::StrCat("127.0.0.1:", (*coordinator)->port());
  auto ctl_as = [&](const std::string& who) {
    return RunProgram(
        {kCtl, "--address", address, "--cert", absl::StrCat(pki, "/operator-", who, ".crt"),
         "--key", absl::StrCat(pki, "/operator-", who, ".key"), "--ca", pki + "/ca.crt", "nodes"},
        dir.Path("ctl.log"));
  };
  Ran before = ctl_as("carol");
  ASSERT_EQ(before.exit, "exited with 0") << before.output;

  Ran revoked =
      shell(absl::StrCat("openssl ca -config crl.cnf -keyfile ca.key -cert ca.crt -revoke "
                         "operator-carol.crt\n",
                         gencrl));
  ASSERT_EQ(revoked.exit, "exited with 0") << revoked.output;
  Ran serial = shell("openssl x509 -in operator-carol.crt -noout -serial\n");
  ASSERT_EQ(serial.exit, "exited with 0") << serial.output;
  Ran after;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    after = ctl_as("carol");
  } while (after.exit == "exited with 0" && absl::Now() < deadline);
  EXPECT_NE(after.exit, "exited with 0");
  EXPECT_THAT(after.output, HasSubstr("is revoked by the CRL in " + pki + "/crl/"));
  // "serial=0A1B..." as openssl prints it; the refusal drops leading zeros.
  std::string hex = serial.output.substr(serial.output.find('=') + 1);
  hex = hex.substr(0, hex.find_first_of("\r\n"));
  hex = hex.substr(std::min(hex.find_first_not_of('0'), hex.size()));
  EXPECT_THAT(after.output, HasSubstr("serial " + hex + ","));
  Ran alice = ctl_as("alice");
  EXPECT_EQ(alice.exit, "exited with 0") << alice.output;

  auto metrics = testing::HttpRequestLoopback(*metrics_port, "GET", "/metrics", absl::Seconds(30));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(metrics->body,
              HasSubstr("tended_revoked_certificate_calls_total{service=\"operator\",method=\""
                        "ListNodes\"} 1\n"));
  // tended.crl.pem and its <hash>.r0 link.
  EXPECT_THAT(metrics->body, HasSubstr("\ntended_crl_files_loaded 2\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\ntended_crl_files_rejected 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\ntended_crl_revoked_serials 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("\ntended_crl_expired 0\n"));
  (*coordinator)->Stop();
}

}  // namespace
}  // namespace tended
