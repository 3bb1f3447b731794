// A webhook receiver for tests on 127.0.0.1 (port chosen by the kernel): records every
// request and answers `status` ("ok" for 200, "invalid_payload" otherwise), after waiting
// (bounded) until released while held.
#ifndef TENDED_TESTS_FAKES_CAPTURE_HTTP_SERVER_H_
#define TENDED_TESTS_FAKES_CAPTURE_HTTP_SERVER_H_

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http_metrics_server.h"

namespace tended::testing {

class CaptureServer {
 public:
  CaptureServer();
  ~CaptureServer();
  CaptureServer(const CaptureServer&) = delete;
  CaptureServer& operator=(const CaptureServer&) = delete;

  int port() const { return server_->port(); }
  // "http://127.0.0.1:<port>".
  std::string Base() const;
  void Answer(int status);
  void Hold();
  void Release();
  // Waits (at most ten seconds) until at least `count` requests arrived.
  bool WaitForRequests(size_t count);
  std::vector<HttpRequest> requests();

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<HttpRequest> requests_;
  int status_ = 200;
  bool hold_ = false;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_CAPTURE_HTTP_SERVER_H_
