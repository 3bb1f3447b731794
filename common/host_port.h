// Validation of "host:port" and "[v6]:port" addresses in configuration files.
#ifndef TENDED_COMMON_HOST_PORT_H_
#define TENDED_COMMON_HOST_PORT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tended {

enum class PortZero { kRefuse, kAllow };

// Empty when `text` is a well-formed address; otherwise what is wrong with it, mentioning
// `example` as a good one. Port 0 ("pick a free port") only where `port_zero` allows it,
// as for a listening address.
std::string HostPortProblem(absl::string_view text, absl::string_view example,
                            PortZero port_zero = PortZero::kRefuse);

}  // namespace tended

#endif  // TENDED_COMMON_HOST_PORT_H_
