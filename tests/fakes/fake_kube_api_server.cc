// The fake Kubernetes API server's plumbing (fake_kube_api_server.h): the listening socket
// and its threads, reading HTTP/1.1 requests, the bearer-token check, answers, and node
// watches streamed as chunked JSON lines. What a request does is fake_kube_api_resources.cc.
#include "tests/fakes/fake_kube_api_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/fakes/fake_kube_api_json.h"

namespace tended::testing {
namespace {

using kube_json::MatchesLabelSelector;
using kube_json::StatusJson;
using nlohmann::json;

constexpr size_t kMaxRequestBytes = 4 << 20;
constexpr int kIoTimeoutMs = 5000;

std::string ReasonPhrase(int code) {
  switch (code) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

bool SendAll(int fd, absl::string_view data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string PercentDecode(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int value = 0;
      if (absl::SimpleHexAtoi(text.substr(i + 1, 2), &value)) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i] == '+' ? ' ' : text[i]);
  }
  return out;
}

}  // namespace

FakeKubeApiServer::FakeKubeApiServer(const Clock& clock) : clock_(&clock) {}

FakeKubeApiServer::~FakeKubeApiServer() { Stop(); }

absl::Status FakeKubeApiServer::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError("socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    return absl::InternalError(absl::StrCat("bind/listen failed: errno ", errno));
  }
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void FakeKubeApiServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  changed_.notify_all();
  if (wake_pipe_[1] >= 0) {
    char byte = 'x';
    (void)!::write(wake_pipe_[1], &byte, 1);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  for (std::thread& thread : connection_threads_) thread.join();
  connection_threads_.clear();
  for (int* fd : {&listen_fd_, &wake_pipe_[0], &wake_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

std::string FakeKubeApiServer::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeKubeApiServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || (fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ServeConnection(fd);
  }
}

void FakeKubeApiServer::ServeConnection(int fd) {
  std::string data;
  size_t header_end = std::string::npos;
  char buffer[16384];
  bool sent_continue = false;
  HttpRequest request;
  size_t content_length = 0;
  // Bounded by kMaxRequestBytes and the per-read timeout.
  while (data.size() < kMaxRequestBytes) {
    if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) break;
    pollfd pfd = {fd, POLLIN, 0};
    if (::poll(&pfd, 1, kIoTimeoutMs) <= 0) break;
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      std::vector<std::string> lines =
          absl::StrSplit(absl::string_view(data).substr(0, header_end), "\r\n");
      std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
      if (first.size() < 2) break;
      request.method = first[0];
      std::string target = first[1];
      size_t question = target.find('?');
      request.path = PercentDecode(target.substr(0, question));
      if (question != std::string::npos) {
        for (absl::string_view pair :
             absl::StrSplit(target.substr(question + 1), '&', absl::SkipEmpty())) {
          std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
          request.query[PercentDecode(kv.first)] = PercentDecode(kv.second);
        }
      }
      for (size_t i = 1; i < lines.size(); ++i) {
        size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        request.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
            std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      }
      if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
        if (!absl::SimpleAtoi(it->second, &content_length)) content_length = 0;
      }
      if (!sent_continue && content_length > 0 &&
          absl::EqualsIgnoreCase(request.headers["expect"], "100-continue")) {
        sent_continue = true;
        SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
  }
  if (header_end == std::string::npos || data.size() < header_end + 4 + content_length) {
    ::close(fd);
    return;
  }
  request.body = data.substr(header_end + 4, content_length);
  if (request.method == "GET" && request.path == "/api/v1/nodes" &&
      request.query["watch"] == "true") {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      connection_threads_.emplace_back([this, fd, request] {
        ServeWatch(fd, request);
        ::close(fd);
      });
      return;
    }
  }
  HttpResponse response = Handle(request);
  std::string head = absl::StrFormat(
      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
      "Connection: close\r\n\r\n",
      response.code, ReasonPhrase(response.code), response.body.size());
  SendAll(fd, head + response.body);
  ::close(fd);
}

FakeKubeApiServer::HttpResponse FakeKubeApiServer::Handle(const HttpRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  request_log_.push_back(absl::StrCat(request.method, " ", request.path));
  std::string auth;
  if (auto it = request.headers.find("authorization"); it != request.headers.end()) {
    auth = it->second;
  }
  std::string token = absl::StartsWith(auth, "Bearer ") ? auth.substr(7) : "";
  last_token_ = token;
  if (!expected_token_.empty() && token != expected_token_) {
    ++unauthorized_count_;
    return {401, StatusJson(401, "Unauthorized", "Unauthorized").dump()};
  }
  CollectDeletedPodsLocked();
  HttpResponse response = HandleLocked(request);
  if (garbage_) response = {200, "<html><body>502 Bad Gateway</body></html>"};
  return response;
}
void FakeKubeApiServer::ServeWatch(int fd, const HttpRequest& request) {
  std::unique_lock<std::mutex> lock(mutex_);
  request_log_.push_back(absl::StrCat(request.method, " ", request.path, " (watch)"));
  std::string auth;
  if (auto it = request.headers.find("authorization"); it != request.headers.end()) {
    auth = it->second;
  }
  std::string token = absl::StartsWith(auth, "Bearer ") ? auth.substr(7) : "";
  last_token_ = token;
  if (!expected_token_.empty() && token != expected_token_) {
    ++unauthorized_count_;
    std::string body = StatusJson(401, "Unauthorized", "Unauthorized").dump();
    lock.unlock();
    SendAll(fd, absl::StrFormat("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                                "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                                body.size(), body));
    return;
  }
  std::string selector;
  if (auto it = request.query.find("labelSelector"); it != request.query.end()) {
    selector = it->second;
  }
  int64_t timeout_seconds = 1800;
  if (auto it = request.query.find("timeoutSeconds"); it != request.query.end()) {
    if (!absl::SimpleAtoi(it->second, &timeout_seconds)) timeout_seconds = 1800;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int64_t generation = watch_generation_;

  std::vector<std::string> pending;  // Lines to send.
  auto line = [](const std::string& type, const json& object) {
    return json({{"type", type}, {"object", object}}).dump() + "\n";
  };
  int64_t cursor = 0;
  std::string rv_text;
  if (auto it = request.query.find("resourceVersion"); it != request.query.end()) {
    rv_text = it->second;
  }
  if (rv_text.empty() || rv_text == "0") {
    for (const auto& [name, node] : nodes_) {
      if (MatchesLabelSelector(node, selector)) pending.push_back(line("ADDED", node));
    }
    cursor = resource_version_;
  } else if (!absl::SimpleAtoi(rv_text, &cursor)) {
    cursor = 0;
  } else if (cursor < compacted_before_) {
    pending.push_back(line("ERROR", StatusJson(410, "Expired",
                                               absl::StrCat("too old resource version: ", cursor,
                                                            " (", compacted_before_, ")"))));
    deadline = std::chrono::steady_clock::now();
  }
  lock.unlock();
  if (!SendAll(fd,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")) {
    return;
  }
  auto send_chunk = [fd](const std::string& data) {
    return SendAll(fd, absl::StrFormat("%x\r\n%s\r\n", data.size(), data));
  };
  // Bounded by the watch's timeoutSeconds, Stop() and CloseWatches().
  while (true) {
    for (const std::string& l : pending) {
      if (!send_chunk(l)) return;
    }
    pending.clear();
    lock.lock();
    changed_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                     std::chrono::milliseconds(100)));
    bool done = stopping_ || generation != watch_generation_ ||
                std::chrono::steady_clock::now() >= deadline;
    for (const WatchEvent& event : history_) {
      if (event.resource_version > cursor && MatchesLabelSelector(event.object, selector)) {
        pending.push_back(line(event.type, event.object));
      }
    }
    if (!history_.empty()) cursor = std::max(cursor, history_.back().resource_version);
    lock.unlock();
    if (done) break;
    // A client that went away: recv returns 0.
    char probe;
    if (::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return;
  }
  for (const std::string& l : pending) {
    if (!send_chunk(l)) return;
  }
  SendAll(fd, "0\r\n\r\n");
}
}  // namespace tended::testing
