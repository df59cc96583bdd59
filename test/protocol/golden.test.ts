/**
 * Golden vectors (test/protocol/vectors.json, docs/protocol.md "Golden
 * vectors"): the contract between the TypeScript codec, the native frame
 * scanner and the C codec of the extension (pgext/test/wire_test).
 *
 * The hex was produced once by the TypeScript encoder and checked against an
 * independent encoder written from the spec (bitwise CRC32C, struct packing).
 * One derivation by hand, `commit_request_basic` (85 bytes):
 *
 *   49000000            length 73 = 8 request_id + 16 txn_id + 8 tau_start + 4 count
 *                       + (1+4+2+4+4) + (1+4+2+4) + (1+4+2+4)
 *   01 01 0000          version 1, type 1 (COMMIT_REQUEST), flags 0
 *   23572f2a            CRC32C of bytes 4..7 and the payload
 *   2a00000000000000    request_id 42
 *   8877665544332211    txn_id: system identifier 0x1122334455667788 (u64 LE)
 *   e803000000000000            then transaction id 1000 (u64 LE)
 *   40222018240a0600    tau_start 1700000000123456 = 0x00060a2418202240
 *   03000000            write_count 3
 *   01 02000000 6b31 04000000 726f7731   insert, key "k1", image "row1"
 *   03 02000000 6b32 00000000            delete, key "k2", no image
 *   06 02000000 6b33 00000000            shared lock, key "k3", no image
 *
 * and `ping`: 08000000 01 04 0000 1de3dfe6 0807060504030201 (nonce
 * 0x0102030405060708 little-endian). Rejected frames reuse the ping payload:
 * bad_crc flips the CRC's first byte; bad_version, bad_flags and unknown_type
 * change one header field and carry the CRC of the changed header (so only
 * the intended check fails); oversize is a header announcing 16 MiB + 1;
 * trailing_bytes is a well-formed frame whose 9-byte payload has one byte too
 * many for a PING, so only the message decoder rejects it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  decodeMessage,
  encodeCommitBody,
  encodeMessage,
  FrameDecoder,
  frame_payload_bytes_max,
  MessageType,
  ProtocolError,
  scanFrames,
} from "../../src/protocol";
import type { Engine, Message, Write, WriteKind } from "../../src/protocol";
import { nativeAvailable } from "../../src/native";

interface Vector {
  name: string;
  type:
    | "COMMIT_REQUEST"
    | "COMMIT_REPLY"
    | "ERROR"
    | "PING"
    | "PONG"
    | "SUBSCRIBE"
    | "RECORD"
    | "WATERMARK"
    | "APPLIED"
    | "WAIT_VISIBLE"
    | "VISIBLE"
    | null;
  fields: Record<string, unknown> | null;
  hex: string;
  error?: "oversize" | "unsupported_version" | "malformed" | "checksum";
  level?: "frame" | "message";
}

const root = path.resolve(__dirname, "..", "..", "..");
const vectors = JSON.parse(
  fs.readFileSync(path.join(root, "test", "protocol", "vectors.json"), "utf8"),
) as Vector[];
const valid = vectors.filter((v) => v.type !== null);
const rejected = vectors.filter((v) => v.type === null);
const wireTest = path.join(root, "pgext", "test", "wire_test");
/** Messages the C side builds in `wire_test encode` (docs/protocol.md). */
const c_encoded = ["ping", "pong", "commit_request_empty", "commit_request_basic"];
/**
 * Replication messages (types 6-11) the C side gains in `wire_test`: checked
 * once this wire_test knows them (an unknown name exits non-zero or prints an
 * error), skipped before that.
 */
const c_encoded_replication = ["subscribe_all", "applied", "wait_visible"];
const replication_types = new Set([
  "SUBSCRIBE",
  "RECORD",
  "WATERMARK",
  "APPLIED",
  "WAIT_VISIBLE",
  "VISIBLE",
]);

const type_numbers = {
  COMMIT_REQUEST: MessageType.CommitRequest,
  COMMIT_REPLY: MessageType.CommitReply,
  ERROR: MessageType.Error,
  PING: MessageType.Ping,
  PONG: MessageType.Pong,
  SUBSCRIBE: MessageType.Subscribe,
  RECORD: MessageType.Record,
  WATERMARK: MessageType.Watermark,
  APPLIED: MessageType.Applied,
  WAIT_VISIBLE: MessageType.WaitVisible,
  VISIBLE: MessageType.Visible,
} as const;

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, "hex"));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const str = (value: unknown): string => {
  assert.equal(typeof value, "string");
  return value as string;
};

function writesOf(f: Record<string, unknown>): Write[] {
  return (f.writes as { kind: number; key: string; image: string }[]).map((w) => ({
    kind: w.kind as WriteKind,
    key: fromHex(w.key),
    image: fromHex(w.image),
  }));
}

/** The vector's fields as a typed message. */
function toMessage(vector: Vector): Message {
  assert.ok(vector.type !== null && vector.fields !== null);
  const f = vector.fields;
  switch (vector.type) {
    case "COMMIT_REQUEST":
      return {
        type: MessageType.CommitRequest,
        requestId: BigInt(str(f.request_id)),
        txnId: fromHex(str(f.txn_id)),
        tauStart: Number(str(f.tau_start)),
        writes: writesOf(f),
      };
    case "SUBSCRIBE":
      return {
        type: MessageType.Subscribe,
        qpId: BigInt(str(f.qp_id)),
        fromTau: Number(str(f.from_tau)),
        ranges: (f.ranges as { lo: string; hi: string }[]).map((r) => ({
          lo: fromHex(r.lo),
          hi: fromHex(r.hi),
        })),
      };
    case "RECORD":
      return {
        type: MessageType.Record,
        tauCommit: Number(str(f.tau_commit)),
        journalId: f.journal_id as number,
        body: encodeCommitBody({
          txnId: fromHex(str(f.txn_id)),
          tauStart: Number(str(f.tau_start)),
          writes: writesOf(f),
        }),
      };
    case "WATERMARK":
      return {
        type: MessageType.Watermark,
        tau: Number(str(f.tau)),
        leaseUntilUs: Number(str(f.lease_until_us)),
      };
    case "APPLIED":
      return { type: MessageType.Applied, tau: Number(str(f.tau)) };
    case "WAIT_VISIBLE":
      return {
        type: MessageType.WaitVisible,
        requestId: BigInt(str(f.request_id)),
        tau: Number(str(f.tau)),
      };
    case "VISIBLE":
      return {
        type: MessageType.Visible,
        requestId: BigInt(str(f.request_id)),
        tau: Number(str(f.tau)),
      };
    case "COMMIT_REPLY":
      return {
        type: MessageType.CommitReply,
        requestId: BigInt(str(f.request_id)),
        verdict: f.verdict as 0,
        flags: f.flags as number,
        tauCommit: Number(str(f.tau_commit)),
        prevTau: Number(str(f.prev_tau)),
        detail: str(f.detail),
      };
    case "ERROR":
      return {
        type: MessageType.Error,
        code: f.code as 1,
        requestId: BigInt(str(f.request_id)),
        message: str(f.message),
      };
    case "PING":
      return { type: MessageType.Ping, nonce: BigInt(str(f.nonce)) };
    case "PONG":
      return { type: MessageType.Pong, nonce: BigInt(str(f.nonce)) };
  }
}

function engines(): Engine[] {
  return nativeAvailable() ? ["js", "native"] : ["js"];
}

/** Runs a whole frame through the streaming decoder and the message decoder. */
function receive(hex: string, engine: Engine): Message | { error: string } {
  const { frames, error } = new FrameDecoder({ engine }).push(fromHex(hex));
  if (error !== null) return { error: error.code };
  if (frames.length !== 1) return { error: "truncated" };
  try {
    return decodeMessage(frames[0].type, frames[0].payload);
  } catch (caught) {
    assert.ok(caught instanceof ProtocolError);
    return { error: caught.code };
  }
}

describe("protocol golden vectors", () => {
  it("lists every name the spec asks for", () => {
    assert.deepStrictEqual(
      vectors.map((v) => v.name),
      [
        "ping",
        "commit_request_empty",
        "commit_request_basic",
        "commit_reply_committed",
        "commit_reply_conflict",
        "error_malformed",
        "pong",
        "subscribe_all",
        "record_basic",
        "watermark",
        "applied",
        "wait_visible",
        "visible",
        "bad_crc",
        "bad_version",
        "bad_flags",
        "unknown_type",
        "oversize",
        "trailing_bytes",
      ],
    );
    const oversize = rejected.find((v) => v.name === "oversize");
    assert.equal(
      Buffer.from(oversize?.hex ?? "", "hex").readUInt32LE(0),
      frame_payload_bytes_max + 1,
    );
  });

  for (const vector of valid) {
    it(`${vector.name}: TypeScript encodes the fields to the hex and decodes the hex to the fields`, () => {
      const message = toMessage(vector);
      assert.equal(toHex(encodeMessage(message)), vector.hex);
      for (const engine of engines()) {
        assert.deepStrictEqual(receive(vector.hex, engine), message);
      }
    });
  }

  for (const vector of rejected) {
    it(`${vector.name}: rejected as ${vector.error} at the ${vector.level} level`, () => {
      for (const engine of engines()) {
        assert.deepStrictEqual(receive(vector.hex, engine), { error: vector.error });
      }
      const scan = scanFrames(fromHex(vector.hex), frame_payload_bytes_max, "js");
      assert.equal(scan.error?.code ?? null, vector.level === "frame" ? vector.error : null);
    });
  }

  it("native and js frame scans agree on every vector, whole and split", function () {
    if (!nativeAvailable() && !process.env.CI) this.skip();
    for (const vector of vectors) {
      const bytes = fromHex(vector.hex);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const part = bytes.subarray(0, cut);
        assert.deepStrictEqual(
          scanFrames(part, frame_payload_bytes_max, "native"),
          scanFrames(part, frame_payload_bytes_max, "js"),
          `${vector.name} cut at ${cut}`,
        );
      }
    }
  });

  describe("C codec (pgext/test/wire_test)", function () {
    before(function () {
      if (!fs.existsSync(wireTest)) {
        // Built by `make -C pgext wire_test` (npm test's set-up does it); CI must check the C side.
        if (process.env.CI) throw new Error(`${wireTest} is not built`);
        console.log(`      (skipped: ${wireTest} is not built; run make -C pgext wire_test)`);
        this.skip();
      }
    });

    const run = (...args: string[]): string =>
      execFileSync(wireTest, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    /** The output, or null where this wire_test does not know the message yet. */
    const tryRun = (...args: string[]): string | null => {
      let out: string;
      try {
        out = run(...args);
      } catch {
        return null;
      }
      return out.length === 0 || /"error"|^error|unknown/i.test(out) ? null : out;
    };

    for (const vector of valid) {
      it(`${vector.name}: C decodes the hex to the fields`, function () {
        const replication = replication_types.has(vector.type!);
        const out = replication ? tryRun("decode", vector.hex) : run("decode", vector.hex);
        if (out === null) this.skip();
        assert.deepStrictEqual(JSON.parse(out), { type: vector.type, ...vector.fields });
      });
    }

    for (const name of c_encoded) {
      it(`${name}: C encodes the same bytes`, () => {
        assert.equal(run("encode", name), valid.find((v) => v.name === name)!.hex);
      });
    }

    for (const name of c_encoded_replication) {
      it(`${name}: C encodes the same bytes (once wire_test knows it)`, function () {
        const out = tryRun("encode", name);
        if (out === null) this.skip();
        assert.equal(out, valid.find((v) => v.name === name)!.hex);
      });
    }

    for (const vector of rejected) {
      it(`${vector.name}: C rejects it as ${vector.error}`, () => {
        assert.deepStrictEqual(JSON.parse(run("decode", vector.hex)), { error: vector.error });
      });
    }
  });

  it("type names in the vectors match the message type numbers", () => {
    for (const vector of valid) {
      assert.equal(fromHex(vector.hex)[5], type_numbers[vector.type!]);
    }
  });
});
