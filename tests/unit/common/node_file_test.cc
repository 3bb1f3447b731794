// Node files read under a root: never outside it, never blocking, never more than the cap.
// Every case runs twice: with openat2 (when the kernel has it) and with the walk that
// stands in for it on older kernels.
#include "common/node_file.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <string>

#include "common/file_util.h"
#include "tests/fakes/temp_dir.h"

namespace tended {
namespace {

using ::testing::HasSubstr;

constexpr size_t k64KiB = 64 * 1024;

class NodeFileTest : public ::testing::TestWithParam<NodeFileResolution> {
 protected:
  void SetUp() override {
    SetNodeFileResolutionForTest(GetParam());
    ASSERT_TRUE(MakeDirectories(root_.Resolve("/var/run")).ok());
    ASSERT_TRUE(MakeDirectories(root_.Resolve("/etc")).ok());
  }
  void TearDown() override { SetNodeFileResolutionForTest(NodeFileResolution::kAuto); }

  void Write(const std::string& path, const std::string& contents) {
    ASSERT_TRUE(MakeDirectories(Dirname(root_.Resolve(path))).ok());
    ASSERT_TRUE(WriteFileAtomically(root_.Resolve(path), contents).ok());
  }
  void Link(const std::string& target, const std::string& path) {
    ::unlink(root_.Resolve(path).c_str());
    ASSERT_EQ(::symlink(target.c_str(), root_.Resolve(path).c_str()), 0) << std::strerror(errno);
  }
  absl::StatusOr<std::string> Read(const std::string& path, size_t cap = k64KiB) {
    return ReadNodeFile(root_, path, cap);
  }
  // The contents, or the error as text.
  std::string Text(const std::string& path) {
    absl::StatusOr<std::string> read = Read(path);
    return read.ok() ? *read : read.status().ToString();
  }

  tended::testing::TempDir dir_;
  RootPath root_{dir_.Path("root")};
};

TEST_P(NodeFileTest, ReadsARegularFile) {
  Write("/var/run/reboot-required.pkgs", "libc6\nlinux-image-6.1.0-28-amd64\n");
  EXPECT_EQ(Text("/var/run/reboot-required.pkgs"), "libc6\nlinux-image-6.1.0-28-amd64\n");
  EXPECT_EQ(Text("var/run/reboot-required.pkgs"), "libc6\nlinux-image-6.1.0-28-amd64\n");
  EXPECT_EQ(Read("/var/run/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(NodeFileExists(root_, "/var/run/reboot-required.pkgs"));
  EXPECT_FALSE(NodeFileExists(root_, "/var/run/missing"));
}

TEST_P(NodeFileTest, AtMostTheCapIsRead) {
  Write("/boot_id", std::string(4096, 'a'));
  EXPECT_EQ(Read("/boot_id", 4096)->size(), 4096u);  // Exactly the cap is whole.
  absl::StatusOr<std::string> over = Read("/boot_id", 4095);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(over.status().message(), HasSubstr("larger than 4095 bytes"));

  std::string big;
  while (big.size() < 10 * 1024 * 1024) big += "some-package-name\n";
  Write("/var/run/reboot-required.pkgs", big);
  absl::StatusOr<NodeFilePrefix> prefix =
      ReadNodeFilePrefix(root_, "/var/run/reboot-required.pkgs", k64KiB);
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_TRUE(prefix->truncated);
  EXPECT_EQ(prefix->contents, big.substr(0, k64KiB));
  prefix = ReadNodeFilePrefix(root_, "/var/run/reboot-required.pkgs", big.size());
  ASSERT_TRUE(prefix.ok());
  EXPECT_FALSE(prefix->truncated);
}

TEST_P(NodeFileTest, AFifoIsAnErrorAtOnce) {
  const std::string fifo = root_.Resolve("/var/run/reboot-required.pkgs");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  std::future<absl::StatusOr<std::string>> reading =
      std::async(std::launch::async, [&] { return Read("/var/run/reboot-required.pkgs"); });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // Lets it end.
    if (fd >= 0) ::close(fd);
    FAIL() << "reading a FIFO blocked";
  }
  absl::StatusOr<std::string> read = reading.get();
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(), HasSubstr("is a FIFO, not a regular file"));
  EXPECT_THAT(read.status().message(), HasSubstr(fifo));
}

TEST_P(NodeFileTest, DirectoriesSocketsAndDevicesAreErrors) {
  ASSERT_TRUE(MakeDirectories(root_.Resolve("/proc/sys/kernel/random/boot_id")).ok());
  EXPECT_THAT(Read("/proc/sys/kernel/random/boot_id").status().message(),
              HasSubstr("is a directory, not a regular file"));

  const std::string socket_path = root_.Resolve("/var/run/reboot-required.pkgs");
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(socket_path.size(), sizeof(addr.sun_path));
  std::strcpy(addr.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  absl::StatusOr<std::string> read = Read("/var/run/reboot-required.pkgs");
  ::close(sock);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(), HasSubstr("is a socket, not a regular file"));

  // A character device (like /dev/zero: a read would never end): needs CAP_MKNOD.
  if (::mknod(root_.Resolve("/etc/os-release").c_str(), S_IFCHR | 0644, makedev(1, 5)) == 0) {
    EXPECT_THAT(Read("/etc/os-release").status().message(),
                HasSubstr("is a character device, not a regular file"));
  }
}

TEST_P(NodeFileTest, SymlinksResolveInsideTheRoot) {
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("outside"), "outside-secret\n").ok());
  ASSERT_TRUE(MakeDirectories(dir_.Path("outside-dir")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("outside-dir/reboot-required.pkgs"), "secret").ok());
  const std::string pkgs = "/var/run/reboot-required.pkgs";

  // Out of the root by an absolute link, a relative one and the path itself: each lands
  // inside the root, where there is nothing.
  for (const std::string& target :
       {std::string("/etc/passwd"), std::string("../../../outside"), dir_.Path("outside")}) {
    SCOPED_TRACE(target);
    Link(target, pkgs);
    EXPECT_EQ(Read(pkgs).status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(Read("/../outside").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("/var/../../../outside").status().code(), absl::StatusCode::kNotFound);
  // A folder on the way linked out of the root.
  ASSERT_EQ(::rename(root_.Resolve("/var/run").c_str(), root_.Resolve("/var/run.old").c_str()), 0);
  Link(dir_.Path("outside-dir"), "/var/run");
  EXPECT_EQ(Read(pkgs).status().code(), absl::StatusCode::kNotFound);
  Link("../../../outside-dir", "/var/run");
  EXPECT_EQ(Read(pkgs).status().code(), absl::StatusCode::kNotFound);

  // The same links mean the root's own files, as for a process chrooted there: a host
  // mounted at /host has var/run -> /run, which must be /host/run.
  Write("/etc/passwd", "inside-pkg\n");
  Write("/outside", "inside-too\n");
  Write("/run/reboot-required.pkgs", "from-run\n");
  Link("/run", "/var/run");
  EXPECT_EQ(Text(pkgs), "from-run\n");
  Link("/etc/passwd", "/run/reboot-required.pkgs");
  EXPECT_EQ(Text(pkgs), "inside-pkg\n");
  Link("../../../../outside", "/run/reboot-required.pkgs");
  EXPECT_EQ(Text(pkgs), "inside-too\n");
  EXPECT_EQ(Text("/var/../../../outside"), "inside-too\n");
}

TEST_P(NodeFileTest, ExistsIsLstatInsideTheRoot) {
  Link("/nowhere", "/var/run/reboot-required");
  EXPECT_TRUE(NodeFileExists(root_, "/var/run/reboot-required"));  // Dangling, like lstat.
  ASSERT_TRUE(MakeDirectories(dir_.Path("outside-dir")).ok());
  ASSERT_TRUE(WriteFileAtomically(dir_.Path("outside-dir/flag"), "").ok());
  Link(dir_.Path("outside-dir"), "/var/run/dir");
  EXPECT_FALSE(NodeFileExists(root_, "/var/run/dir/flag"));
  Write(dir_.Path("outside-dir/flag").substr(1), "");  // The same path inside the root.
  EXPECT_TRUE(NodeFileExists(root_, "/var/run/dir/flag"));
}

TEST_P(NodeFileTest, SymlinkLoopsEnd) {
  Link("/var/run/b", "/var/run/a");
  Link("/var/run/a", "/var/run/b");
  absl::StatusOr<std::string> read = Read("/var/run/a");
  EXPECT_FALSE(read.ok());
  EXPECT_THAT(read.status().message(), HasSubstr("Too many levels of symbolic links"));
}

TEST_P(NodeFileTest, TheHostRootReadsProcFiles) {
  absl::StatusOr<std::string> release =
      ReadNodeFile(RootPath("/"), "/proc/sys/kernel/osrelease", 4096);
  ASSERT_TRUE(release.ok()) << release.status();
  struct utsname uts;
  ASSERT_EQ(::uname(&uts), 0);
  EXPECT_EQ(*release, std::string(uts.release) + "\n");
}

INSTANTIATE_TEST_SUITE_P(Resolution, NodeFileTest,
                         ::testing::Values(NodeFileResolution::kAuto, NodeFileResolution::kWalk),
                         [](const auto& info) {
                           return info.param == NodeFileResolution::kAuto ? "Openat2" : "Walk";
                         });

}  // namespace
}  // namespace tended
