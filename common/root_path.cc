#include "common/root_path.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tended {

RootPath::RootPath(std::string root) : root_(std::move(root)) {
  while (!root_.empty() && root_.back() == '/') root_.pop_back();
}

std::string RootPath::Resolve(absl::string_view path) const {
  while (absl::ConsumePrefix(&path, "/")) {
  }
  return absl::StrCat(root_, "/", path);
}

}  // namespace tended
