/**
 * Tests for src/protocol/crc32c.ts: the standard CRC32C vectors, chaining
 * across chunks, and that the native implementation (when the addon is built)
 * agrees with the TypeScript twin on random inputs.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c, crc32cJs } from "../../src/protocol/crc32c";
import { crc32cNative, nativeAvailable } from "../../src/native";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

const known_vectors: [string, Uint8Array, number][] = [
  ["123456789", ascii("123456789"), 0xe3069283],
  ["empty", new Uint8Array(0), 0],
  ["32 zero bytes", new Uint8Array(32), 0x8a9136aa],
  ["32 0xFF bytes", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["32 ascending bytes", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
];

const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** Random bytes viewed at a random offset inside a larger buffer. */
const bytesAtOffset = fc
  .tuple(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.nat(16), fc.nat(16))
  .map(([inner, before, after]) => {
    const outer = new Uint8Array(before + inner.length + after).fill(0xa5);
    outer.set(inner, before);
    return outer.subarray(before, before + inner.length);
  });

describe("crc32c", () => {
  for (const [name, data, expected] of known_vectors) {
    it(`crc32cJs matches the known vector: ${name}`, () => {
      assert.equal(crc32cJs(data), expected);
    });
    it(`crc32c matches the known vector: ${name}`, () => {
      assert.equal(crc32c(data), expected);
    });
  }

  it("returns unsigned 32-bit integers", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), u32, (data, seed) => {
        const crc = crc32cJs(data, seed);
        return Number.isInteger(crc) && crc >= 0 && crc <= 0xffffffff;
      }),
    );
  });

  it("chains: crc32c(a ++ b) === crc32cJs(b, crc32cJs(a))", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const whole = new Uint8Array(a.length + b.length);
        whole.set(a);
        whole.set(b, a.length);
        assert.equal(crc32cJs(b, crc32cJs(a)), crc32cJs(whole));
        assert.equal(crc32c(b, crc32c(a)), crc32c(whole));
      }),
    );
  });

  it("reads only the view, not the rest of its ArrayBuffer", () => {
    const outer = new Uint8Array(20).fill(0x5a);
    outer.set(ascii("123456789"), 5);
    assert.equal(crc32cJs(outer.subarray(5, 14)), 0xe3069283);
    assert.equal(crc32c(outer.subarray(5, 14)), 0xe3069283);
  });

  it("rejects bad arguments", () => {
    assert.throws(() => crc32cJs("123" as unknown as Uint8Array), TypeError);
    assert.throws(() => crc32cJs(new Uint16Array(2) as unknown as Uint8Array), TypeError);
    assert.throws(() => crc32cJs(new Uint8Array(1), -1), RangeError);
    assert.throws(() => crc32cJs(new Uint8Array(1), 2 ** 32), RangeError);
    assert.throws(() => crc32cJs(new Uint8Array(1), 0.5), RangeError);
    assert.throws(() => crc32cJs(new Uint8Array(1), "1" as unknown as number), TypeError);
  });

  describe("native agrees with the twin", function () {
    before(function () {
      if (!nativeAvailable()) this.skip(); // test/native fails loudly instead
    });

    it("on random bytes, seeds and view offsets", () => {
      fc.assert(
        fc.property(bytesAtOffset, u32, (data, seed) => {
          assert.equal(crc32cNative(data, seed), crc32cJs(data, seed));
        }),
        { numRuns: 300 },
      );
    });

    it("on every length 0..64 (head and tail of the 8-byte loop)", () => {
      const data = Uint8Array.from({ length: 80 }, (_, i) => (i * 151 + 7) & 0xff);
      for (let start = 0; start < 8; start++) {
        for (let length = 0; length <= 64; length++) {
          const view = data.subarray(start, start + length);
          assert.equal(crc32cNative(view, 0x12345678), crc32cJs(view, 0x12345678));
        }
      }
    });
  });
});
