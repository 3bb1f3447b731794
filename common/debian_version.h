// Debian version ordering (epoch:upstream-revision, with '~' sorting before everything), as
// dpkg --compare-versions does, for code that has no libapt-pkg (the coordinator).
#ifndef TENDED_COMMON_DEBIAN_VERSION_H_
#define TENDED_COMMON_DEBIAN_VERSION_H_

#include "absl/strings/string_view.h"

namespace tended {

// <0, 0 or >0 as `a` sorts before, equal to or after `b`.
int CompareDebianVersions(absl::string_view a, absl::string_view b);

}  // namespace tended

#endif  // TENDED_COMMON_DEBIAN_VERSION_H_
