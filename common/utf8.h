// Text read from files the node's software writes (the reboot-required package list, the
// kernel release) goes into protobuf string fields, which must be valid UTF-8: the
// coordinator cannot parse a report that is not. Invalid bytes become U+FFFD.
#ifndef TENDED_COMMON_UTF8_H_
#define TENDED_COMMON_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tended {

// `text` with every ill-formed sequence (stray continuation bytes, truncated or overlong
// sequences, surrogates, code points above U+10FFFF) replaced by U+FFFD, one per maximal
// ill-formed subpart as Unicode recommends. Valid text is returned unchanged.
std::string ToValidUtf8(absl::string_view text);

// At most `max_bytes` of `text` (valid UTF-8), cut before a character boundary and marked
// with a trailing " ...(N bytes)" giving the full size, for text from outside (an alert
// name, a reason) that goes into events, reasons and notifications. Shorter text is
// returned unchanged.
std::string ClipUtf8(absl::string_view text, size_t max_bytes);

}  // namespace tended

#endif  // TENDED_COMMON_UTF8_H_
