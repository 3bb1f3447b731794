// A fake HttpClient for tests: answers from a script per URL (or a default), records every
// request, and can hold calls until released (bounded). Thread-safe.
#ifndef TENDED_TESTS_FAKES_FAKE_HTTP_CLIENT_H_
#define TENDED_TESTS_FAKES_FAKE_HTTP_CLIENT_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http_client.h"

namespace tended::testing {

class FakeHttpClient final : public HttpClient {
 public:
  // An answer with this status code and body.
  static Response Answer(int status_code, std::string body = "");

  // Requests to exactly `url` (query included) get these answers in turn; once they are
  // used up, the default.
  void Script(const std::string& url, std::deque<absl::StatusOr<Response>> answers);
  // For every request without a scripted answer; 200 with an empty body unless set.
  void SetDefault(absl::StatusOr<Response> answer);
  // While held, Send waits (at most ten seconds) before answering.
  void Hold(bool hold);
  // Waits (at most ten seconds) until at least `count` requests arrived.
  bool WaitForRequests(size_t count);
  std::vector<Request> requests() const;

  // Records the request, then answers. A 2xx body goes to request.on_body when set (in one
  // piece; false from it makes the answer CANCELLED).
  absl::StatusOr<Response> Send(const Request& request) override;

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Request> requests_;
  std::map<std::string, std::deque<absl::StatusOr<Response>>> scripts_;
  absl::StatusOr<Response> default_ = Answer(200);
  bool hold_ = false;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_FAKE_HTTP_CLIENT_H_
