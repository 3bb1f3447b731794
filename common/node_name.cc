#include "common/node_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace tended {

bool IsDns1123Subdomain(absl::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return false;
    for (char c : label) {
      if (!absl::ascii_isdigit(c) && !absl::ascii_islower(c) && c != '-') return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
  }
  return true;
}

}  // namespace tended
