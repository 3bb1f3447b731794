#include "tests/fakes/canned_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tended::testing {

std::string CannedHttpServer::Response(int status, absl::string_view body,
                                       absl::string_view content_type) {
  return absl::StrCat("HTTP/1.1 ", status, " Canned\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

CannedHttpServer::CannedHttpServer(std::string response, bool hang)
    : response_(std::move(response)), hang_(hang) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (listen_fd_ < 0 ||
      ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "cannot listen on 127.0.0.1: " << std::strerror(errno);
    return;
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

CannedHttpServer::~CannedHttpServer() {
  if (thread_.joinable()) {
    char byte = 0;
    ssize_t ignored = ::write(stop_pipe_[1], &byte, 1);
    (void)ignored;
    thread_.join();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

std::string CannedHttpServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::vector<std::string> CannedHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

// Waits for `fd` to become readable; false when asked to stop or after 20 s (a bound so a
// broken test cannot hang forever).
bool CannedHttpServer::WaitReadable(int fd) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
  while (true) {
    int ready = ::poll(fds, 2, 20000);
    if (ready < 0 && errno == EINTR) continue;
    return ready > 0 && (fds[1].revents & POLLIN) == 0 && (fds[0].revents != 0);
  }
}

void CannedHttpServer::Serve() {
  while (WaitReadable(listen_fd_)) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536 &&
           WaitReadable(client)) {
      ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      request.append(buffer, static_cast<size_t>(n));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(request);
    }
    if (hang_) {
      // Say nothing until the client hangs up.
      while (WaitReadable(client) && ::recv(client, buffer, sizeof(buffer), 0) > 0) {
      }
    } else {
      size_t sent = 0;
      while (sent < response_.size()) {
        ssize_t n = ::send(client, response_.data() + sent, response_.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::shutdown(client, SHUT_WR);
    }
    ::close(client);
  }
}

}  // namespace tended::testing
