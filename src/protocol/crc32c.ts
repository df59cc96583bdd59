/**
 * CRC32C (Castagnoli), the checksum of every ordo frame (docs/protocol.md) and
 * journal record. `crc32cJs` is the TypeScript twin of the native SSE4.2 /
 * slicing-by-8 implementation (native/crc32c.cc) and the reference the
 * property tests compare it with; `crc32c` picks the native one when the
 * addon is loaded.
 *
 * `seed` is a previous result, so a checksum can run over several chunks:
 * crc32c(a ++ b) === crc32cJs(b, crc32cJs(a)).
 */
import { crc32cNative, nativeAvailable } from "../native";

const crc32c_poly_reflected = 0x82f63b78;
const crc32c_slices = 8;
const u32_max = 0xffffffff;

/** Slicing-by-8 tables, slice s at [s * 256, s * 256 + 256); int32 values. */
const tables: Int32Array = makeTables();

function makeTables(): Int32Array {
  const t = new Int32Array(crc32c_slices * 256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? (crc >>> 1) ^ crc32c_poly_reflected : crc >>> 1;
    }
    t[n] = crc;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < crc32c_slices; s++) {
      const prev = t[(s - 1) * 256 + n];
      t[s * 256 + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  if (t[1] >>> 0 !== 0xf26b8303) throw new Error("crc32c table generation is wrong");
  return t;
}

/**
 * CRC32C of `data[start, end)`, continuing from `seed`. No checks: internal
 * callers (the frame scanner) guarantee 0 <= start <= end <= data.length.
 * Exported so the scanner can checksum in place without subarray views.
 */
export function crc32cRange(data: Uint8Array, start: number, end: number, seed: number): number {
  const t = tables;
  let crc = ~seed;
  let i = start;
  const end8 = start + ((end - start) & ~7);
  while (i < end8) {
    const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    const hi = data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
    crc =
      t[1792 + (lo & 0xff)] ^
      t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^
      t[1024 + (lo >>> 24)] ^
      t[768 + (hi & 0xff)] ^
      t[512 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^
      t[hi >>> 24];
    i += 8;
  }
  while (i < end) {
    crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}

function checkArgs(data: unknown, seed: unknown): void {
  if (!(data instanceof Uint8Array)) throw new TypeError("data must be a Uint8Array or Buffer");
  if (typeof seed !== "number") throw new TypeError("seed must be a number");
  if (!Number.isInteger(seed) || seed < 0 || seed > u32_max) {
    throw new RangeError(`seed must be an integer in [0, ${u32_max}], got ${seed}`);
  }
}

/** CRC32C of `data` in TypeScript, continuing from `seed` (0 to start). */
export function crc32cJs(data: Uint8Array, seed = 0): number {
  checkArgs(data, seed);
  return crc32cRange(data, 0, data.length, seed);
}

/** CRC32C of `data`: native when the addon is loaded, else the twin. */
export function crc32c(data: Uint8Array, seed = 0): number {
  return nativeAvailable() ? crc32cNative(data, seed) : crc32cJs(data, seed);
}
