#include "tests/fakes/fake_http_client.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tended::testing {

HttpClient::Response FakeHttpClient::Answer(int status_code, std::string body) {
  Response response;
  response.status_code = status_code;
  response.body = std::move(body);
  return response;
}

void FakeHttpClient::Script(const std::string& url, std::deque<absl::StatusOr<Response>> answers) {
  std::lock_guard<std::mutex> lock(mutex_);
  scripts_[url] = std::move(answers);
}

void FakeHttpClient::SetDefault(absl::StatusOr<Response> answer) {
  std::lock_guard<std::mutex> lock(mutex_);
  default_ = std::move(answer);
}

void FakeHttpClient::Hold(bool hold) {
  std::lock_guard<std::mutex> lock(mutex_);
  hold_ = hold;
  changed_.notify_all();
}

bool FakeHttpClient::WaitForRequests(size_t count) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::seconds(10),
                           [&] { return requests_.size() >= count; });
}

std::vector<HttpClient::Request> FakeHttpClient::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

absl::StatusOr<HttpClient::Response> FakeHttpClient::Send(const Request& request) {
  absl::StatusOr<Response> answer;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    requests_.push_back(request);
    changed_.notify_all();
    changed_.wait_for(lock, std::chrono::seconds(10), [this] { return !hold_; });
    auto script = scripts_.find(request.url);
    if (script != scripts_.end() && !script->second.empty()) {
      answer = std::move(script->second.front());
      script->second.pop_front();
    } else {
      answer = default_;
    }
  }
  if (answer.ok() && request.on_body && answer->ok()) {
    std::string body = std::move(answer->body);
    answer->body.clear();
    if (!body.empty() && !request.on_body(body)) {
      return absl::CancelledError(
          absl::StrCat(request.method, " ", request.url, ": stopped by the receiver"));
    }
  }
  return answer;
}

}  // namespace tended::testing
