// The one HTTP(S) client for what the coordinator asks of other servers: the Kubernetes
// API, Prometheus, Slack and webhooks. HttpClient is the seam (tests/fakes/fake_http_client.h
// scripts answers); CurlHttpClient is the libcurl implementation.
//
// Every request is bounded: a timeout for the whole exchange, a cap on the answer's size (a
// larger answer is RESOURCE_EXHAUSTED, never a truncated body), http and https only, no
// redirects followed. Any HTTP status is an answer (the caller judges it); a status is only
// returned when no whole answer arrived:
//   DEADLINE_EXCEEDED   no complete answer within the timeout
//   UNAVAILABLE         the host did not resolve, the connection was refused or broke, TLS
//                       failed
//   RESOURCE_EXHAUSTED  the answer was larger than max_response_bytes
//   INVALID_ARGUMENT    the URL or a header cannot be sent
//   CANCELLED           the request's cancel flag was raised, or on_body returned false
// Messages read "<METHOD> <URL>: <what happened> (<libcurl's words>)", with any password in
// the URL replaced (or url_for_messages in its place, for URLs that carry a secret).
//
// Proxies: the usual environment variables (http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY)
// are honoured; a loopback target (localhost, 127.0.0.0/8, ::1) never goes through one.
#ifndef TENDED_COMMON_HTTP_CLIENT_H_
#define TENDED_COMMON_HTTP_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tended {

inline constexpr size_t kDefaultMaxHttpResponseBytes = size_t{16} << 20;

// How to trust the server and prove who we are. PEM text wins over a file of the same role.
// Empty: the system's CA bundle, no client certificate.
struct HttpTlsOptions {
  std::string ca_file;
  std::string ca_pem;
  std::string client_certificate_file;
  std::string client_certificate_pem;
  std::string client_key_file;
  std::string client_key_pem;
  // Accept any server certificate (a kubeconfig's insecure-skip-tls-verify).
  bool insecure_skip_verify = false;
};

class HttpClient {
 public:
  struct Request {
    std::string method = "GET";
    std::string url;
    // Sent as given; names and values must not contain CR or LF.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    // The whole exchange, connecting included.
    absl::Duration timeout = absl::Seconds(30);
    // Connecting alone; zero means the timeout.
    absl::Duration connect_timeout = absl::ZeroDuration();
    HttpTlsOptions tls;
    // Headers and kept body together; a streamed body (on_body) does not count.
    size_t max_response_bytes = kDefaultMaxHttpResponseBytes;
    // Ask for gzip/deflate/brotli/zstd and decode it (the cap applies to decoded bytes).
    bool accept_compressed = false;
    std::string user_agent = "tended";
    // Names the request in messages instead of the URL (whose password is always hidden).
    std::string url_for_messages;
    // When set, the body of a 2xx answer is handed over in pieces as it arrives instead of
    // being kept in Response::body (other answers are kept, for their error message).
    // Returning false ends the request: Send returns CANCELLED.
    std::function<bool(absl::string_view piece)> on_body;
    // When set and raised, the request ends within about a second: CANCELLED.
    const std::atomic<bool>* cancel = nullptr;
  };

  struct Response {
    int status_code = 0;
    // Names lowercased, in the order received (the final answer's only).
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The first header of that name (any case), or "".
    std::string Header(absl::string_view name) const;
    bool ok() const { return status_code >= 200 && status_code <= 299; }
  };

  virtual ~HttpClient() = default;

  // Blocking, for at most the request's timeout. Thread-safe.
  virtual absl::StatusOr<Response> Send(const Request& request) = 0;
};

// libcurl, one easy handle per request (so no connection is reused). Thread-safe.
class CurlHttpClient final : public HttpClient {
 public:
  absl::StatusOr<Response> Send(const Request& request) override;
};

// A CurlHttpClient shared by the whole process.
std::shared_ptr<HttpClient> DefaultHttpClient();

// `url` with any password replaced by "REDACTED" ("(unprintable URL)" when it does not
// parse while holding one); other URLs are returned as they are.
std::string RedactUrlPassword(const std::string& url);

}  // namespace tended

#endif  // TENDED_COMMON_HTTP_CLIENT_H_
