#include "common/debian_version.h"

#include <cstdint>

#include "absl/strings/ascii.h"

namespace tended {
namespace {

struct Parts {
  uint64_t epoch = 0;
  absl::string_view upstream;
  absl::string_view revision;
};

Parts Split(absl::string_view version) {
  Parts parts;
  if (size_t colon = version.find(':'); colon != absl::string_view::npos) {
    for (char c : version.substr(0, colon)) {
      if (!absl::ascii_isdigit(c)) break;
      parts.epoch = parts.epoch * 10 + static_cast<uint64_t>(c - '0');
      if (parts.epoch > 1'000'000'000) break;
    }
    version.remove_prefix(colon + 1);
  }
  if (size_t dash = version.rfind('-'); dash != absl::string_view::npos) {
    parts.revision = version.substr(dash + 1);
    version = version.substr(0, dash);
  }
  parts.upstream = version;
  return parts;
}

// dpkg's order for the non-digit parts: '~' first, then the end, then letters, then others.
int Order(char c) {
  if (absl::ascii_isdigit(c)) return 0;
  if (absl::ascii_isalpha(c)) return c;
  if (c == '~') return -1;
  if (c != 0) return c + 256;
  return 0;
}

int ComparePart(absl::string_view a, absl::string_view b) {
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() || j < b.size()) {
    int first_diff = 0;
    while ((i < a.size() && !absl::ascii_isdigit(a[i])) ||
           (j < b.size() && !absl::ascii_isdigit(b[j]))) {
      const int ac = i < a.size() ? Order(a[i]) : 0;
      const int bc = j < b.size() ? Order(b[j]) : 0;
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    while (i < a.size() && absl::ascii_isdigit(a[i]) && j < b.size() && absl::ascii_isdigit(b[j])) {
      if (first_diff == 0) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && absl::ascii_isdigit(a[i])) return 1;
    if (j < b.size() && absl::ascii_isdigit(b[j])) return -1;
    if (first_diff != 0) return first_diff;
  }
  return 0;
}

}  // namespace

int CompareDebianVersions(absl::string_view a, absl::string_view b) {
  const Parts pa = Split(a);
  const Parts pb = Split(b);
  if (pa.epoch != pb.epoch) return pa.epoch < pb.epoch ? -1 : 1;
  if (int upstream = ComparePart(pa.upstream, pb.upstream); upstream != 0) return upstream;
  return ComparePart(pa.revision, pb.revision);
}

}  // namespace tended
