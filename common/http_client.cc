#include "common/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace tended {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};

absl::Status EnsureCurlInitialized() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(result)));
  }
  return absl::OkStatus();
}

bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  return absl::StartsWith(host, "127.") && std::all_of(host.begin(), host.end(), [](char c) {
           return c == '.' || (c >= '0' && c <= '9');
         });
}

bool TargetsLoopback(const std::string& url) {
  std::unique_ptr<CURLU, CurlUrlDeleter> handle(curl_url());
  if (handle == nullptr || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return false;
  }
  char* host = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) return false;
  std::unique_ptr<char, CurlStringDeleter> owned(host);
  return IsLoopbackHost(host);
}

bool HasLineBreak(absl::string_view text) {
  return text.find_first_of("\r\n") != absl::string_view::npos;
}

// What one transfer collects; the callbacks below fill it.
struct Transfer {
  const HttpClient::Request* request = nullptr;
  CURL* curl = nullptr;
  HttpClient::Response response;
  size_t kept_bytes = 0;
  bool too_large = false;
  bool receiver_stopped = false;
  int streaming = -1;  // Decided at the first piece of body: 1 streams, 0 keeps.

  bool Keep(size_t bytes) {
    if (bytes > request->max_response_bytes - kept_bytes) {
      too_large = true;
      return false;
    }
    kept_bytes += bytes;
    return true;
  }
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  Transfer& transfer = *static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer.streaming < 0) {
    long code = 0;
    curl_easy_getinfo(transfer.curl, CURLINFO_RESPONSE_CODE, &code);
    transfer.streaming = transfer.request->on_body && code >= 200 && code <= 299 ? 1 : 0;
  }
  if (transfer.streaming == 1) {
    if (!transfer.request->on_body(absl::string_view(data, bytes))) {
      transfer.receiver_stopped = true;
      return 0;  // Makes curl stop with CURLE_WRITE_ERROR.
    }
    return bytes;
  }
  if (!transfer.Keep(bytes)) return 0;
  transfer.response.body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  Transfer& transfer = *static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  absl::string_view line(data, bytes);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new answer begins (after "100 Continue" or a proxy's CONNECT): only the last counts.
    transfer.response.headers.clear();
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return bytes;  // The blank line, or junk.
  if (!transfer.Keep(bytes)) return 0;
  transfer.response.headers.emplace_back(
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
      std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return bytes;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const Transfer& transfer = *static_cast<const Transfer*>(user);
  return transfer.request->cancel != nullptr && transfer.request->cancel->load() ? 1 : 0;
}

long Milliseconds(absl::Duration duration) {
  return static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(duration)));
}

// What a failed transfer means, in words.
std::string Summary(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot resolve the host name";
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "cannot resolve the proxy's host name";
    case CURLE_COULDNT_CONNECT:
      return "cannot connect (nothing listens there, or the network refused)";
    case CURLE_PEER_FAILED_VERIFICATION:
      return "the server's TLS certificate is not trusted";
    case CURLE_SSL_CONNECT_ERROR:
      return "the TLS handshake failed";
    case CURLE_SSL_CERTPROBLEM:
      return "the TLS client certificate or key cannot be used";
    case CURLE_SSL_CACERT_BADFILE:
      return "the CA certificates cannot be read";
    case CURLE_GOT_NOTHING:
      return "the server closed the connection without answering";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
      return "the connection broke off";
    case CURLE_WEIRD_SERVER_REPLY:
      return "the server did not answer in HTTP";
    default:
      return curl_easy_strerror(code);
  }
}

absl::Status TransferError(const HttpClient::Request& request, const Transfer& transfer,
                           CURLcode code, const char* error_buffer, absl::string_view shown) {
  const std::string prefix = absl::StrCat(request.method, " ", shown, ": ");
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(prefix, "answer larger than ", request.max_response_bytes, " bytes"));
  }
  if (transfer.receiver_stopped) {
    return absl::CancelledError(absl::StrCat(prefix, "stopped by the receiver"));
  }
  if (code == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError(prefix + "cancelled");
  std::string detail = error_buffer[0] != '\0' ? error_buffer : "";
  // libcurl's words may quote the URL, which can hold a secret.
  if (!detail.empty() && shown != request.url) {
    detail = absl::StrReplaceAll(detail, {{request.url, shown}});
  }
  std::string summary = Summary(code);
  if (code == CURLE_OPERATION_TIMEDOUT) {
    summary = absl::StrCat("no complete answer within ", absl::FormatDuration(request.timeout));
  }
  std::string message = prefix + summary;
  if (!detail.empty() && detail != summary) absl::StrAppend(&message, " (", detail, ")");
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(message);
    default:
      return absl::UnavailableError(message);
  }
}

template <typename Value>
bool Set(CURL* curl, CURLoption option, Value value) {
  return curl_easy_setopt(curl, option, value) == CURLE_OK;
}

bool SetBlob(CURL* curl, CURLoption option, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  return Set(curl, option, &blob);
}

bool ConfigureTls(CURL* curl, const HttpTlsOptions& tls) {
  bool ok = true;
  if (tls.insecure_skip_verify) {
    ok = ok && Set(curl, CURLOPT_SSL_VERIFYPEER, 0L) && Set(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!tls.ca_pem.empty()) {
    ok = ok && SetBlob(curl, CURLOPT_CAINFO_BLOB, tls.ca_pem);
  } else if (!tls.ca_file.empty()) {
    ok = ok && Set(curl, CURLOPT_CAINFO, tls.ca_file.c_str());
  }
  if (!tls.client_certificate_pem.empty()) {
    ok = ok && SetBlob(curl, CURLOPT_SSLCERT_BLOB, tls.client_certificate_pem) &&
         Set(curl, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!tls.client_certificate_file.empty()) {
    ok = ok && Set(curl, CURLOPT_SSLCERT, tls.client_certificate_file.c_str());
  }
  if (!tls.client_key_pem.empty()) {
    ok = ok && SetBlob(curl, CURLOPT_SSLKEY_BLOB, tls.client_key_pem) &&
         Set(curl, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!tls.client_key_file.empty()) {
    ok = ok && Set(curl, CURLOPT_SSLKEY, tls.client_key_file.c_str());
  }
  return ok;
}

}  // namespace

std::string HttpClient::Response::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

std::string RedactUrlPassword(const std::string& url) {
  if (!EnsureCurlInitialized().ok()) return url;
  std::unique_ptr<CURLU, CurlUrlDeleter> handle(curl_url());
  if (handle == nullptr || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return url;
  }
  char* password = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_PASSWORD, &password, 0) != CURLUE_OK) return url;
  curl_free(password);
  char* redacted = nullptr;
  if (curl_url_set(handle.get(), CURLUPART_PASSWORD, "REDACTED", 0) != CURLUE_OK ||
      curl_url_get(handle.get(), CURLUPART_URL, &redacted, 0) != CURLUE_OK) {
    return "(unprintable URL)";
  }
  std::unique_ptr<char, CurlStringDeleter> owned(redacted);
  return redacted;
}

absl::StatusOr<HttpClient::Response> CurlHttpClient::Send(const Request& request) {
  if (absl::Status init = EnsureCurlInitialized(); !init.ok()) return init;
  const std::string shown =
      request.url_for_messages.empty() ? RedactUrlPassword(request.url) : request.url_for_messages;
  const std::string prefix = absl::StrCat(request.method, " ", shown, ": ");
  if (request.method.empty() || HasLineBreak(request.method) ||
      request.method.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", request.method, "\" is not a method"));
  }
  std::unique_ptr<curl_slist, CurlListDeleter> headers;
  // No "Expect: 100-continue" round trip before a body.
  std::vector<std::string> lines = {"Expect:"};
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value) ||
        name.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "header \"", name, "\" cannot be sent as it is"));
    }
    lines.push_back(value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value));
  }
  for (const std::string& line : lines) {
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("curl_slist_append failed");
    headers.release();
    headers.reset(appended);
  }

  std::unique_ptr<CURL, CurlEasyDeleter> handle(curl_easy_init());
  if (handle == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  CURL* curl = handle.get();
  Transfer transfer;
  transfer.request = &request;
  transfer.curl = curl;
  char error_buffer[CURL_ERROR_SIZE] = {};
  const absl::Duration connect_timeout = request.connect_timeout > absl::ZeroDuration()
                                             ? std::min(request.connect_timeout, request.timeout)
                                             : request.timeout;

  bool set = Set(curl, CURLOPT_URL, request.url.c_str()) &&
             Set(curl, CURLOPT_PROTOCOLS_STR, "http,https") &&
             Set(curl, CURLOPT_FOLLOWLOCATION, 0L) && Set(curl, CURLOPT_NOSIGNAL, 1L) &&
             Set(curl, CURLOPT_TIMEOUT_MS, Milliseconds(request.timeout)) &&
             Set(curl, CURLOPT_CONNECTTIMEOUT_MS, Milliseconds(connect_timeout)) &&
             Set(curl, CURLOPT_HTTPHEADER, headers.get()) &&
             Set(curl, CURLOPT_USERAGENT, request.user_agent.c_str()) &&
             Set(curl, CURLOPT_WRITEFUNCTION, &OnBody) &&
             Set(curl, CURLOPT_WRITEDATA, static_cast<void*>(&transfer)) &&
             Set(curl, CURLOPT_HEADERFUNCTION, &OnHeader) &&
             Set(curl, CURLOPT_HEADERDATA, static_cast<void*>(&transfer)) &&
             Set(curl, CURLOPT_ERRORBUFFER, error_buffer) && ConfigureTls(curl, request.tls);
  if (set && !request.on_body) {
    // An announced Content-Length over the cap fails before any of it is read.
    set = Set(curl, CURLOPT_MAXFILESIZE_LARGE,
              static_cast<curl_off_t>(std::min<size_t>(request.max_response_bytes, INT64_MAX)));
  }
  if (set && request.accept_compressed) set = Set(curl, CURLOPT_ACCEPT_ENCODING, "");
  if (set && TargetsLoopback(request.url)) set = Set(curl, CURLOPT_NOPROXY, "*");
  if (set && request.cancel != nullptr) {
    set = Set(curl, CURLOPT_NOPROGRESS, 0L) && Set(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress) &&
          Set(curl, CURLOPT_XFERINFODATA, static_cast<void*>(&transfer));
  }
  if (set) {
    if (request.method == "GET") {
      set = Set(curl, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      set = Set(curl, CURLOPT_NOBODY, 1L);
    } else {
      if (request.method != "POST") set = Set(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (request.method == "POST" || !request.body.empty()) {
        set = set && Set(curl, CURLOPT_POSTFIELDS, request.body.data()) &&
              Set(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      }
    }
  }
  if (!set) return absl::InternalError(prefix + "cannot set up the libcurl request");

  if (request.cancel != nullptr && request.cancel->load()) {
    return absl::CancelledError(prefix + "cancelled");
  }
  CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) return TransferError(request, transfer, code, error_buffer, shown);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status_code = static_cast<int>(status);
  return std::move(transfer.response);
}

std::shared_ptr<HttpClient> DefaultHttpClient() {
  static const std::shared_ptr<HttpClient> client = std::make_shared<CurlHttpClient>();
  return client;
}

}  // namespace tended
