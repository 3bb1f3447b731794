#include "common/host_port.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tended {

std::string HostPortProblem(absl::string_view text, absl::string_view example, PortZero port_zero) {
  const std::string shape = absl::StrCat("expected host:port, e.g. ", example);
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return shape;
  absl::string_view host = text.substr(0, colon);
  absl::string_view port = text.substr(colon + 1);
  if (host.empty()) return absl::StrCat("missing host; ", shape);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return absl::StrCat("bad IPv6 host; ", shape);
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(c) && c != ':' && c != '.') {
        return absl::StrCat("bad IPv6 host; ", shape);
      }
    }
  } else {
    for (char c : host) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') {
        return absl::StrCat("bad host \"", host, "\"; ", shape);
      }
    }
  }
  const uint32_t lowest = port_zero == PortZero::kAllow ? 0 : 1;
  uint32_t port_number = 0;
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) digits = digits && absl::ascii_isdigit(c);
  if (!digits || !absl::SimpleAtoi(port, &port_number) || port_number < lowest ||
      port_number > 65535) {
    return absl::StrCat("port must be a number from ", lowest, " to 65535, got \"", port, "\"");
  }
  return "";
}

}  // namespace tended
