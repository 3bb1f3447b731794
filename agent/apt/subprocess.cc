#include "agent/apt/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/posix_status.h"
#include "common/status_macros.h"

extern char** environ;

namespace tended::agent::apt {
namespace {

std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& x : extra) {
      if (x.substr(0, x.find('=')) == name) replaced = true;
    }
    if (!replaced) out.push_back(std::move(entry));
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// How long output is still read after the child exited: a process it left behind (a daemon
// a maintainer script started) may hold the pipe open for ever.
constexpr absl::Duration kDrainAfterExit = absl::Seconds(1);
// How often a child's exit is checked where pidfd_open is missing.
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

// Spawns `argv` with a pipe on its stdin (fed `stdin_data`) and a pipe whose write end
// becomes each of `output_fds` in the child; pumps both until the child exited and its
// output is drained, passing what arrives to `on_output`. Past `timeout` the child is
// killed (SIGKILL) and the result is DEADLINE_EXCEEDED. Returns the exit code (128+signal).
absl::StatusOr<int> SpawnAndPump(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, const std::string& stdin_data,
                                 const std::vector<int>& output_fds,
                                 const std::function<void(absl::string_view)>& on_output,
                                 absl::Duration timeout = absl::InfiniteDuration()) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProcess: empty argv");
  int out_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return PosixErrorToStatus("pipe", errno);
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return PosixErrorToStatus("pipe", err);
  }
  // dup2 onto itself would keep close-on-exec: move the write end above the targets.
  if (int moved = fcntl(out_pipe[1], F_DUPFD_CLOEXEC, kReplyFd + 1); moved >= 0) {
    close(out_pipe[1]);
    out_pipe[1] = moved;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // With nothing to feed, stdin is /dev/null: a prompt reads EOF, whatever it is.
  if (stdin_data.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  }
  for (int fd : output_fds) posix_spawn_file_actions_adddup2(&actions, out_pipe[1], fd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // The agent blocks SIGTERM and SIGINT in every thread (it waits for them with sigwait).
  // A blocked mask is inherited across exec, and a daemon a maintainer script starts
  // would then never see SIGTERM: children start with nothing blocked.
  sigset_t nothing_blocked;
  sigemptyset(&nothing_blocked);
  posix_spawnattr_setsigmask(&attr, &nothing_blocked);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> env_strings = MergedEnvironment(env);
  std::vector<char*> argv_ptrs, env_ptrs;
  for (const std::string& a : argv) argv_ptrs.push_back(const_cast<char*>(a.c_str()));
  argv_ptrs.push_back(nullptr);
  for (const std::string& e : env_strings) env_ptrs.push_back(const_cast<char*>(e.c_str()));
  env_ptrs.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, argv_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    return PosixErrorToStatus(absl::StrCat("spawn ", argv[0]), rc);
  }

  // Feed stdin and drain the output together so neither side can block the other.
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  char buffer[8192];
  const absl::Time deadline = absl::Now() + timeout;
  absl::Time drain_until = absl::InfiniteFuture();
  bool exited = false, timed_out = false, eof = false;
  int status = 0;
  // Readable once the child exited (Linux 5.3+). Without it, exits are noticed by polling.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  while (!(exited && eof)) {
    pollfd fds[3];
    fds[0] = {eof ? -1 : out_pipe[0], POLLIN, 0};  // poll skips a negative descriptor.
    fds[1] = {in_fd, POLLOUT, 0};
    fds[2] = {exited ? -1 : pidfd, POLLIN, 0};
    const absl::Time wake = exited ? drain_until : deadline;
    absl::Duration wait = std::max(wake - absl::Now(), absl::ZeroDuration());
    if (pidfd < 0 && !exited) wait = std::min(wait, kPollSlice);
    if (wait != absl::InfiniteDuration()) wait = std::min(wait, absl::Hours(1));  // Fits an int.
    const int timeout_ms =
        wait == absl::InfiniteDuration() ? -1 : static_cast<int>(absl::ToInt64Milliseconds(wait));
    const int ready = poll(fds, 3, timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) fds[0].revents = fds[1].revents = fds[2].revents = 0;
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      drain_until = absl::Now() + kDrainAfterExit;
    }
    if (!exited && absl::Now() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      exited = timed_out = true;
      break;
    }
    if (exited && (ready == 0 || absl::Now() >= drain_until)) break;
    if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      // A child that exits without reading must not SIGPIPE us: block it around the write.
      sigset_t pipe_set, old_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
      ssize_t w = write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (w < 0 && errno == EPIPE) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_set, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EINTR && errno != EAGAIN) written = stdin_data.size();
      if (written >= stdin_data.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(out_pipe[0], buffer, sizeof(buffer));
      if (r > 0) {
        on_output(absl::string_view(buffer, static_cast<size_t>(r)));
      } else if (r == 0 || errno != EINTR) {
        eof = true;  // Still wait for the exit, within the timeout.
      }
    }
  }
  if (pidfd >= 0) close(pidfd);
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  while (!exited && waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return PosixErrorToStatus(absl::StrCat("waitpid ", argv[0]), errno);
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        argv[0], " did not finish within ", absl::FormatDuration(timeout), " and was killed"));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env,
                                         const std::string& stdin_data, absl::Duration timeout) {
  ProcessResult result;
  ASSIGN_OR_RETURN(result.exit_code, SpawnAndPump(
                                         argv, env, stdin_data, {STDOUT_FILENO, STDERR_FILENO},
                                         [&](absl::string_view chunk) {
                                           result.output.append(chunk.data(), chunk.size());
                                         },
                                         timeout));
  return result;
}

absl::StatusOr<int> RunProcessWithReplies(const std::vector<std::string>& argv,
                                          const std::string& stdin_data,
                                          const std::function<void(absl::string_view)>& on_line,
                                          absl::Duration timeout) {
  std::string pending;
  absl::StatusOr<int> exit_code = SpawnAndPump(
      argv, {}, stdin_data, {kReplyFd},
      [&](absl::string_view chunk) {
        pending.append(chunk.data(), chunk.size());
        size_t start = 0;
        for (size_t nl = pending.find('\n'); nl != std::string::npos;
             nl = pending.find('\n', start)) {
          on_line(absl::string_view(pending).substr(start, nl - start));
          start = nl + 1;
        }
        pending.erase(0, start);
      },
      timeout);
  if (exit_code.ok() && !pending.empty()) on_line(pending);
  return exit_code;
}

}  // namespace tended::agent::apt
