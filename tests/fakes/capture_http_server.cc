#include "tests/fakes/capture_http_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tended::testing {

CaptureServer::CaptureServer() {
  auto started = HttpServer::Start("127.0.0.1:0", [this](const HttpRequest& request) {
    std::unique_lock<std::mutex> lock(mutex_);
    requests_.push_back(request);
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(10), [this] { return !hold_; });
    HttpResponse response;
    response.status = status_;
    response.body = status_ == 200 ? "ok" : "invalid_payload";
    return response;
  });
  EXPECT_TRUE(started.ok()) << started.status();
  server_ = *std::move(started);
}

CaptureServer::~CaptureServer() {
  Release();
  server_->Stop();
}

std::string CaptureServer::Base() const { return absl::StrCat("http://127.0.0.1:", port()); }

void CaptureServer::Answer(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  status_ = status;
}

void CaptureServer::Hold() {
  std::lock_guard<std::mutex> lock(mutex_);
  hold_ = true;
}

void CaptureServer::Release() {
  std::lock_guard<std::mutex> lock(mutex_);
  hold_ = false;
  changed_.notify_all();
}

bool CaptureServer::WaitForRequests(size_t count) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return requests_.size() >= count; });
}

std::vector<HttpRequest> CaptureServer::requests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

}  // namespace tended::testing
