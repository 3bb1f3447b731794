// The real KubeClient: JSON over HTTPS to the API server through the HttpClient
// (common/http_client.h), authenticated with a bearer token (re-read as it rotates) or a
// client certificate. http:// servers are accepted too, for the fake API server in the tests.
#ifndef TENDED_COORDINATOR_KUBE_HTTP_KUBE_CLIENT_H_
#define TENDED_COORDINATOR_KUBE_HTTP_KUBE_CLIENT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http_client.h"
#include "coordinator/kube/kube_client.h"
#include "coordinator/kube/kube_config.h"
#include "coordinator/kube/token_source.h"

namespace tended::kube {

// A list of every node of a large cluster runs to tens of MB; an answer beyond this is
// refused rather than read.
inline constexpr size_t kMaxKubeResponseBytes = size_t{256} << 20;

class HttpKubeClient final : public KubeClient {
 public:
  // From a kubeconfig or the in-cluster environment (ResolveKubeConnection). Without
  // either, FAILED_PRECONDITION saying so. `http` null: the process's CurlHttpClient.
  static absl::StatusOr<std::unique_ptr<HttpKubeClient>> Create(
      const KubeClientOptions& options, std::shared_ptr<HttpClient> http = nullptr);
  static absl::StatusOr<std::unique_ptr<HttpKubeClient>> FromConnection(
      KubeConnection connection, const KubeClientOptions& options,
      std::shared_ptr<HttpClient> http = nullptr);

  const KubeConnection& connection() const { return connection_; }

  absl::StatusOr<NodeInfo> GetNode(const std::string& name) override;
  absl::StatusOr<NodeList> ListNodes(const std::string& label_selector) override;
  absl::StatusOr<std::string> WatchNodes(const NodeWatchOptions& options,
                                         const NodeWatchCallback& callback) override;
  absl::StatusOr<NodeInfo> PatchNodeMerge(
      const std::string& name, const std::string& merge_patch_json,
      const std::optional<std::string>& resource_version) override;
  absl::StatusOr<std::vector<PodInfo>> ListPods(const PodListOptions& options) override;
  absl::StatusOr<PodInfo> GetPod(const std::string& namespace_name,
                                 const std::string& name) override;
  absl::StatusOr<EvictionResult> EvictPod(const std::string& namespace_name,
                                          const std::string& name,
                                          std::optional<absl::Duration> grace_period) override;
  absl::Status DeletePod(const std::string& namespace_name, const std::string& name,
                         std::optional<absl::Duration> grace_period) override;
  absl::Status CreateNodeEvent(const std::string& node, const std::string& reason,
                               const std::string& message, const std::string& type) override;
  absl::StatusOr<DaemonSetInfo> GetDaemonSet(const std::string& namespace_name,
                                             const std::string& name) override;

  struct Response {
    long code = 0;
    std::string body;
    std::string retry_after_header;
  };

 private:
  HttpKubeClient(KubeConnection connection, const KubeClientOptions& options,
                 std::shared_ptr<HttpClient> http);

  struct Request {
    Request(std::string method, std::string path, std::string body = "",
            std::string content_type = "")
        : method(std::move(method)),
          path(std::move(path)),
          body(std::move(body)),
          content_type(std::move(content_type)) {}
    std::string method;
    std::string path;  // With the query: "/api/v1/nodes?labelSelector=..."
    std::string body;
    std::string content_type;
  };
  // The connection's TLS material and authentication, timeouts and the size cap.
  HttpClient::Request BaseRequest(const std::string& method, const std::string& path,
                                  const std::string& token, absl::Duration timeout) const;
  // One request; transport failures are UNAVAILABLE. A 401 re-reads the token and, when it
  // changed, retries once.
  absl::StatusOr<Response> Send(const Request& request);
  absl::StatusOr<Response> SendOnce(const Request& request, const std::string& token);
  // Maps a non-2xx response to the status codes kube_client.h promises.
  absl::Status ErrorFor(const Request& request, const Response& response) const;
  std::string Url(const std::string& path) const { return connection_.server + path; }

  const std::shared_ptr<HttpClient> http_;
  const KubeConnection connection_;
  const Clock* const clock_;
  const absl::Duration request_timeout_;
  const absl::Duration connect_timeout_;
  const std::string user_agent_;
  TokenSource token_source_;
};

}  // namespace tended::kube

#endif  // TENDED_COORDINATOR_KUBE_HTTP_KUBE_CLIENT_H_
