#include "tests/fakes/process_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/posix_status.h"

namespace tended::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("ChildProcess::Start: empty argv");
  // Everything the child touches is prepared before fork: only async-signal-safe calls
  // happen between fork and exec.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int exec_error_pipe[2];
  if (::pipe2(exec_error_pipe, O_CLOEXEC) != 0) return PosixErrorToStatus("pipe2", errno);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    ::close(exec_error_pipe[0]);
    ::close(exec_error_pipe[1]);
    return PosixErrorToStatus("fork", error);
  }
  if (pid == 0) {
    ::close(exec_error_pipe[0]);
    int error = 0;
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) error = ECHILD;
    int in = error == 0 ? ::open("/dev/null", O_RDONLY) : -1;
    int out = error == 0 ? ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    if (error == 0 && (in < 0 || out < 0)) error = errno;
    if (error == 0 && (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0)) {
      error = errno;
    }
    if (error == 0) {
      ::execv(args[0], args.data());
      error = errno;
    }
    ssize_t ignored = ::write(exec_error_pipe[1], &error, sizeof(error));
    (void)ignored;
    ::_exit(127);
  }

  ::close(exec_error_pipe[1]);
  int child_error = 0;
  ssize_t got;
  do {
    got = ::read(exec_error_pipe[0], &child_error, sizeof(child_error));
  } while (got < 0 && errno == EINTR);
  ::close(exec_error_pipe[0]);
  auto child = std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
  if (got > 0) {
    child->Stop();
    return PosixErrorToStatus(absl::StrCat("start ", absl::StrJoin(argv, " ")), child_error);
  }
  return child;
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Running() {
  if (wait_status_.has_value()) return false;
  int status = 0;
  pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    wait_status_ = status;
    return false;
  }
  return true;
}

int ChildProcess::Stop(absl::Duration grace) {
  if (!Running()) return *wait_status_;
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (absl::Now() < deadline) {
    if (!Running()) return *wait_status_;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
  return status;
}

std::string ChildProcess::DescribeExit() {
  if (Running()) return "running";
  if (WIFEXITED(*wait_status_)) return absl::StrCat("exited with ", WEXITSTATUS(*wait_status_));
  if (WIFSIGNALED(*wait_status_)) return absl::StrCat("killed by signal ", WTERMSIG(*wait_status_));
  return absl::StrCat("wait status ", *wait_status_);
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
  return text;
}

}  // namespace tended::testing
