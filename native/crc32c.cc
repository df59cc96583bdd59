// CRC32C implementations: SSE4.2 hardware path and a slicing-by-8 table
// fallback (see crc32c.h). Both are checked against the TypeScript twin in
// test/protocol/crc32c.test.ts.
#include "crc32c.h"

#include <array>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ORDO_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace ordo {
namespace {

constexpr uint32_t crc32c_poly_reflected = 0x82F63B78u;
constexpr size_t crc32c_slices = 8;

using Crc32cTables = std::array<std::array<uint32_t, 256>, crc32c_slices>;

constexpr Crc32cTables MakeTables() {
  Crc32cTables tables{};
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t crc = n;
    for (int bit = 0; bit < 8; bit++) {
      crc = (crc & 1u) != 0 ? (crc >> 1) ^ crc32c_poly_reflected : crc >> 1;
    }
    tables[0][n] = crc;
  }
  for (uint32_t n = 0; n < 256; n++) {
    for (size_t slice = 1; slice < crc32c_slices; slice++) {
      const uint32_t prev = tables[slice - 1][n];
      tables[slice][n] = (prev >> 8) ^ tables[0][prev & 0xFFu];
    }
  }
  return tables;
}

constexpr Crc32cTables crc32c_tables = MakeTables();
static_assert(crc32c_tables[0][1] == 0xF26B8303u, "CRC32C table generation");

#ifdef ORDO_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(ByteView data, uint32_t seed) {
  uint64_t crc = ~seed;
  size_t offset = 0;
  const size_t size = data.size();
  for (; offset + 8 <= size; offset += 8) {
    crc = _mm_crc32_u64(crc, data.u64(offset));
  }
  uint32_t crc32 = static_cast<uint32_t>(crc);
  for (; offset < size; offset++) {
    crc32 = _mm_crc32_u8(crc32, data.at(offset));
  }
  return ~crc32;
}

bool DetectSse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") != 0;
}
#endif

}  // namespace

uint32_t Crc32cTable(ByteView data, uint32_t seed) {
  const auto& t = crc32c_tables;
  uint32_t crc = ~seed;
  size_t offset = 0;
  const size_t size = data.size();
  for (; offset + 8 <= size; offset += 8) {
    const uint32_t lo = crc ^ data.u32le(offset);
    const uint32_t hi = data.u32le(offset + 4);
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
  }
  for (; offset < size; offset++) {
    crc = (crc >> 8) ^ t[0][(crc ^ data.at(offset)) & 0xFFu];
  }
  return ~crc;
}

bool Crc32cHardwareAvailable() {
#ifdef ORDO_CRC32C_X86
  static const bool available = DetectSse42();
  return available;
#else
  return false;
#endif
}

uint32_t Crc32c(ByteView data, uint32_t seed) {
#ifdef ORDO_CRC32C_X86
  if (Crc32cHardwareAvailable()) return Crc32cSse42(data, seed);
#endif
  return Crc32cTable(data, seed);
}

}  // namespace ordo
