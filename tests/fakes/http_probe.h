// Plain-socket HTTP/1.0 requests to a server on 127.0.0.1 and bounded waits for it to come
// up, for tests that start real servers. No TLS, no redirects, no chunked encoding: just
// enough to ask a freshly started server whether it is ready.
#ifndef TENDED_TESTS_FAKES_HTTP_PROBE_H_
#define TENDED_TESTS_FAKES_HTTP_PROBE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/fakes/process_runner.h"

namespace tended::testing {

struct HttpProbeResponse {
  int status = 0;
  std::string body;
};

// One request to http://127.0.0.1:<port><path>, the whole exchange bounded by `timeout`.
absl::StatusOr<HttpProbeResponse> HttpRequestLoopback(int port, absl::string_view method,
                                                      absl::string_view path,
                                                      absl::Duration timeout,
                                                      absl::string_view body = "");

// Calls `done` every `interval` until it returns true or an error other than UNAVAILABLE,
// for at most `timeout` (real time: this waits for other processes). While `process` is
// given and exits, gives up at once with its log tail. UNAVAILABLE from `done` means "not
// yet"; DEADLINE_EXCEEDED names `what` and the last such status.
absl::Status PollUntil(const std::function<absl::StatusOr<bool>()>& done, absl::Duration timeout,
                       absl::string_view what, ChildProcess* process = nullptr,
                       absl::Duration interval = absl::Milliseconds(100));

// Polls GET <path> until it answers 200.
absl::Status WaitForHttpReady(int port, absl::string_view path, absl::Duration timeout,
                              ChildProcess* process = nullptr);

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_HTTP_PROBE_H_
