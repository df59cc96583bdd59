// CRC32C (Castagnoli): the checksum of every ordo frame and journal record.
//
// The hardware path uses SSE4.2's crc32 instruction when the CPU has it,
// chosen once at run time; otherwise a slicing-by-8 table does the same work.
// Both give the standard CRC32C ("123456789" -> 0xE3069283). `seed` is a
// previous result, so a checksum can run across several chunks:
// crc32c(a ++ b, 0) == crc32c(b, crc32c(a, 0)).
#ifndef ORDO_NATIVE_CRC32C_H_
#define ORDO_NATIVE_CRC32C_H_

#include <cstdint>

#include "span.h"

namespace ordo {

// The fastest implementation this CPU supports.
uint32_t Crc32c(ByteView data, uint32_t seed);

// Slicing-by-8 table implementation, portable.
uint32_t Crc32cTable(ByteView data, uint32_t seed);

// True when Crc32c uses the SSE4.2 instruction.
bool Crc32cHardwareAvailable();

}  // namespace ordo

#endif  // ORDO_NATIVE_CRC32C_H_
