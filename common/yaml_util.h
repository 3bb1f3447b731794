// Strict YAML reading for tended's configuration files: every error names the file, the
// line and the dotted key ("coordinator.yaml:14: leases.reboot.concurrency: ..."), and a
// key the schema does not know is an error, not silently ignored.
#ifndef TENDED_COMMON_YAML_UTIL_H_
#define TENDED_COMMON_YAML_UTIL_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tended {

// Parses a whole document; a syntax error becomes INVALID_ARGUMENT "<source>:<line>: ...".
absl::StatusOr<YAML::Node> ParseYamlDocument(absl::string_view contents, absl::string_view source);

// A position in a YAML document: the node, its dotted key path and the source's name.
class YamlCursor {
 public:
  YamlCursor(YAML::Node node, std::string source, std::string path = "");
  YamlCursor(const YamlCursor&) = default;
  // Assigning a yaml-cpp node rewrites the parsed document, so cursors are never assigned.
  YamlCursor& operator=(const YamlCursor&) = delete;

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  int line() const;  // 1-based; 0 when unknown.

  bool IsMap() const { return node_.IsMap(); }
  bool IsSequence() const { return node_.IsSequence(); }
  bool IsNull() const { return !node_.IsDefined() || node_.IsNull(); }

  // INVALID_ARGUMENT "<source>:<line>: <path>: <message>".
  absl::Status Error(absl::string_view message) const;

  // The node must be a map (or null/absent, which counts as empty) whose keys are all in
  // `allowed`; otherwise an error naming the first unknown key and its line.
  absl::Status ExpectMapWithKeys(std::initializer_list<absl::string_view> allowed) const;

  bool Has(absl::string_view key) const;
  YamlCursor Child(absl::string_view key) const;
  std::vector<YamlCursor> Elements() const;  // Of a sequence; empty for null.
  // For maps whose keys are free (labels): the key/value cursors in document order.
  std::vector<std::pair<std::string, YamlCursor>> Entries() const;

  absl::StatusOr<std::string> AsString() const;
  absl::StatusOr<bool> AsBool() const;
  absl::StatusOr<int64_t> AsInt(int64_t min, int64_t max) const;
  absl::StatusOr<double> AsDouble() const;
  // Go-style durations: "30s", "1h30m", "250ms"; also "2d" for days. Negative is an error.
  absl::StatusOr<absl::Duration> AsDuration() const;
  absl::StatusOr<std::vector<std::string>> AsStringList() const;

  // Reads an optional child into *out, leaving *out as is when the key is absent.
  absl::Status Optional(absl::string_view key, std::string* out) const;
  absl::Status Optional(absl::string_view key, bool* out) const;
  absl::Status Optional(absl::string_view key, absl::Duration* out) const;
  absl::Status Optional(absl::string_view key, int64_t* out, int64_t min, int64_t max) const;
  absl::Status Optional(absl::string_view key, double* out) const;
  absl::Status Optional(absl::string_view key, std::vector<std::string>* out) const;

 private:
  YAML::Node node_;
  std::string source_;
  std::string path_;
};

}  // namespace tended

#endif  // TENDED_COMMON_YAML_UTIL_H_
