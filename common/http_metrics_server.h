// A minimal HTTP/1.1 server on plain sockets for /metrics: one thread accepts and answers
// each connection in turn (Connection: close), with a bounded request size and a deadline
// per connection, so a slow or hostile client delays a scrape by at most that deadline and
// costs no memory. HttpServer takes any handler (tests use it as a webhook receiver);
// StartMetricsServer serves a metrics::Registry: GET or HEAD /metrics, 404 for any other
// path, 405 for any other method. With HttpServerOptions::tls it speaks only HTTPS
// (OpenSSL), optionally requiring client certificates.
#ifndef TENDED_COMMON_HTTP_METRICS_SERVER_H_
#define TENDED_COMMON_HTTP_METRICS_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace tended {

struct HttpRequest {
  std::string method;
  std::string target;                          // As sent, with the query.
  std::string path;                            // Without the query.
  std::map<std::string, std::string> headers;  // Names lowercased.
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> extra_headers;
  bool omit_body = false;  // HEAD: headers (with the body's length) only.
};

// HTTPS: this side's certificate (chain) and key, and when client_ca_file is set the CA
// bundle every client must present a certificate from. PEM files, checked when the server
// starts (readable, matching, the key not writable by group or others). On each new
// connection their size, modification time and inode are compared with those loaded, and
// they are loaded again when one changed; a changed set that does not load is logged and
// the previous one kept.
struct HttpTlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // Empty: no client certificate is asked for.
};

struct HttpServerOptions {
  // Reading the request and writing the answer, each, must finish within this (the TLS
  // handshake counts as reading).
  absl::Duration io_timeout = absl::Seconds(5);
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 64 * 1024;
  // Unset: plain HTTP.
  std::optional<HttpTlsFiles> tls;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Listens on HOST:PORT ("127.0.0.1:0" picks a free port; "[::1]:9100" for IPv6; a name
  // is resolved). Fails with the reason when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           Handler handler,
                                                           HttpServerOptions options = {});
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return tls_ != nullptr; }
  // Stops accepting, ends the connection in progress and joins the thread. Idempotent.
  void Stop();

 private:
  class TlsContext;
  HttpServer(int listen_fd, int wake_fd, int port, Handler handler, HttpServerOptions options,
             std::unique_ptr<TlsContext> tls);
  void AcceptLoop();
  void Serve(int fd);

  const int listen_fd_;
  const int wake_fd_;  // An eventfd that ends the loop.
  const int port_;
  Handler handler_;
  const HttpServerOptions options_;
  // Used by the accepting thread only once it runs.
  std::unique_ptr<TlsContext> tls_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  std::thread thread_;
};

// Serves `registry` (which must outlive the server) on `address`.
absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsServer(const std::string& address,
                                                               const metrics::Registry* registry,
                                                               HttpServerOptions options = {});

// "plain HTTP", "HTTPS" or "HTTPS with client certificates from FILE", for logs.
std::string MetricsTransport(const std::optional<HttpTlsFiles>& tls);

// The answer StartMetricsServer gives to one request; for tests.
HttpResponse HandleMetricsRequest(const HttpRequest& request, const metrics::Registry& registry);

}  // namespace tended

#endif  // TENDED_COMMON_HTTP_METRICS_SERVER_H_
