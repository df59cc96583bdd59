/**
 * Tests for src/protocol/messages.ts: every message type round-trips through
 * encode and decode (property-based), and every malformed payload the
 * decoders must refuse is refused with ProtocolError("malformed").
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeCommitBody,
  decodeMessage,
  encodeCommitBody,
  encodeMessage,
  encodePayload,
  FrameDecoder,
  MessageType,
  ProtocolError,
} from "../../src/protocol";
import type { Message, Write, WriteKind } from "../../src/protocol";

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const tau = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
const txnId = fc.uint8Array({ minLength: 16, maxLength: 16 });
const bytesArb = (minLength: number) => fc.uint8Array({ minLength, maxLength: 40 });

const writeArb: fc.Arbitrary<Write> = fc
  .record({
    kind: fc.integer({ min: 1, max: 6 }),
    key: bytesArb(1),
    image: bytesArb(0),
  })
  .map(({ kind, key, image }) => ({
    kind: kind as WriteKind,
    key,
    image: kind === 1 || kind === 2 ? image : new Uint8Array(0),
  }));

const messageArb: fc.Arbitrary<Message> = fc
  .oneof(
    fc.record({
      type: fc.constant(MessageType.CommitRequest),
      requestId: u64,
      txnId,
      tauStart: tau,
      writes: fc.array(writeArb, { maxLength: 8 }),
    }),
    fc.record({
      type: fc.constant(MessageType.CommitReply),
      requestId: u64,
      verdict: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
      flags: fc.constantFrom(0, 1),
      tauCommit: tau,
      prevTau: tau,
      detail: fc.string({ unit: "grapheme", maxLength: 30 }),
    }),
    fc.record({
      type: fc.constant(MessageType.Error),
      code: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const, 5 as const, 6 as const),
      requestId: u64,
      message: fc.string({ unit: "grapheme", maxLength: 30 }),
    }),
    fc.record({ type: fc.constant(MessageType.Ping), nonce: u64 }),
    fc.record({ type: fc.constant(MessageType.Pong), nonce: u64 }),
  )
  .map((message) => ({ ...message }) as Message); // fast-check records have no prototype

function expectMalformed(type: number, payload: Uint8Array, pattern?: RegExp): void {
  assert.throws(
    () => decodeMessage(type, payload),
    (error: unknown) =>
      error instanceof ProtocolError &&
      error.code === "malformed" &&
      (pattern === undefined || pattern.test(error.message)),
  );
}

/** Little-endian payload builder for hand-made (and broken) payloads. */
function payload(
  ...parts: (number[] | Uint8Array | { u32: number } | { u64: bigint })[]
): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (part instanceof Uint8Array || Array.isArray(part)) out.push(...part);
    else if ("u32" in part) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(part.u32);
      out.push(...b);
    } else {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(part.u64);
      out.push(...b);
    }
  }
  return Uint8Array.from(out);
}

const txn16 = new Uint8Array(16).fill(7);
const tau8 = { u64: 1_700_000_000_000_000n };

describe("protocol messages", () => {
  it("round-trips every message type through payload and frame", () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        assert.deepStrictEqual(decodeMessage(message.type, encodePayload(message)), message);
        const decoder = new FrameDecoder({ engine: "js" });
        const { frames, error } = decoder.push(encodeMessage(message));
        assert.equal(error, null);
        assert.equal(frames.length, 1);
        assert.deepStrictEqual(decodeMessage(frames[0].type, frames[0].payload), message);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips commit bodies, and a body is the request minus its request id", () => {
    fc.assert(
      fc.property(
        u64,
        txnId,
        tau,
        fc.array(writeArb, { maxLength: 8 }),
        (requestId, id, start, writes) => {
          const body = { txnId: id, tauStart: start, writes };
          const encoded = encodeCommitBody(body);
          assert.deepStrictEqual(decodeCommitBody(encoded), body);
          const request = encodePayload({ type: MessageType.CommitRequest, requestId, ...body });
          assert.deepStrictEqual(request.subarray(8), encoded);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects every strict prefix and every extension of a valid payload", () => {
    fc.assert(
      fc.property(messageArb, fc.uint8Array({ minLength: 1, maxLength: 4 }), (message, extra) => {
        const bytes = encodePayload(message);
        for (let cut = 0; cut < bytes.length; cut++) {
          expectMalformed(message.type, bytes.subarray(0, cut));
        }
        const longer = new Uint8Array(bytes.length + extra.length);
        longer.set(bytes);
        longer.set(extra, bytes.length);
        expectMalformed(message.type, longer, /trailing/);
      }),
      { numRuns: 100 },
    );
  });

  it("rejects a write count that cannot fit, before allocating for it", () => {
    expectMalformed(1, payload({ u64: 1n }, txn16, tau8, { u32: 0xffffffff }), /does not fit/);
  });

  it("rejects lengths that run past the end", () => {
    expectMalformed(
      1,
      payload({ u64: 1n }, txn16, tau8, { u32: 1 }, [1], { u32: 1000 }, [1, 2, 3, 4, 5, 6]),
    );
    expectMalformed(2, payload({ u64: 1n }, [0], tau8, { u32: 5 }, [0x61]));
    expectMalformed(3, payload([1, 0], { u64: 0n }, { u32: 0xffffffff }));
  });

  it("rejects kinds outside 1..7", () => {
    for (const kind of [0, 8, 255]) {
      expectMalformed(
        1,
        payload(
          { u64: 1n },
          txn16,
          tau8,
          { u32: 1 },
          [kind],
          { u32: 1 },
          [0x6b],
          { u32: 0 },
          [0, 0, 0, 0],
        ),
        /kind/,
      );
    }
  });

  it("rejects an empty key", () => {
    expectMalformed(
      1,
      payload({ u64: 1n }, txn16, tau8, { u32: 1 }, [3], { u32: 0 }, { u32: 0 }, [0]),
      /empty key/,
    );
  });

  it("rejects an image on kinds other than insert and update", () => {
    for (const kind of [3, 4, 5, 6]) {
      expectMalformed(
        1,
        payload(
          { u64: 1n },
          txn16,
          tau8,
          { u32: 1 },
          [kind],
          { u32: 1 },
          [0x6b],
          { u32: 1 },
          [0x72],
        ),
        /image/,
      );
    }
    for (const kind of [1, 2]) {
      const request = decodeMessage(
        1,
        payload(
          { u64: 1n },
          txn16,
          tau8,
          { u32: 1 },
          [kind],
          { u32: 1 },
          [0x6b],
          { u32: 1 },
          [0x72],
        ),
      );
      assert.equal(request.type, MessageType.CommitRequest);
    }
  });

  it("rejects strings that are not UTF-8", () => {
    expectMalformed(
      2,
      payload({ u64: 1n }, [1, 0], { u64: 0n }, { u64: 0n }, { u32: 2 }, [0xc3, 0x28]),
      /UTF-8/,
    );
    expectMalformed(3, payload([1, 0], { u64: 0n }, { u32: 1 }, [0xff]), /UTF-8/);
  });

  it("rejects unknown verdicts, error codes and message types", () => {
    expectMalformed(
      2,
      payload({ u64: 1n }, [4, 0], { u64: 0n }, { u64: 0n }, { u32: 0 }),
      /verdict/,
    );
    expectMalformed(2, payload({ u64: 1n }, [0, 2], { u64: 0n }, { u64: 0n }, { u32: 0 }), /flags/);
    expectMalformed(3, payload([0, 0], { u64: 0n }, { u32: 0 }), /error code/);
    expectMalformed(3, payload([7, 0], { u64: 0n }, { u32: 0 }), /error code/);
    expectMalformed(0, new Uint8Array(8), /unknown message type/);
    expectMalformed(12, new Uint8Array(8), /unknown message type/);
  });

  it("rejects taus outside the safe integer range", () => {
    expectMalformed(1, payload({ u64: 1n }, txn16, { u64: 1n << 60n }, { u32: 0 }), /safe integer/);
    expectMalformed(
      2,
      payload({ u64: 1n }, [0, 0], { u64: (1n << 64n) - (1n << 60n) }, { u64: 0n }, { u32: 0 }),
      /safe/,
    );
    expectMalformed(
      2,
      payload({ u64: 1n }, [0, 0], { u64: 1n }, { u64: 1n << 60n }, { u32: 0 }),
      /prev_tau/,
    );
  });

  it("refuses to encode what it could not decode", () => {
    const base = {
      type: MessageType.CommitRequest,
      requestId: 1n,
      txnId: txn16,
      tauStart: 1,
    } as const;
    const invalid = (message: Message) =>
      assert.throws(
        () => encodePayload(message),
        (error: unknown) => error instanceof ProtocolError && error.code === "invalid_message",
      );
    invalid({
      ...base,
      writes: [{ kind: 3, key: new Uint8Array([1]), image: new Uint8Array([1]) }],
    });
    invalid({ ...base, writes: [{ kind: 1, key: new Uint8Array(0), image: new Uint8Array(0) }] });
    invalid({
      ...base,
      writes: [{ kind: 9 as WriteKind, key: new Uint8Array([1]), image: new Uint8Array(0) }],
    });
    invalid({ ...base, txnId: new Uint8Array(15), writes: [] });
    invalid({ ...base, tauStart: 2 ** 60, writes: [] });
    invalid({ ...base, requestId: -1n, writes: [] });
    invalid({ type: MessageType.Ping, nonce: 1n << 64n });
    const reply = {
      type: MessageType.CommitReply,
      requestId: 1n,
      verdict: 0 as const,
      flags: 0,
      tauCommit: 0,
      prevTau: 0,
      detail: "",
    };
    invalid({ ...reply, verdict: 4 as 0 });
    invalid({ ...reply, flags: 2 });
    invalid({ ...reply, prevTau: 2 ** 60 });
  });

  it("decodes copies that do not alias the input buffer", () => {
    const request = {
      type: MessageType.CommitRequest,
      requestId: 5n,
      txnId: txn16,
      tauStart: 10,
      writes: [{ kind: 1 as const, key: new Uint8Array([1, 2]), image: new Uint8Array([3]) }],
    };
    const bytes = encodePayload(request);
    const decoded = decodeMessage(1, bytes);
    bytes.fill(0);
    assert.deepStrictEqual(decoded, request);
  });
});
