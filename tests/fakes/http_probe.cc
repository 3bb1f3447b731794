#include "tests/fakes/http_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/posix_status.h"

namespace tended::testing {
namespace {

constexpr size_t kMaxResponseBytes = 64 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or `deadline` passes.
absl::Status WaitFd(int fd, short events, absl::Time deadline, absl::string_view what) {
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    pollfd entry{fd, events, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(left_ms));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return PosixErrorToStatus(what, errno);
  }
}

}  // namespace

absl::StatusOr<HttpProbeResponse> HttpRequestLoopback(int port, absl::string_view method,
                                                      absl::string_view path,
                                                      absl::Duration timeout,
                                                      absl::string_view body) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string target = absl::StrCat(method, " http://127.0.0.1:", port, path);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return PosixErrorToStatus("socket", errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(PosixErrorToStatus(target, errno).message());
    }
    if (absl::Status ready = WaitFd(fd.get(), POLLOUT, deadline, target); !ready.ok()) {
      return ready;
    }
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) return absl::UnavailableError(PosixErrorToStatus(target, error).message());
  }

  const std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port,
                   "\r\nConnection: close\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (absl::Status ready = WaitFd(fd.get(), POLLOUT, deadline, target); !ready.ok()) {
        return ready;
      }
    } else {
      return absl::UnavailableError(PosixErrorToStatus(target, errno).message());
    }
  }

  std::string raw;
  char buffer[16384];
  while (true) {
    ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      raw.append(buffer, static_cast<size_t>(n));
      if (raw.size() > kMaxResponseBytes) {
        return absl::ResourceExhaustedError(absl::StrCat(target, ": answer too large"));
      }
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (absl::Status ready = WaitFd(fd.get(), POLLIN, deadline, target); !ready.ok()) {
        return ready;
      }
    } else {
      return absl::UnavailableError(PosixErrorToStatus(target, errno).message());
    }
  }

  const size_t header_end = raw.find("\r\n\r\n");
  int status = 0;
  if (header_end == std::string::npos || !absl::StartsWith(raw, "HTTP/1.") || raw.size() < 12 ||
      !absl::SimpleAtoi(absl::string_view(raw).substr(9, 3), &status)) {
    return absl::UnavailableError(absl::StrCat(target, ": not an HTTP answer"));
  }
  return HttpProbeResponse{status, raw.substr(header_end + 4)};
}

absl::Status PollUntil(const std::function<absl::StatusOr<bool>()>& done, absl::Duration timeout,
                       absl::string_view what, ChildProcess* process, absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::UnavailableError("not checked yet");
  while (true) {
    if (process != nullptr && !process->Running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("while waiting for ", what, ": pid ", process->pid(), " ",
                       process->DescribeExit(), "; log tail:\n", process->LogTail()));
    }
    absl::StatusOr<bool> result = done();
    if (result.ok() && *result) return absl::OkStatus();
    if (!result.ok() && !absl::IsUnavailable(result.status())) return result.status();
    last = result.ok() ? absl::UnavailableError("condition not met") : result.status();
    if (absl::Now() + interval > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("gave up waiting for ", what, " after ",
                                                      absl::FormatDuration(timeout),
                                                      "; last: ", last.ToString()));
    }
    absl::SleepFor(interval);
  }
}

absl::Status WaitForHttpReady(int port, absl::string_view path, absl::Duration timeout,
                              ChildProcess* process) {
  return PollUntil(
      [&]() -> absl::StatusOr<bool> {
        absl::StatusOr<HttpProbeResponse> response =
            HttpRequestLoopback(port, "GET", path, absl::Seconds(2));
        if (!response.ok()) return absl::UnavailableError(response.status().ToString());
        if (response->status != 200) {
          return absl::UnavailableError(absl::StrCat("HTTP ", response->status));
        }
        return true;
      },
      timeout, absl::StrCat("GET http://127.0.0.1:", port, path, " to answer 200"), process);
}

}  // namespace tended::testing
