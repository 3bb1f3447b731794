#include "common/utf8.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tended {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// The length of the well-formed sequence starting at `i`, or 0 with `*invalid_length` the
// length of its maximal ill-formed subpart (at least 1).
size_t WellFormedLength(absl::string_view text, size_t i, size_t* invalid_length) {
  const auto byte = [&](size_t at) { return static_cast<uint8_t>(text[at]); };
  const uint8_t lead = byte(i);
  *invalid_length = 1;
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // Bounds of the second byte (Unicode table 3-7).
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) {
      *invalid_length = k;
      return 0;
    }
    const uint8_t b = byte(i + k);
    const bool ok = k == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *invalid_length = k;
      return 0;
    }
  }
  return length;
}

}  // namespace

std::string ToValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t invalid = 0;
    const size_t length = WellFormedLength(text, i, &invalid);
    if (length > 0) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out += kReplacement;
      i += invalid;
    }
  }
  return out;
}

std::string ClipUtf8(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(text.substr(0, cut), " ...(", text.size(), " bytes)");
}

}  // namespace tended
