// A minimal HTTP/1.1 server on plain sockets for /metrics: one thread accepts and answers
// each connection in turn (Connection: close), with a bounded request size and a deadline
// per connection, so a slow or hostile client delays a scrape by at most that deadline and
// costs no memory. HttpServer takes any handler (tests use it as a webhook receiver);
// StartMetricsServer serves a metrics::Registry: GET or HEAD /metrics, 404 for any other
// path, 405 for any other method.
#ifndef TENDED_COMMON_HTTP_METRICS_SERVER_H_
#define TENDED_COMMON_HTTP_METRICS_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

struct HttpServerOptions {
  // Reading the request and writing the answer, each, must finish within this.
  absl::Duration io_timeout = absl::Seconds(5);
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 64 * 1024;
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
  // Stops accepting, ends the connection in progress and joins the thread. Idempotent.
  void Stop();

 private:
  HttpServer(int listen_fd, int wake_fd, int port, Handler handler, HttpServerOptions options);
  void AcceptLoop();
  void Serve(int fd);

  const int listen_fd_;
  const int wake_fd_;  // An eventfd that ends the loop.
  const int port_;
  Handler handler_;
  const HttpServerOptions options_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  std::thread thread_;
};

// Serves `registry` (which must outlive the server) on `address`.
absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsServer(const std::string& address,
                                                               const metrics::Registry* registry,
                                                               HttpServerOptions options = {});

// The answer StartMetricsServer gives to one request; for tests.
HttpResponse HandleMetricsRequest(const HttpRequest& request, const metrics::Registry& registry);

}  // namespace tended

#endif  // TENDED_COMMON_HTTP_METRICS_SERVER_H_
