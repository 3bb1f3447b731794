// An HTTP server on 127.0.0.1 (port chosen by the kernel) that answers every connection
// with the same bytes, exactly as given (so a test can send a malformed or oversized
// answer), or (hang) never answers and holds the connection until the client gives up.
// Records every request as received. Serves until destroyed.
#ifndef TENDED_TESTS_FAKES_CANNED_HTTP_SERVER_H_
#define TENDED_TESTS_FAKES_CANNED_HTTP_SERVER_H_

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"

namespace tended::testing {

class CannedHttpServer {
 public:
  // A whole HTTP/1.1 answer with Content-Length and Connection: close.
  static std::string Response(int status, absl::string_view body,
                              absl::string_view content_type = "application/json");

  explicit CannedHttpServer(std::string response, bool hang = false);
  ~CannedHttpServer();
  CannedHttpServer(const CannedHttpServer&) = delete;
  CannedHttpServer& operator=(const CannedHttpServer&) = delete;

  // "http://127.0.0.1:<port>".
  std::string base_url() const;
  int port() const { return port_; }
  // The head (and whatever arrived with it) of each request.
  std::vector<std::string> requests() const;

 private:
  bool WaitReadable(int fd);
  void Serve();

  const std::string response_;
  const bool hang_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_CANNED_HTTP_SERVER_H_
