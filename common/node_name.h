// Node names as Kubernetes accepts them: a DNS-1123 subdomain. The agent checks its
// configured name with this and the coordinator every name it is sent, so both agree.
#ifndef TENDED_COMMON_NODE_NAME_H_
#define TENDED_COMMON_NODE_NAME_H_

#include "absl/strings/string_view.h"

namespace tended {

// At most 253 characters: dot-separated, non-empty labels of lower-case letters, digits and
// '-', each starting and ending with a letter or a digit.
bool IsDns1123Subdomain(absl::string_view name);

}  // namespace tended

#endif  // TENDED_COMMON_NODE_NAME_H_
