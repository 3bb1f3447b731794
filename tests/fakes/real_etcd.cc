#include "tests/fakes/real_etcd.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/fakes/free_port.h"
#include "tests/fakes/http_probe.h"

namespace tended::testing {

absl::StatusOr<std::unique_ptr<RealEtcd>> RealEtcd::Start(const std::string& dir,
                                                          const EtcdServerTls* tls,
                                                          absl::Duration ready_timeout) {
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> client_port = PickFreeLoopbackPort();
    absl::StatusOr<int> peer_port = PickFreeLoopbackPort();
    absl::StatusOr<int> metrics_port = PickFreeLoopbackPort();
    if (!client_port.ok()) return client_port.status();
    if (!peer_port.ok()) return peer_port.status();
    if (!metrics_port.ok()) return metrics_port.status();
    std::unique_ptr<RealEtcd> etcd(new RealEtcd());
    etcd->client_port_ = *client_port;
    etcd->client_url_ =
        absl::StrCat(tls == nullptr ? "http" : "https", "://127.0.0.1:", *client_port);
    const std::string peer_url = absl::StrCat("http://127.0.0.1:", *peer_port);
    std::vector<std::string> argv = {
        kEtcdProgram,
        "--name=tended-test",
        absl::StrCat("--data-dir=", dir, "/data-", attempt),
        absl::StrCat("--listen-client-urls=", etcd->client_url_),
        absl::StrCat("--advertise-client-urls=", etcd->client_url_),
        absl::StrCat("--listen-peer-urls=", peer_url),
        absl::StrCat("--initial-advertise-peer-urls=", peer_url),
        absl::StrCat("--initial-cluster=tended-test=", peer_url),
        absl::StrCat("--listen-metrics-urls=http://127.0.0.1:", *metrics_port),
    };
    if (tls != nullptr) {
      argv.push_back(absl::StrCat("--cert-file=", tls->cert_file));
      argv.push_back(absl::StrCat("--key-file=", tls->key_file));
      argv.push_back(absl::StrCat("--trusted-ca-file=", tls->ca_file));
      argv.push_back("--client-cert-auth=true");
    }
    absl::StatusOr<std::unique_ptr<ChildProcess>> process =
        ChildProcess::Start(argv, absl::StrCat(dir, "/etcd-", attempt, ".log"));
    if (!process.ok()) return process.status();
    etcd->process_ = *std::move(process);
    last = WaitForHttpReady(*metrics_port, "/health", ready_timeout, etcd->process_.get());
    if (last.ok()) return etcd;
    etcd->process_->Stop();
    if (!absl::IsFailedPrecondition(last)) break;  // Timed out rather than exited.
  }
  return last;
}

RealEtcd::~RealEtcd() {
  if (process_ != nullptr) process_->Stop();
}

absl::Status RealEtcd::Put(const std::string& key, const std::string& value) {
  if (!absl::StartsWith(client_url_, "http://")) {
    return absl::FailedPreconditionError("RealEtcd::Put speaks plain http only");
  }
  absl::StatusOr<HttpProbeResponse> response =
      HttpRequestLoopback(client_port_, "POST", "/v3/kv/put", absl::Seconds(30),
                          absl::StrCat("{\"key\":\"", absl::Base64Escape(key), "\",\"value\":\"",
                                       absl::Base64Escape(value), "\"}"));
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::InternalError(
        absl::StrCat("etcd put ", key, ": HTTP ", response->status, ": ", response->body));
  }
  return absl::OkStatus();
}

}  // namespace tended::testing
