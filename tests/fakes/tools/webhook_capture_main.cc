// webhook-capture: a webhook receiver as a program, for scripts/demo.sh --kubernetes. It
// listens on 127.0.0.1 (port chosen by the kernel), writes that port to --port_file, and
// prints the body of every POST it receives on one line, prefixed "webhook: ", answering
// 200 "ok" to every request. Test-only: never shipped.
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file_util.h"
#include "common/http_metrics_server.h"

ABSL_FLAG(std::string, port_file, "", "Where to write the port this receiver listens on.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (port_file.empty()) {
    std::fprintf(stderr, "--port_file is required\n");
    return 2;
  }

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::mutex print_mutex;
  auto server = tended::HttpServer::Start("127.0.0.1:0", [&](const tended::HttpRequest& request) {
    if (request.method == "POST") {
      std::string line = absl::StrReplaceAll(request.body, {{"\r", " "}, {"\n", " "}});
      std::lock_guard<std::mutex> lock(print_mutex);
      std::printf("webhook: %s\n", line.c_str());
      std::fflush(stdout);
    }
    tended::HttpResponse response;
    response.body = "ok";
    return response;
  });
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  if (absl::Status written =
          tended::WriteFileAtomically(port_file, absl::StrCat((*server)->port(), "\n"));
      !written.ok()) {
    std::fprintf(stderr, "%s\n", written.ToString().c_str());
    return 1;
  }
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  (*server)->Stop();
  return 0;
}
