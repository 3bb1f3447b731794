#include "common/http_metrics_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "common/posix_status.h"

namespace tended {
namespace {

using SteadyClock = std::chrono::steady_clock;

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

int RemainingMillis(SteadyClock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 60'000));
}

// A connection being served: reads and writes bounded by one deadline, cut short by the
// server's wake descriptor.
class Connection {
 public:
  Connection(int fd, int wake_fd, SteadyClock::time_point deadline)
      : fd_(fd), wake_fd_(wake_fd), deadline_(deadline) {}

  // Appends what arrives to *buffer; false on timeout, stop, error or end of stream.
  bool ReadMore(std::string* buffer, size_t max_chunk) {
    if (!WaitFor(POLLIN)) return false;
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, std::min(sizeof(chunk), max_chunk), 0);
    if (n == 0) peer_closed_ = true;
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  }

  void set_deadline(SteadyClock::time_point deadline) { deadline_ = deadline; }

  // The peer ended its side: nobody to answer.
  bool peer_closed() const { return peer_closed_; }

  bool WriteAll(absl::string_view data) {
    while (!data.empty()) {
      if (!WaitFor(POLLOUT)) return false;
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

 private:
  bool WaitFor(short events) {
    while (true) {
      int timeout = RemainingMillis(deadline_);
      if (timeout == 0) return false;
      pollfd fds[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
      int ready = ::poll(fds, 2, timeout);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0 || (fds[1].revents & POLLIN) != 0) return false;
      return (fds[0].revents & (events | POLLHUP | POLLERR)) != 0;
    }
  }

  const int fd_;
  const int wake_fd_;
  SteadyClock::time_point deadline_;
  bool peer_closed_ = false;
};

std::string SerializeResponse(const HttpResponse& response) {
  std::string out =
      absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status),
                   "\r\nContent-Type: ", response.content_type,
                   "\r\nContent-Length: ", response.body.size(), "\r\nConnection: close\r\n");
  for (const auto& [name, value] : response.extra_headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  out += "\r\n";
  if (!response.omit_body) out += response.body;
  return out;
}

HttpResponse Plain(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// Parses the request line and headers (without the blank line). Empty on success, else a
// reason for a 400.
std::string ParseHead(absl::string_view head, HttpRequest* request) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return "malformed request line";
  }
  request->method = std::string(parts[0]);
  request->target = std::string(parts[1]);
  request->path = request->target.substr(0, request->target.find('?'));
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos || colon == 0) return "malformed header";
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    request->headers[name] = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  return "";
}

absl::Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  if (std::string problem =
          HostPortProblem(address, "127.0.0.1:9100 or [::1]:9100", PortZero::kAllow);
      !problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address \"", address, "\": ", problem));
  }
  size_t colon = address.rfind(':');
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->front() == '[') *host = host->substr(1, host->size() - 2);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handler handler,
                                                              HttpServerOptions options) {
  std::string host, port;
  if (absl::Status split = SplitAddress(address, &host, &port); !split.ok()) return split;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int error = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", address, ": ", ::gai_strerror(error)));
  }
  absl::Status last = absl::UnavailableError(absl::StrCat("no address to listen on for ", address));
  int listen_fd = -1;
  for (addrinfo* info = found; info != nullptr && listen_fd < 0; info = info->ai_next) {
    int fd = ::socket(info->ai_family, info->ai_socktype | SOCK_CLOEXEC, info->ai_protocol);
    if (fd < 0) {
      last = PosixErrorToStatus("socket", errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, info->ai_addr, info->ai_addrlen) != 0) {
      last = PosixErrorToStatus(absl::StrCat("bind ", address), errno);
      ::close(fd);
      continue;
    }
    if (::listen(fd, 16) != 0) {
      last = PosixErrorToStatus(absl::StrCat("listen ", address), errno);
      ::close(fd);
      continue;
    }
    listen_fd = fd;
  }
  ::freeaddrinfo(found);
  if (listen_fd < 0) return last;

  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    absl::Status status = PosixErrorToStatus("getsockname", errno);
    ::close(listen_fd);
    return status;
  }
  int bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    absl::Status status = PosixErrorToStatus("eventfd", errno);
    ::close(listen_fd);
    return status;
  }
  std::unique_ptr<HttpServer> server(
      new HttpServer(listen_fd, wake_fd, bound_port, std::move(handler), options));
  server->thread_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  return server;
}

HttpServer::HttpServer(int listen_fd, int wake_fd, int port, Handler handler,
                       HttpServerOptions options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      handler_(std::move(handler)),
      options_(options) {}

HttpServer::~HttpServer() {
  Stop();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> lock(stop_mutex_);
  if (!stopping_.exchange(true)) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      Logger("http")->error("poll on the listening socket failed: {}", std::strerror(errno));
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // The peer went away, or descriptors ran out: try the next one.
    Serve(fd);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
}

void HttpServer::Serve(int fd) {
  const auto io_timeout = absl::ToChronoMilliseconds(options_.io_timeout);
  Connection connection(fd, wake_fd_, SteadyClock::now() + io_timeout);
  auto answer = [&](const HttpResponse& response) {
    connection.set_deadline(SteadyClock::now() + io_timeout);
    (void)connection.WriteAll(SerializeResponse(response));
  };
  std::string buffer;
  size_t head_end = std::string::npos;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > options_.max_header_bytes) {
      return answer(Plain(431, "request header too large\n"));
    }
    if (!connection.ReadMore(&buffer, options_.max_header_bytes + 4 - buffer.size() + 1)) {
      if (!buffer.empty() && !connection.peer_closed() && !stopping_.load()) {
        answer(Plain(408, "request timed out\n"));
      }
      return;
    }
  }
  if (head_end > options_.max_header_bytes) return answer(Plain(431, "request header too large\n"));
  HttpRequest request;
  if (std::string problem = ParseHead(absl::string_view(buffer).substr(0, head_end), &request);
      !problem.empty()) {
    return answer(Plain(400, absl::StrCat(problem, "\n")));
  }
  if (request.headers.count("transfer-encoding") > 0) {
    return answer(Plain(411, "send a Content-Length, not a chunked body\n"));
  }
  size_t content_length = 0;
  if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
    if (!absl::SimpleAtoi(it->second, &content_length)) {
      return answer(Plain(400, "bad Content-Length\n"));
    }
  }
  if (content_length > options_.max_body_bytes) {
    return answer(Plain(413, "request body too large\n"));
  }
  request.body = buffer.substr(head_end + 4);
  if (request.body.size() < content_length) {
    if (auto it = request.headers.find("expect");
        it != request.headers.end() && absl::EqualsIgnoreCase(it->second, "100-continue")) {
      if (!connection.WriteAll("HTTP/1.1 100 Continue\r\n\r\n")) return;
    }
  }
  while (request.body.size() < content_length) {
    if (!connection.ReadMore(&request.body, content_length - request.body.size())) {
      if (!connection.peer_closed() && !stopping_.load()) answer(Plain(408, "request timed out\n"));
      return;
    }
  }
  request.body.resize(content_length);
  answer(handler_(request));
}

HttpResponse HandleMetricsRequest(const HttpRequest& request, const metrics::Registry& registry) {
  if (request.path != "/metrics") return Plain(404, "not found: metrics are at /metrics\n");
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = Plain(405, "only GET and HEAD\n");
    response.extra_headers["Allow"] = "GET, HEAD";
    return response;
  }
  HttpResponse response;
  response.content_type = metrics::kTextFormatContentType;
  response.body = registry.Render();
  response.omit_body = request.method == "HEAD";
  return response;
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsServer(const std::string& address,
                                                               const metrics::Registry* registry,
                                                               HttpServerOptions options) {
  return HttpServer::Start(
      address,
      [registry](const HttpRequest& request) { return HandleMetricsRequest(request, *registry); },
      options);
}

}  // namespace tended
