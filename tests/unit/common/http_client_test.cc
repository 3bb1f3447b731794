#include "common/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "tests/fakes/canned_http_server.h"
#include "tests/fakes/capture_http_server.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"
#include "tests/fakes/process_runner.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using testing::CannedHttpServer;
using testing::CaptureServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// Sends `request` and reports how long it took in real time.
absl::StatusOr<HttpClient::Response> Timed(const HttpClient::Request& request,
                                           absl::Duration* took) {
  CurlHttpClient client;
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpClient::Response> response = client.Send(request);
  *took = absl::Now() - start;
  return response;
}

HttpClient::Request Get(const std::string& url) {
  HttpClient::Request request;
  request.url = url;
  request.timeout = absl::Seconds(10);
  return request;
}

TEST(CurlHttpClientTest, EveryStatusCodeIsAnAnswerWithItsHeadersAndBody) {
  for (int code : {200, 201, 204, 301, 404, 429, 500, 503}) {
    SCOPED_TRACE(code);
    const std::string body = code == 204 ? "" : absl::StrCat("body of ", code);
    CannedHttpServer server(
        absl::StrCat("HTTP/1.1 ", code, " Whatever\r\nContent-Length: ", body.size(),
                     "\r\nX-Request-Id: abc\r\nRetry-After:  7 \r\nLocation: /elsewhere\r\n"
                     "Connection: close\r\n\r\n",
                     body));
    CurlHttpClient client;
    absl::StatusOr<HttpClient::Response> response = client.Send(Get(server.base_url() + "/x"));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status_code, code);
    EXPECT_EQ(response->ok(), code / 100 == 2);
    EXPECT_EQ(response->body, body);
    EXPECT_EQ(response->Header("x-request-id"), "abc");
    EXPECT_EQ(response->Header("RETRY-AFTER"), "7");
    EXPECT_EQ(response->Header("absent"), "");
    // A redirect is not followed.
    EXPECT_EQ(server.requests().size(), 1u);
  }
}

TEST(CurlHttpClientTest, SendsTheMethodHeadersAndBody) {
  CaptureServer server;
  CurlHttpClient client;
  for (const char* method : {"POST", "PATCH", "PUT", "DELETE"}) {
    SCOPED_TRACE(method);
    HttpClient::Request request = Get(server.Base() + "/hook?team=ops");
    request.method = method;
    request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer t0k"}};
    request.body = R"({"text":"hello"})";
    request.user_agent = "tended-test/1";
    absl::StatusOr<HttpClient::Response> response = client.Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status_code, 200);
    EXPECT_EQ(response->body, "ok");
  }
  HttpClient::Request bare = Get(server.Base() + "/nodes/a");
  bare.method = "DELETE";
  ASSERT_TRUE(client.Send(bare).ok());

  std::vector<HttpRequest> seen = server.requests();
  ASSERT_EQ(seen.size(), 5u);
  std::vector<std::string> methods;
  for (size_t i = 0; i < 4; ++i) {
    methods.push_back(seen[i].method);
    EXPECT_EQ(seen[i].target, "/hook?team=ops");
    EXPECT_EQ(seen[i].body, R"({"text":"hello"})");
    EXPECT_EQ(seen[i].headers.at("content-type"), "application/json");
    EXPECT_EQ(seen[i].headers.at("authorization"), "Bearer t0k");
    EXPECT_EQ(seen[i].headers.at("user-agent"), "tended-test/1");
    EXPECT_EQ(seen[i].headers.count("expect"), 0u);
  }
  EXPECT_THAT(methods, ElementsAre("POST", "PATCH", "PUT", "DELETE"));
  EXPECT_EQ(seen[4].method, "DELETE");
  EXPECT_EQ(seen[4].body, "");
}

TEST(CurlHttpClientTest, AServerThatNeverAnswersTimesOut) {
  CannedHttpServer server(/*response=*/"", /*hang=*/true);
  HttpClient::Request request = Get(server.base_url() + "/api/v1/alerts");
  request.timeout = absl::Milliseconds(300);
  absl::Duration took;
  absl::StatusOr<HttpClient::Response> response = Timed(request, &took);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_THAT(std::string(response.status().message()),
              StartsWith(absl::StrCat("GET ", server.base_url(),
                                      "/api/v1/alerts: no complete answer within 300ms (")));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(CurlHttpClientTest, ARefusedConnectionIsUnavailableAtOnce) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string url = absl::StrCat("http://127.0.0.1:", *port, "/metrics");
  HttpClient::Request request = Get(url);
  request.timeout = absl::Seconds(20);
  absl::Duration took;
  absl::StatusOr<HttpClient::Response> response = Timed(request, &took);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_THAT(std::string(response.status().message()),
              StartsWith(absl::StrCat("GET ", url, ": cannot connect")));
  EXPECT_LT(took, absl::Seconds(10));
}

TEST(CurlHttpClientTest, AnAnswerOverTheCapIsAnErrorNotATruncation) {
  constexpr size_t kCap = 4096;
  auto fetch = [&](const std::string& canned) {
    CannedHttpServer server(canned);
    HttpClient::Request request = Get(server.base_url());
    request.max_response_bytes = kCap;
    return CurlHttpClient().Send(request);
  };
  // Announced by Content-Length, and sent without one (read until the server closes).
  absl::StatusOr<HttpClient::Response> announced =
      fetch(CannedHttpServer::Response(200, std::string(kCap + 1, 'x')));
  EXPECT_EQ(announced.status().code(), absl::StatusCode::kResourceExhausted) << announced.status();
  EXPECT_THAT(announced.status().message(), HasSubstr("answer larger than 4096 bytes"));
  absl::StatusOr<HttpClient::Response> unannounced =
      fetch(absl::StrCat("HTTP/1.0 200 OK\r\n\r\n", std::string(10 * kCap, 'x')));
  EXPECT_EQ(unannounced.status().code(), absl::StatusCode::kResourceExhausted)
      << unannounced.status();
  // Headers count too.
  absl::StatusOr<HttpClient::Response> headers = fetch(absl::StrCat(
      "HTTP/1.0 200 OK\r\nX-Big: ", std::string(kCap, 'h'), "\r\nContent-Length: 2\r\n\r\nok"));
  EXPECT_EQ(headers.status().code(), absl::StatusCode::kResourceExhausted) << headers.status();

  // Up to the cap is fine: the body and its one small header.
  const std::string fits(kCap - 100, 'x');
  absl::StatusOr<HttpClient::Response> whole =
      fetch(absl::StrCat("HTTP/1.0 200 OK\r\nContent-Length: ", fits.size(), "\r\n\r\n", fits));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->body, fits);
}

TEST(CurlHttpClientTest, StreamsA2xxBodyAndKeepsAnErrorBody) {
  std::string lines;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&lines, "{\"event\":", i, "}\n");
  CannedHttpServer ok_server(CannedHttpServer::Response(200, lines));
  HttpClient::Request request = Get(ok_server.base_url());
  std::string streamed;
  request.on_body = [&](absl::string_view piece) {
    streamed.append(piece.data(), piece.size());
    return true;
  };
  request.max_response_bytes = 512;  // A streamed body does not count, only the headers.
  absl::StatusOr<HttpClient::Response> response = CurlHttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(streamed, lines);
  EXPECT_EQ(response->body, "");

  CannedHttpServer error_server(CannedHttpServer::Response(410, "gone"));
  request.url = error_server.base_url();
  request.max_response_bytes = kDefaultMaxHttpResponseBytes;
  streamed.clear();
  response = CurlHttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 410);
  EXPECT_EQ(response->body, "gone");
  EXPECT_EQ(streamed, "");

  request.url = ok_server.base_url();
  request.on_body = [](absl::string_view) { return false; };
  EXPECT_EQ(CurlHttpClient().Send(request).status().code(), absl::StatusCode::kCancelled);
}

TEST(CurlHttpClientTest, TheCancelFlagEndsAHangingRequestSoon) {
  CannedHttpServer server(/*response=*/"", /*hang=*/true);
  std::atomic<bool> cancel{false};
  HttpClient::Request request = Get(server.base_url());
  request.timeout = absl::Seconds(30);
  request.cancel = &cancel;
  std::thread canceller([&] {
    testing::PollUntil([&]() -> absl::StatusOr<bool> { return server.requests().size() == 1; },
                       absl::Seconds(10), "the request to arrive")
        .IgnoreError();
    cancel = true;
  });
  absl::Duration took;
  absl::StatusOr<HttpClient::Response> response = Timed(request, &took);
  canceller.join();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled) << response.status();
  EXPECT_LT(took, absl::Seconds(10));
  // Raised before it starts: not sent at all.
  EXPECT_EQ(CurlHttpClient().Send(request).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(CurlHttpClientTest, MessagesHideSecrets) {
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  HttpClient::Request request =
      Get(absl::StrCat("http://tended:s3cret@127.0.0.1:", *port, "/api/v1/alerts"));
  absl::StatusOr<HttpClient::Response> response = CurlHttpClient().Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(response.status().message(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(response.status().message(), HasSubstr("tended:REDACTED@127.0.0.1"));

  request.url = absl::StrCat("http://127.0.0.1:", *port, "/services/T1/B2/Xsecret3");
  request.url_for_messages = "slack";
  response = CurlHttpClient().Send(request);
  EXPECT_THAT(std::string(response.status().message()), StartsWith("GET slack: cannot connect"));
  EXPECT_THAT(response.status().message(), Not(HasSubstr("Xsecret3")));

  EXPECT_EQ(RedactUrlPassword("https://u:p@example.com/x"), "https://u:REDACTED@example.com/x");
  EXPECT_EQ(RedactUrlPassword("https://example.com/x"), "https://example.com/x");
}

TEST(CurlHttpClientTest, WhatCannotBeSentIsInvalidArgument) {
  CurlHttpClient client;
  EXPECT_EQ(client.Send(Get("http://[not-a-host")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Send(Get("ftp://127.0.0.1/file")).status().code(),
            absl::StatusCode::kInvalidArgument);
  HttpClient::Request injected = Get("http://127.0.0.1:1/");
  injected.headers = {{"X-Note", "a\r\nX-Evil: 1"}};
  EXPECT_EQ(client.Send(injected).status().code(), absl::StatusCode::kInvalidArgument);
  HttpClient::Request bad_method = Get("http://127.0.0.1:1/");
  bad_method.method = "GET /other";
  EXPECT_EQ(client.Send(bad_method).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- TLS, against `openssl s_server` with certificates made for the test ----

constexpr char kOpenssl[] = "/usr/bin/openssl";

class CurlHttpClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kOpenssl, X_OK) != 0) GTEST_SKIP() << kOpenssl << " is not installed";
    ASSERT_TRUE(WriteFileAtomically(dir_.Path("san.ext"), "subjectAltName=IP:127.0.0.1\n").ok());
    MakeCa("ca");
    MakeCa("other-ca");
    MakeSigned("server", "127.0.0.1", "ca", "san.ext");
    MakeSigned("client", "tended-client", "ca", "");
  }

  // Runs openssl with `args` and waits (bounded) for it to succeed.
  void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), kOpenssl);
    auto process = testing::ChildProcess::Start(args, dir_.Path("openssl.log"));
    ASSERT_TRUE(process.ok()) << process.status();
    ASSERT_TRUE(testing::PollUntil([&]() -> absl::StatusOr<bool> { return !(*process)->Running(); },
                                   absl::Seconds(30), "openssl to finish", nullptr,
                                   absl::Milliseconds(20))
                    .ok());
    ASSERT_EQ((*process)->DescribeExit(), "exited with 0") << (*process)->LogTail();
  }
  void MakeCa(const std::string& name) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", dir_.Path(name + ".key"), "-out", dir_.Path(name + ".pem"), "-days", "2",
             "-subj", "/CN=" + name});
  }
  void MakeSigned(const std::string& name, const std::string& cn, const std::string& ca,
                  const std::string& extensions) {
    Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             dir_.Path(name + ".key"), "-out", dir_.Path(name + ".csr"), "-subj", "/CN=" + cn});
    std::vector<std::string> sign = {"x509",
                                     "-req",
                                     "-in",
                                     dir_.Path(name + ".csr"),
                                     "-CA",
                                     dir_.Path(ca + ".pem"),
                                     "-CAkey",
                                     dir_.Path(ca + ".key"),
                                     "-CAcreateserial",
                                     "-days",
                                     "2",
                                     "-out",
                                     dir_.Path(name + ".pem")};
    if (!extensions.empty()) {
      sign.push_back("-extfile");
      sign.push_back(dir_.Path(extensions));
    }
    Openssl(sign);
  }
  std::string Read(const std::string& name) {
    absl::StatusOr<std::string> text = ReadFileToString(dir_.Path(name));
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  // Serves https://127.0.0.1:<port>/ (s_server's status page); with `require_client_cert`
  // it demands a certificate signed by "ca".
  void StartServer(bool require_client_cert) {
    absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
    ASSERT_TRUE(port.ok()) << port.status();
    std::vector<std::string> argv = {kOpenssl,  "s_server",
                                     "-accept", absl::StrCat("127.0.0.1:", *port),
                                     "-cert",   dir_.Path("server.pem"),
                                     "-key",    dir_.Path("server.key"),
                                     "-www"};
    if (require_client_cert) {
      for (const std::string& arg : {std::string("-Verify"), std::string("1"),
                                     std::string("-CAfile"), dir_.Path("ca.pem")}) {
        argv.push_back(arg);
      }
    }
    auto server = testing::ChildProcess::Start(argv, dir_.Path("s_server.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    url_ = absl::StrCat("https://127.0.0.1:", *port, "/");
    // Up once a connection is accepted (whatever TLS then says).
    ASSERT_TRUE(testing::PollUntil(
                    [&]() -> absl::StatusOr<bool> {
                      HttpClient::Request probe = Get(url_);
                      probe.timeout = absl::Seconds(2);
                      probe.tls.insecure_skip_verify = true;
                      absl::StatusOr<HttpClient::Response> answer = CurlHttpClient().Send(probe);
                      if (!answer.ok() &&
                          absl::StrContains(answer.status().message(), "cannot connect")) {
                        return absl::UnavailableError(answer.status().ToString());
                      }
                      return true;
                    },
                    absl::Seconds(20), "openssl s_server to listen", server_.get())
                    .ok())
        << server_->LogTail();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ChildProcess> server_;
  std::string url_;
};

TEST_F(CurlHttpClientTlsTest, TrustsTheGivenCaAsPemOrFile) {
  StartServer(/*require_client_cert=*/false);
  HttpClient::Request request = Get(url_);
  request.tls.ca_pem = Read("ca.pem");
  absl::StatusOr<HttpClient::Response> response = CurlHttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);

  request.tls = {};
  request.tls.ca_file = dir_.Path("ca.pem");
  response = CurlHttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
}

TEST_F(CurlHttpClientTlsTest, AnotherCaIsRefusedUnlessVerificationIsSkipped) {
  StartServer(/*require_client_cert=*/false);
  HttpClient::Request request = Get(url_);
  request.tls.ca_pem = Read("other-ca.pem");
  absl::StatusOr<HttpClient::Response> response = CurlHttpClient().Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_THAT(response.status().message(),
              HasSubstr("the server's TLS certificate is not trusted"));

  request.tls.insecure_skip_verify = true;
  response = CurlHttpClient().Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
}

TEST_F(CurlHttpClientTlsTest, PresentsAClientCertificateAsPemOrFiles) {
  StartServer(/*require_client_cert=*/true);
  HttpClient::Request request = Get(url_);
  request.tls.ca_pem = Read("ca.pem");
  absl::StatusOr<HttpClient::Response> without = CurlHttpClient().Send(request);
  EXPECT_EQ(without.status().code(), absl::StatusCode::kUnavailable) << without.status();

  request.tls.client_certificate_pem = Read("client.pem");
  request.tls.client_key_pem = Read("client.key");
  absl::StatusOr<HttpClient::Response> with_pem = CurlHttpClient().Send(request);
  ASSERT_TRUE(with_pem.ok()) << with_pem.status();
  EXPECT_EQ(with_pem->status_code, 200);

  request.tls.client_certificate_pem.clear();
  request.tls.client_key_pem.clear();
  request.tls.client_certificate_file = dir_.Path("client.pem");
  request.tls.client_key_file = dir_.Path("client.key");
  absl::StatusOr<HttpClient::Response> with_files = CurlHttpClient().Send(request);
  ASSERT_TRUE(with_files.ok()) << with_files.status();
  EXPECT_EQ(with_files->status_code, 200);
}

}  // namespace
}  // namespace tended
