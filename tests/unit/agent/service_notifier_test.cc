#include "agent/service_notifier.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/temp_dir.h"

namespace tended::agent {
namespace {

constexpr const char* kVariables[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};

// Plays the service manager: a datagram socket the notifier sends to. The test's environment
// variables are saved and restored around each test.
class ServiceNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables) {
      const char* value = ::getenv(name);
      if (value != nullptr) saved_.emplace_back(name, value);
      ::unsetenv(name);
    }
  }

  void TearDown() override {
    if (socket_fd_ >= 0) ::close(socket_fd_);
    for (const char* name : kVariables) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }

  void ListenForNotifications() {
    socket_path_ = dir_.Path("notify");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(socket_path_.size(), sizeof(address.sun_path));
    std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    socket_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(socket_fd_, 0);
    ASSERT_EQ(::bind(socket_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    // Bounds a broken notifier; a datagram that was sent is already queued.
    timeval timeout{.tv_sec = 5, .tv_usec = 0};
    ASSERT_EQ(::setsockopt(socket_fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
    ::setenv("NOTIFY_SOCKET", socket_path_.c_str(), 1);
  }

  std::string Receive() {
    char buffer[4096];
    ssize_t n = ::recv(socket_fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return absl::StrCat("<recv failed: ", std::strerror(errno), ">");
    return std::string(buffer, static_cast<size_t>(n));
  }

  testing::TempDir dir_;
  std::string socket_path_;
  int socket_fd_ = -1;
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(ServiceNotifierTest, SendsTheSdNotifyMessages) {
  ListenForNotifications();
  SystemdServiceNotifier notifier;
  ASSERT_TRUE(notifier.Ready().ok());
  EXPECT_EQ(Receive(), "READY=1");
  ASSERT_TRUE(notifier.WatchdogPing().ok());
  EXPECT_EQ(Receive(), "WATCHDOG=1");
  ASSERT_TRUE(notifier.Status("waiting for a reboot lease").ok());
  EXPECT_EQ(Receive(), "STATUS=waiting for a reboot lease");
  ASSERT_TRUE(notifier.Status("two\nlines").ok());
  EXPECT_EQ(Receive(), "STATUS=two lines");
  ASSERT_TRUE(notifier.Stopping().ok());
  EXPECT_EQ(Receive(), "STOPPING=1");
}

TEST_F(ServiceNotifierTest, WatchdogIntervalIsHalfTheTimeout) {
  ::setenv("WATCHDOG_USEC", "60000000", 1);
  ::setenv("WATCHDOG_PID", absl::StrCat(::getpid()).c_str(), 1);
  SystemdServiceNotifier notifier;
  EXPECT_EQ(notifier.WatchdogInterval(), std::optional<absl::Duration>(absl::Seconds(30)));
}

TEST_F(ServiceNotifierTest, NoWatchdogForAnotherProcessOrWithoutSettings) {
  EXPECT_EQ(SystemdServiceNotifier().WatchdogInterval(), std::nullopt);

  ::setenv("WATCHDOG_USEC", "60000000", 1);
  ::setenv("WATCHDOG_PID", absl::StrCat(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(SystemdServiceNotifier().WatchdogInterval(), std::nullopt);
}

TEST_F(ServiceNotifierTest, WithoutNotifySocketEverythingIsANoOp) {
  SystemdServiceNotifier notifier;
  EXPECT_TRUE(notifier.Ready().ok());
  EXPECT_TRUE(notifier.Status("anything").ok());
  EXPECT_TRUE(notifier.WatchdogPing().ok());
  EXPECT_TRUE(notifier.Stopping().ok());
}

TEST_F(ServiceNotifierTest, ReportsAnUnreachableServiceManager) {
  ::setenv("NOTIFY_SOCKET", dir_.Path("nobody-listens").c_str(), 1);
  SystemdServiceNotifier notifier;
  EXPECT_FALSE(notifier.Ready().ok());
}

}  // namespace
}  // namespace tended::agent
