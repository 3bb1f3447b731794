// A real single-member etcd (Debian's /usr/bin/etcd) for one test, on free 127.0.0.1 ports
// with its data in a folder the test owns; stopped and reaped when this goes away. Plain
// http by default; https with client certificates when given TLS files.
#ifndef TENDED_TESTS_FAKES_REAL_ETCD_H_
#define TENDED_TESTS_FAKES_REAL_ETCD_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/fakes/process_runner.h"

namespace tended::testing {

inline constexpr char kEtcdProgram[] = "/usr/bin/etcd";
inline constexpr char kEtcdctlProgram[] = "/usr/bin/etcdctl";

// PEM files for an etcd that serves https and asks clients for a certificate.
struct EtcdServerTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class RealEtcd {
 public:
  // Starts etcd with its data under `dir` and waits (up to `ready_timeout`) until /health
  // answers 200 on its plain-http metrics port. Retries on fresh ports when one was taken.
  static absl::StatusOr<std::unique_ptr<RealEtcd>> Start(
      const std::string& dir, const EtcdServerTls* tls = nullptr,
      absl::Duration ready_timeout = absl::Seconds(60));

  ~RealEtcd();
  RealEtcd(const RealEtcd&) = delete;
  RealEtcd& operator=(const RealEtcd&) = delete;

  // "http://127.0.0.1:<port>" or "https://127.0.0.1:<port>".
  const std::string& client_url() const { return client_url_; }
  ChildProcess& process() { return *process_; }

  // Writes key = value through etcd's JSON gateway (plain http only).
  absl::Status Put(const std::string& key, const std::string& value);

 private:
  RealEtcd() = default;

  std::string client_url_;
  int client_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace tended::testing

#endif  // TENDED_TESTS_FAKES_REAL_ETCD_H_
