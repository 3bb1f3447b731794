#include "common/http_metrics_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#include "common/file_util.h"
#include "common/grpc_tls.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

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

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    absl::StrAppend(&out, out.empty() ? "" : "; ", text);
  }
  return out.empty() ? "no details" : out;
}

// A connection being served: reads and writes bounded by one deadline, cut short by the
// server's wake descriptor; over TLS when given an SSL object (which it then owns).
class Connection {
 public:
  Connection(int fd, int wake_fd, SteadyClock::time_point deadline, SSL* ssl = nullptr)
      : fd_(fd), wake_fd_(wake_fd), deadline_(deadline), ssl_(ssl) {}
  ~Connection() {
    if (ssl_ == nullptr) return;
    // One try at close_notify; the socket is closed right after either way.
    if (!broken_) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_);
    }
    SSL_free(ssl_);
    ERR_clear_error();
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // TLS: completes the server side of the handshake; empty on success, else why not.
  std::string Handshake() {
    while (true) {
      ERR_clear_error();
      int result = SSL_accept(ssl_);
      if (result == 1) return "";
      int error = SSL_get_error(ssl_, result);
      if (!WaitForTls(error)) {
        broken_ = true;
        return error == SSL_ERROR_SSL ? OpenSslErrors() : "closed, timed out or stopped";
      }
    }
  }

  // Appends what arrives to *buffer; false on timeout, stop, error or end of stream.
  bool ReadMore(std::string* buffer, size_t max_chunk) {
    char chunk[4096];
    const size_t want = std::min(sizeof(chunk), max_chunk);
    if (ssl_ != nullptr) {
      while (true) {
        ERR_clear_error();
        int n = SSL_read(ssl_, chunk, static_cast<int>(want));
        if (n > 0) {
          buffer->append(chunk, static_cast<size_t>(n));
          return true;
        }
        int error = SSL_get_error(ssl_, n);
        if (error == SSL_ERROR_ZERO_RETURN) {
          peer_closed_ = true;
          return false;
        }
        if (!WaitForTls(error)) {
          if (error == SSL_ERROR_SSL || error == SSL_ERROR_SYSCALL) peer_closed_ = broken_ = true;
          return false;
        }
      }
    }
    if (!WaitFor(POLLIN)) return false;
    ssize_t n = ::recv(fd_, chunk, want, 0);
    if (n == 0) peer_closed_ = true;
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  }

  void set_deadline(SteadyClock::time_point deadline) { deadline_ = deadline; }

  // The peer ended its side: nobody to answer.
  bool peer_closed() const { return peer_closed_; }

  bool WriteAll(absl::string_view data) {
    if (ssl_ != nullptr) {
      while (!data.empty() && !broken_) {
        ERR_clear_error();
        int n =
            SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        if (n > 0) {
          data.remove_prefix(static_cast<size_t>(n));
          continue;
        }
        if (!WaitForTls(SSL_get_error(ssl_, n))) broken_ = true;
      }
      return data.empty();
    }
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
  // After an SSL call asked for more: waits for what it needs. False when it failed for good
  // or the wait did.
  bool WaitForTls(int error) {
    if (error == SSL_ERROR_WANT_READ) return WaitFor(POLLIN);
    if (error == SSL_ERROR_WANT_WRITE) return WaitFor(POLLOUT);
    return false;
  }

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
  SSL* const ssl_;
  bool peer_closed_ = false;
  // A fatal TLS error: no more I/O on ssl_, not even close_notify.
  bool broken_ = false;
};

struct SslCtxDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

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

// The SSL_CTX of the files as last loaded, loaded again when they change.
class HttpServer::TlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(const HttpTlsFiles& files) {
    std::unique_ptr<TlsContext> tls(new TlsContext(files));
    tls->stamps_ = tls->Stamps();
    ASSIGN_OR_RETURN(tls->context_, tls->Load());
    return tls;
  }

  // The context for a new connection: the files' current one when they changed and load.
  SSL_CTX* Current() {
    std::vector<FileStamp> now = Stamps();
    if (now != stamps_) {
      stamps_ = now;
      absl::StatusOr<SslCtxPtr> loaded = Load();
      if (loaded.ok()) {
        context_ = *std::move(loaded);
        Logger("http")->info("TLS: loaded {} and {} again (they changed)", files_.cert_file,
                             files_.key_file);
      } else {
        Logger("http")->error("TLS: the changed files do not load, keeping the previous ones: {}",
                              loaded.status().message());
      }
    }
    return context_.get();
  }

 private:
  explicit TlsContext(HttpTlsFiles files) : files_(std::move(files)) {}

  std::vector<FileStamp> Stamps() const {
    std::vector<FileStamp> stamps;
    for (const std::string* path : {&files_.cert_file, &files_.key_file, &files_.client_ca_file}) {
      // A missing file (no client CA) or one that cannot be read stamps as empty.
      stamps.push_back(path->empty() ? FileStamp{} : StampFile(*path).value_or(FileStamp{}));
    }
    return stamps;
  }

  absl::StatusOr<SslCtxPtr> Load() const {
    for (const auto& [what, path] :
         {std::pair<const char*, const std::string*>{"cert_file", &files_.cert_file},
          {"key_file", &files_.key_file}}) {
      if (path->empty())
        return absl::InvalidArgumentError(absl::StrCat("TLS: no ", what, " given"));
    }
    RETURN_IF_ERROR(CheckKeyFilePermissions(files_.key_file));
    ERR_clear_error();
    SslCtxPtr context(SSL_CTX_new(TLS_server_method()));
    if (context == nullptr) {
      return absl::InternalError(absl::StrCat("TLS: SSL_CTX_new: ", OpenSslErrors()));
    }
    SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(context.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // The key first: a certificate that does not match it then leaves the context without
    // a key, which the check below names.
    if (SSL_CTX_use_PrivateKey_file(context.get(), files_.key_file.c_str(), SSL_FILETYPE_PEM) !=
        1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: cannot use the key file ", files_.key_file, ": ", OpenSslErrors()));
    }
    if (SSL_CTX_use_certificate_chain_file(context.get(), files_.cert_file.c_str()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("TLS: cannot use the certificate file ",
                                                     files_.cert_file, ": ", OpenSslErrors()));
    }
    if (SSL_CTX_check_private_key(context.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("TLS: the key in ", files_.key_file,
                                                     " does not match the certificate in ",
                                                     files_.cert_file));
    }
    if (!files_.client_ca_file.empty()) {
      const char* ca = files_.client_ca_file.c_str();
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca);
      if (names == nullptr || SSL_CTX_load_verify_locations(context.get(), ca, nullptr) != 1) {
        if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
        return absl::InvalidArgumentError(absl::StrCat(
            "TLS: cannot use the client CA file ", files_.client_ca_file, ": ", OpenSslErrors()));
      }
      SSL_CTX_set_client_CA_list(context.get(), names);
      SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return context;
  }

  const HttpTlsFiles files_;
  std::vector<FileStamp> stamps_;
  SslCtxPtr context_;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handler handler,
                                                              HttpServerOptions options) {
  std::string host, port;
  if (absl::Status split = SplitAddress(address, &host, &port); !split.ok()) return split;
  std::unique_ptr<TlsContext> tls;
  if (options.tls.has_value()) {
    ASSIGN_OR_RETURN(tls, TlsContext::Create(*options.tls));
  }
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
      new HttpServer(listen_fd, wake_fd, bound_port, std::move(handler), options, std::move(tls)));
  server->thread_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  return server;
}

HttpServer::HttpServer(int listen_fd, int wake_fd, int port, Handler handler,
                       HttpServerOptions options, std::unique_ptr<TlsContext> tls)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      handler_(std::move(handler)),
      options_(std::move(options)),
      tls_(std::move(tls)) {}

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
  // A peer gone mid-answer must not kill the process: OpenSSL writes without MSG_NOSIGNAL.
  // Blocked here, a SIGPIPE of this thread's writes stays pending and write fails EPIPE.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
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
  SSL* ssl = nullptr;
  if (tls_ != nullptr) {
    ERR_clear_error();
    ssl = SSL_new(tls_->Current());
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      Logger("http")->error("TLS: cannot set up a connection: {}", OpenSslErrors());
      if (ssl != nullptr) SSL_free(ssl);
      return;
    }
  }
  Connection connection(fd, wake_fd_, SteadyClock::now() + io_timeout, ssl);
  if (ssl != nullptr) {
    if (std::string problem = connection.Handshake(); !problem.empty()) {
      Logger("http")->debug("TLS handshake failed: {}", problem);
      return;
    }
  }
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

std::string MetricsTransport(const std::optional<HttpTlsFiles>& tls) {
  if (!tls.has_value()) return "plain HTTP";
  if (tls->client_ca_file.empty()) return absl::StrCat("HTTPS (certificate ", tls->cert_file, ")");
  return absl::StrCat("HTTPS (certificate ", tls->cert_file, ", client certificates from ",
                      tls->client_ca_file, ")");
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
