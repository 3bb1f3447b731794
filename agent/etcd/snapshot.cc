#include "agent/etcd/snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/host_port.h"
#include "common/posix_status.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace tended::agent::etcd {
namespace {

constexpr size_t kTrailerSize = 32;  // sha256
constexpr char kFilePrefix[] = "etcd-snapshot-";
constexpr char kFileSuffix[] = ".db";
// After the snapshot, how long Maintenance.Status may take to tell the version.
constexpr absl::Duration kVersionTimeout = absl::Seconds(10);

struct Endpoint {
  bool tls = false;
  std::string target;  // host:port
};

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view endpoint) {
  Endpoint parsed;
  absl::string_view rest = endpoint;
  if (absl::ConsumePrefix(&rest, "https://")) {
    parsed.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd endpoint \"", endpoint,
        "\" must be http://HOST:PORT or https://HOST:PORT, e.g. https://127.0.0.1:2379"));
  }
  absl::ConsumeSuffix(&rest, "/");
  std::string problem = HostPortProblem(rest, "https://127.0.0.1:2379");
  if (!problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("etcd endpoint \"", endpoint, "\": ", problem));
  }
  parsed.target = std::string(rest);
  return parsed;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) {
    return absl::Status(pem.status().code(),
                        absl::StrCat("cannot read the etcd ", what, ": ", pem.status().message()));
  }
  if (pem->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the etcd ", what, " ", path, " is empty"));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const SnapshotOptions& options, const Endpoint& endpoint) {
  if (!endpoint.tls) {
    if (!options.ca_file.empty() || !options.cert_file.empty() || !options.key_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("CA, certificate and key files are for https endpoints, but ",
                       options.endpoint, " is plain http"));
    }
    return grpc::InsecureChannelCredentials();
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the etcd client certificate needs both its certificate and its key file; got only the ",
        options.cert_file.empty() ? "key" : "certificate"));
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.ca_file, "CA file"));
  }
  if (!options.cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(options.cert_file, "client certificate"));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.key_file, "client key"));
  }
  return grpc::SslCredentials(ssl);
}

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    ok_ = context_ != nullptr && EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) == 1;
  }
  ~Sha256() { EVP_MD_CTX_free(context_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view data) {
    if (ok_ && !data.empty()) ok_ = EVP_DigestUpdate(context_, data.data(), data.size()) == 1;
  }

  // The 32-byte digest.
  absl::StatusOr<std::string> Finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ok_ || EVP_DigestFinal_ex(context_, digest, &length) != 1 || length != kTrailerSize) {
      return absl::InternalError("OpenSSL could not compute a sha256");
    }
    return std::string(reinterpret_cast<const char*>(digest), length);
  }

 private:
  EVP_MD_CTX* context_;
  bool ok_ = false;
};

// A file created beside its final path and removed again unless Commit() renamed it there.
class TempFile {
 public:
  static absl::StatusOr<std::unique_ptr<TempFile>> CreateBeside(const std::string& final_path) {
    std::string path = absl::StrCat(final_path, ".part-XXXXXX");
    int fd = ::mkostemp(path.data(), O_CLOEXEC);  // Mode 0600: etcd holds the cluster's secrets.
    if (fd < 0) {
      return PosixErrorToStatus(absl::StrCat("create a temporary file beside ", final_path), errno);
    }
    return std::unique_ptr<TempFile>(new TempFile(std::move(path), fd));
  }

  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  absl::Status Write(absl::string_view data) {
    while (!data.empty()) {
      ssize_t written = ::write(fd_, data.data(), data.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        return PosixErrorToStatus(absl::StrCat("write ", path_), errno);
      }
      data.remove_prefix(static_cast<size_t>(written));
    }
    return absl::OkStatus();
  }

  // fsync, close, rename onto `final_path`, fsync of its folder.
  absl::Status Commit(const std::string& final_path) {
    if (::fsync(fd_) != 0) return PosixErrorToStatus(absl::StrCat("fsync ", path_), errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return PosixErrorToStatus(absl::StrCat("close ", path_), errno);
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      return PosixErrorToStatus(absl::StrCat("rename ", path_, " to ", final_path), errno);
    }
    committed_ = true;
    std::string folder = Dirname(final_path);
    int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (folder_fd < 0) return PosixErrorToStatus(absl::StrCat("open ", folder), errno);
    int synced = ::fsync(folder_fd);
    int sync_errno = errno;
    ::close(folder_fd);
    if (synced != 0) return PosixErrorToStatus(absl::StrCat("fsync ", folder), sync_errno);
    return absl::OkStatus();
  }

 private:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
  bool committed_ = false;
};

std::chrono::system_clock::time_point Deadline(absl::Time deadline) {
  return absl::ToChronoTime(deadline);
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view context) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(context, ": ", status.error_message()));
}

// The server's version from Maintenance.Status, or empty when it does not answer in time.
std::string VersionFromStatus(etcdserverpb::Maintenance::Stub& stub, absl::Time deadline) {
  deadline = std::min(deadline, absl::Now() + kVersionTimeout);
  if (deadline <= absl::Now()) return "";
  grpc::ClientContext context;
  context.set_deadline(Deadline(deadline));
  etcdserverpb::StatusResponse response;
  grpc::Status status = stub.Status(&context, etcdserverpb::StatusRequest(), &response);
  return status.ok() ? response.version() : "";
}

}  // namespace

absl::StatusOr<tended::v1::EtcdSnapshotRecord> TakeSnapshot(const SnapshotOptions& options,
                                                            const std::string& out_path,
                                                            const Clock& clock) {
  const absl::Time asked_at = clock.Now();
  if (out_path.empty()) return absl::InvalidArgumentError("no path given for the etcd snapshot");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the etcd snapshot timeout must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   Credentials(options, endpoint));
  struct stat folder;
  const std::string folder_path = Dirname(out_path);
  if (::stat(folder_path.c_str(), &folder) != 0 || !S_ISDIR(folder.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("the folder ", folder_path, " for the etcd snapshot does not exist"));
  }

  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(endpoint.target, credentials);
  std::unique_ptr<etcdserverpb::Maintenance::Stub> stub =
      etcdserverpb::Maintenance::NewStub(channel);
  ASSIGN_OR_RETURN(std::unique_ptr<TempFile> temp, TempFile::CreateBeside(out_path));

  const absl::Time deadline = absl::Now() + options.timeout;
  grpc::ClientContext context;
  context.set_deadline(Deadline(deadline));
  std::unique_ptr<grpc::ClientReader<etcdserverpb::SnapshotResponse>> reader =
      stub->Snapshot(&context, etcdserverpb::SnapshotRequest());

  Sha256 hasher;
  std::string unhashed;  // The last bytes received, up to 32: the trailer, at the end.
  uint64_t received = 0;
  std::optional<uint64_t> last_remaining;
  std::string version;
  absl::Status write_status;
  etcdserverpb::SnapshotResponse response;
  while (reader->Read(&response)) {
    if (!response.version().empty()) version = response.version();
    last_remaining = response.remaining_bytes();
    const std::string& blob = response.blob();
    if (blob.empty()) continue;
    write_status = temp->Write(blob);
    if (!write_status.ok()) break;
    received += blob.size();
    unhashed.append(blob);
    if (unhashed.size() > kTrailerSize) {
      size_t hash_now = unhashed.size() - kTrailerSize;
      hasher.Update(absl::string_view(unhashed).substr(0, hash_now));
      unhashed.erase(0, hash_now);
    }
  }
  if (!write_status.ok()) {
    context.TryCancel();
    reader->Finish().IgnoreError();
    return write_status;
  }
  grpc::Status finished = reader->Finish();
  const std::string source = absl::StrCat("etcd snapshot from ", options.endpoint);
  if (finished.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(absl::StrCat(source, " did not finish within ",
                                                    absl::FormatDuration(options.timeout), " (",
                                                    received, " bytes received)"));
  }
  if (!finished.ok()) {
    return FromGrpc(finished, received == 0
                                  ? absl::StrCat(source, " failed")
                                  : absl::StrCat(source, " failed after ", received, " bytes"));
  }
  if (received == 0) {
    return absl::DataLossError(absl::StrCat(source, ": etcd sent an empty snapshot"));
  }
  if (last_remaining.value_or(0) != 0) {
    return absl::DataLossError(absl::StrCat(source, ": the stream ended early, after ", received,
                                            " bytes, with etcd announcing ", *last_remaining,
                                            " more"));
  }
  if (received <= kTrailerSize) {
    return absl::DataLossError(absl::StrCat(source, ": the snapshot is only ", received,
                                            " bytes, no database before etcd's 32-byte sha256"));
  }
  ASSIGN_OR_RETURN(std::string digest, hasher.Finish());
  if (digest != unhashed) {
    return absl::DataLossError(absl::StrCat(
        source, ": sha256 mismatch, the snapshot is corrupt or incomplete: etcd's trailer says ",
        absl::BytesToHexString(unhashed), " but the ", received - kTrailerSize,
        " database bytes hash to ", absl::BytesToHexString(digest)));
  }
  if (version.empty()) version = VersionFromStatus(*stub, deadline);
  RETURN_IF_ERROR(temp->Commit(out_path));

  tended::v1::EtcdSnapshotRecord record;
  record.set_path(out_path);
  record.set_size_bytes(received);
  record.set_sha256(absl::BytesToHexString(digest));
  *record.mutable_time() = ToProtoTimestamp(asked_at);
  record.set_etcd_version(version);
  return record;
}

std::string SnapshotFileName(absl::Time time) {
  return absl::StrCat(kFilePrefix, absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone()),
                      kFileSuffix);
}

bool IsSnapshotFileName(const std::string& name) {
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, kFilePrefix) || !absl::ConsumeSuffix(&rest, kFileSuffix)) {
    return false;
  }
  // 20261206T120000Z
  if (rest.size() != 16 || rest[8] != 'T' || rest[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !absl::ascii_isdigit(static_cast<unsigned char>(rest[i]))) return false;
  }
  return true;
}

absl::Status PruneSnapshots(const std::string& dir, int keep) {
  if (keep < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd snapshots to keep must be at least 1, got ", keep));
  }
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return PosixErrorToStatus(absl::StrCat("open folder ", dir), errno);
  std::vector<std::string> snapshots;
  while (struct dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    if (!IsSnapshotFileName(name)) continue;
    struct stat st;
    if (::lstat(absl::StrCat(dir, "/", name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      snapshots.push_back(std::move(name));
    }
  }
  ::closedir(listing);
  if (snapshots.size() <= static_cast<size_t>(keep)) return absl::OkStatus();
  std::sort(snapshots.begin(), snapshots.end());  // Oldest first: the names sort by time.
  absl::Status first_error;
  for (size_t i = 0; i + static_cast<size_t>(keep) < snapshots.size(); ++i) {
    std::string path = absl::StrCat(dir, "/", snapshots[i]);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && first_error.ok()) {
      first_error = PosixErrorToStatus(absl::StrCat("delete old etcd snapshot ", path), errno);
    }
  }
  return first_error;
}

absl::Status RemoveStalePartialSnapshots(const std::string& dir, absl::Time now,
                                         absl::Duration max_age) {
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) return PosixErrorToStatus(absl::StrCat("open folder ", dir), errno);
  std::vector<std::string> stale;
  while (struct dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    const size_t part = name.find(".part-");
    if (part == std::string::npos || !IsSnapshotFileName(name.substr(0, part))) continue;
    // etcd-snapshot-20261206T120000Z.db
    absl::string_view stamp = absl::string_view(name).substr(std::strlen(kFilePrefix), 16);
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!absl::SimpleAtoi(stamp.substr(0, 4), &year) ||
        !absl::SimpleAtoi(stamp.substr(4, 2), &month) ||
        !absl::SimpleAtoi(stamp.substr(6, 2), &day) ||
        !absl::SimpleAtoi(stamp.substr(9, 2), &hour) ||
        !absl::SimpleAtoi(stamp.substr(11, 2), &minute) ||
        !absl::SimpleAtoi(stamp.substr(13, 2), &second)) {
      continue;
    }
    const absl::Time taken = absl::FromCivil(
        absl::CivilSecond(year, month, day, hour, minute, second), absl::UTCTimeZone());
    if (now - taken > max_age) stale.push_back(name);
  }
  ::closedir(listing);
  absl::Status first_error;
  for (const std::string& name : stale) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && first_error.ok()) {
      first_error = PosixErrorToStatus(absl::StrCat("delete unfinished snapshot ", path), errno);
    }
  }
  return first_error;
}

}  // namespace tended::agent::etcd
