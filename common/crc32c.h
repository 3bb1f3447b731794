// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), which Debian's Abseil
// 20220623 lacks: the checksum of every state journal record and snapshot. Uses the SSE4.2
// crc32 instruction when the CPU has it and slicing-by-8 tables otherwise; both give the
// same values.
#ifndef TENDED_COMMON_CRC32C_H_
#define TENDED_COMMON_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace tended {

// The CRC-32C of `data`: Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(absl::string_view data);

// The CRC-32C of A+B from crc = Crc32c(A) and B, so that pieces can be checksummed in turn.
uint32_t Crc32cExtend(uint32_t crc, absl::string_view data);

namespace crc32c_internal {

// The two implementations behind Crc32cExtend, for the test that compares them.
uint32_t ExtendPortable(uint32_t crc, absl::string_view data);
// Falls back to ExtendPortable when the CPU lacks SSE4.2.
uint32_t ExtendHardware(uint32_t crc, absl::string_view data);
bool HardwareAvailable();

}  // namespace crc32c_internal

}  // namespace tended

#endif  // TENDED_COMMON_CRC32C_H_
