#include "agent/etcd/snapshot_command.h"

#include <sys/stat.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/etcd/snapshot.h"

namespace tended::agent::etcd {
namespace {

constexpr char kUsage[] =
    "usage: tended-agent etcd-snapshot --endpoint URL [--cacert FILE --cert FILE --key FILE]\n"
    "                                  --out FILE|FOLDER [--timeout 2m]\n"
    "  --endpoint  http://HOST:PORT or https://HOST:PORT of one etcd member\n"
    "              (kubeadm: https://127.0.0.1:2379)\n"
    "  --cacert    CA that signed etcd's server certificate (kubeadm: "
    "/etc/kubernetes/pki/etcd/ca.crt)\n"
    "  --cert      client certificate (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt)\n"
    "  --key       its key (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.key)\n"
    "  --out       file to write; in an existing folder, etcd-snapshot-<UTC time>.db\n"
    "  --timeout   for the whole snapshot (default 2m)\n";

const char* const kFlags[] = {"--endpoint", "--cacert", "--cert", "--key", "--out", "--timeout"};

int UsageError(std::ostream& err, const std::string& problem) {
  err << "tended-agent etcd-snapshot: " << problem << "\n" << kUsage;
  return 2;
}

bool IsFolder(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

int RunSnapshotCommand(const std::vector<std::string>& args, const Clock& clock, std::ostream& out,
                       std::ostream& err) {
  std::map<std::string, std::string> values;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out << kUsage;
      return 0;
    }
    std::string name = arg;
    std::string value;
    bool has_value = false;
    if (size_t equals = arg.find('='); absl::StartsWith(arg, "--") && equals != std::string::npos) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
      has_value = true;
    }
    bool known = false;
    for (const char* flag : kFlags) known = known || name == flag;
    if (!known) return UsageError(err, absl::StrCat("unknown argument \"", arg, "\""));
    if (!has_value) {
      if (i + 1 >= args.size()) return UsageError(err, absl::StrCat(name, " needs a value"));
      value = args[++i];
    }
    values[name] = value;
  }
  for (const char* required : {"--endpoint", "--out"}) {
    if (values[required].empty()) return UsageError(err, absl::StrCat(required, " is required"));
  }

  SnapshotOptions options;
  options.endpoint = values["--endpoint"];
  options.ca_file = values["--cacert"];
  options.cert_file = values["--cert"];
  options.key_file = values["--key"];
  if (!values["--timeout"].empty() &&
      (!absl::ParseDuration(values["--timeout"], &options.timeout) ||
       options.timeout <= absl::ZeroDuration())) {
    return UsageError(err, absl::StrCat("--timeout \"", values["--timeout"],
                                        "\" is not a positive duration such as 90s or 2m"));
  }
  std::string path = values["--out"];
  if (IsFolder(path)) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    path = absl::StrCat(path == "/" ? "" : path, "/", SnapshotFileName(clock.Now()));
  }

  absl::StatusOr<tended::v1::EtcdSnapshotRecord> record = TakeSnapshot(options, path, clock);
  if (!record.ok()) {
    err << "tended-agent etcd-snapshot: " << record.status().message() << "\n";
    return 1;
  }
  out << "path: " << record->path() << "\n"
      << "size: " << record->size_bytes() << " bytes\n"
      << "sha256: " << record->sha256() << " (database, checked against etcd's trailer)\n"
      << "etcd version: "
      << (record->etcd_version().empty() ? "unknown (etcd did not say)" : record->etcd_version())
      << "\n";
  return 0;
}

}  // namespace tended::agent::etcd
