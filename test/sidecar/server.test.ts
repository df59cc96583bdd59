/**
 * Tests for src/sidecar/server.ts and start.ts: a sidecar started in-process
 * on a real Unix socket in a temp directory, with a real fsynced journal.
 * Covers commits and conflicts over the wire, rejected frames closing only
 * their own connection, socket permissions, connection limits, and a restart
 * on the same directory that remembers earlier commits.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import {
  encodeFrame,
  ErrorCode,
  frame_payload_bytes_max,
  MessageType,
  Verdict,
} from "../../src/protocol";
import type { CommitReply, ErrorMessage } from "../../src/protocol";
import { realClock, SidecarServerError, startSidecar } from "../../src/sidecar";
import type { RunningSidecar, StartSidecarOptions } from "../../src/sidecar";
import { commitRequest, del, ins, share, upd } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

const clock = realClock();

function committed(reply: CommitReply | ErrorMessage): CommitReply {
  assert.equal(
    reply.type,
    MessageType.CommitReply,
    `expected a commit reply, got ${JSON.stringify(reply, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`,
  );
  assert.equal(reply.verdict, Verdict.Committed, reply.detail);
  return reply;
}

describe("sidecar over a Unix socket", function () {
  let dir: string;
  let running: RunningSidecar | null;
  let clients: SidecarClient[];

  const options = (extra: Partial<StartSidecarOptions> = {}): StartSidecarOptions => ({
    dataDir: path.join(dir, "data"),
    socketPath: path.join(dir, "run", "sidecar.sock"),
    ...extra,
  });
  const connect = async (): Promise<SidecarClient> => {
    assert.ok(running !== null);
    const client = await SidecarClient.connect(running.socketPath);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    dir = makeTempDir("sidecar");
    clients = [];
    running = await startSidecar(options());
  });

  afterEach(async () => {
    for (const client of clients) client.close();
    await running?.close();
    running = null;
    removeTempDir(dir);
  });

  it("commits and replies with tau_commit after the journal has it", async () => {
    const client = await connect();
    const start = clock.nowMicros();
    const reply = committed(await client.commit(commitRequest(start, [ins("users/1", "alice")])));
    assert.ok(reply.tauCommit > start);
    const entries = [];
    for await (const entry of running!.journal.readFrom(0)) entries.push(entry);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].tauCommit, reply.tauCommit);
  });

  it("lets exactly one of two conflicting transactions commit", async () => {
    const a = await connect();
    const b = await connect();
    const start = clock.nowMicros();
    const ra = commitRequest(start, [upd("accounts/7")]);
    const rb = commitRequest(start, [upd("accounts/7"), ins("log/1")]);
    a.send(ra);
    b.send(rb);
    const replies = [await a.replyTo(ra.requestId), await b.replyTo(rb.requestId)] as CommitReply[];
    assert.deepStrictEqual(replies.map((r) => r.verdict).sort(), [
      Verdict.Committed,
      Verdict.Conflict,
    ]);
    assert.match(replies.find((r) => r.verdict === Verdict.Conflict)!.detail, /key/);
  });

  it("lets shared locks share and makes a write after them conflict", async () => {
    const client = await connect();
    const start = clock.nowMicros();
    committed(await client.commit(commitRequest(start, [share("parent/1"), ins("child/1")])));
    committed(await client.commit(commitRequest(start, [share("parent/1"), ins("child/2")])));
    const reply = (await client.commit(commitRequest(start, [del("parent/1")]))) as CommitReply;
    assert.equal(reply.verdict, Verdict.Conflict);
  });

  it("answers PING with PONG", async () => {
    const client = await connect();
    client.send({ type: MessageType.Ping, nonce: 0x0102030405060708n });
    assert.deepStrictEqual(await client.next(), {
      type: MessageType.Pong,
      nonce: 0x0102030405060708n,
    });
  });

  const badFrames: [string, () => Uint8Array, number][] = [
    [
      "a malformed payload",
      () => encodeFrame(MessageType.CommitRequest, new Uint8Array([1, 2, 3])),
      ErrorCode.Malformed,
    ],
    [
      "a bad checksum",
      () => {
        const frame = encodeFrame(MessageType.Ping, new Uint8Array(8));
        frame[8] ^= 0xff;
        return frame;
      },
      ErrorCode.Checksum,
    ],
    [
      "an oversize frame",
      () => {
        const header = Buffer.alloc(12);
        header.writeUInt32LE(frame_payload_bytes_max + 1, 0);
        header[4] = 1;
        header[5] = MessageType.CommitRequest;
        return header;
      },
      ErrorCode.Oversize,
    ],
    [
      "an unsupported version",
      () => {
        const frame = encodeFrame(MessageType.Ping, new Uint8Array(8));
        frame[4] = 2;
        return frame;
      },
      ErrorCode.UnsupportedVersion,
    ],
    [
      "a reply sent the wrong way",
      () =>
        encodeFrame(
          MessageType.CommitReply,
          new Uint8Array([...new Uint8Array(9), ...new Uint8Array(8), 0, 0, 0, 0]),
        ),
      ErrorCode.Malformed,
    ],
  ];

  for (const [what, frame, code] of badFrames) {
    it(`answers ${what} with one ERROR, closes that connection, and keeps serving others`, async () => {
      const bad = await connect();
      const good = await connect();
      const start = clock.nowMicros();
      committed(await good.commit(commitRequest(start, [upd("before")])));
      bad.sendRaw(frame());
      const error = (await bad.next()) as ErrorMessage;
      assert.equal(error.type, MessageType.Error);
      assert.equal(error.code, code);
      assert.equal(error.requestId, 0n);
      assert.equal(await bad.next(), null, "nothing after the ERROR; the connection closes");
      await bad.waitClosed();
      committed(await good.commit(commitRequest(start, [upd("after")])));
    });
  }

  it("never acts on a frame after a rejected one in the same chunk", async () => {
    const bad = await connect();
    const start = clock.nowMicros();
    const request = commitRequest(start, [upd("ghost")]);
    const broken = encodeFrame(MessageType.Ping, new Uint8Array(8));
    broken[8] ^= 0xff;
    const { encodeMessage } = await import("../../src/protocol");
    bad.sendRaw(Buffer.concat([broken, encodeMessage(request)]));
    assert.equal(((await bad.next()) as ErrorMessage).code, ErrorCode.Checksum);
    await bad.waitClosed();
    const good = await connect();
    committed(await good.commit(commitRequest(start, [upd("ghost")])));
  });

  it("honours a smaller configured frame bound", async () => {
    await running!.close();
    running = await startSidecar(options({ maxFrameBytes: 64 }));
    const client = await connect();
    client.send(commitRequest(clock.nowMicros(), [ins("k", "x".repeat(100))]));
    const reply = (await client.next()) as ErrorMessage;
    assert.equal(reply.type, MessageType.Error);
    assert.equal(reply.code, ErrorCode.Oversize);
    assert.equal(reply.requestId, 0n);
  });

  it("creates the socket 0600 in a 0700 directory", () => {
    assert.equal(fs.statSync(running!.socketPath).mode & 0o777, 0o600);
    assert.ok(fs.statSync(running!.socketPath).isSocket());
    assert.equal(fs.statSync(path.dirname(running!.socketPath)).mode & 0o777, 0o700);
  });

  it("refuses a socket directory with looser permissions", async () => {
    const loose = path.join(dir, "loose");
    fs.mkdirSync(loose, { mode: 0o755 });
    fs.chmodSync(loose, 0o755);
    await assert.rejects(
      startSidecar(
        options({ dataDir: path.join(dir, "data2"), socketPath: path.join(loose, "s.sock") }),
      ),
      (error: unknown) =>
        error instanceof SidecarServerError && error.code === "socket_dir_insecure",
    );
  });

  it("refuses to take over a socket another sidecar listens on", async () => {
    await assert.rejects(
      startSidecar(options({ dataDir: path.join(dir, "data2") })),
      (error: unknown) => error instanceof SidecarServerError && error.code === "socket_in_use",
    );
  });

  it("refuses connections past the limit with ERROR unavailable", async () => {
    await running!.close();
    running = await startSidecar(options({ maxConnections: 2 }));
    const first = await connect();
    const second = await connect();
    // The server has seen both once they answer a ping.
    for (const client of [first, second]) {
      client.send({ type: MessageType.Ping, nonce: 1n });
      await client.next();
    }
    const third = await connect();
    const refused = (await third.next()) as ErrorMessage;
    assert.equal(refused.code, ErrorCode.Unavailable);
    assert.match(refused.message, /connections_max 2/);
    await third.waitClosed();
    committed(await first.commit(commitRequest(clock.nowMicros(), [upd("k")])));
  });

  it("serves many commits in flight on one connection, past its in-flight bound", async () => {
    await running!.close();
    running = await startSidecar(options({ maxInFlightPerConnection: 4 }));
    const client = await connect();
    const start = clock.nowMicros();
    const requests = Array.from({ length: 50 }, (_, i) => commitRequest(start, [upd(`row/${i}`)]));
    for (const request of requests) client.send(request);
    const replies = await Promise.all(requests.map((r) => client.replyTo(r.requestId)));
    const taus = replies.map((r) => committed(r).tauCommit);
    assert.equal(new Set(taus).size, taus.length, "every commit has its own tau");
  });

  it("remembers earlier commits after a restart on the same directory", async () => {
    const client = await connect();
    const start = clock.nowMicros();
    const first = committed(await client.commit(commitRequest(start, [upd("orders/1")])));
    client.close();
    await running!.close();
    assert.ok(!fs.existsSync(running!.socketPath), "close removes the socket");

    running = await startSidecar(options());
    assert.equal(running.recovery.entries, 1);
    assert.equal(running.replayed, 1);
    assert.equal(running.ready.journal.lastTau, first.tauCommit);
    const again = await connect();
    const stale = (await again.commit(commitRequest(start, [upd("orders/1")]))) as CommitReply;
    assert.equal(stale.verdict, Verdict.Conflict);
    assert.match(stale.detail, new RegExp(`tau_commit ${first.tauCommit}`));
    assert.equal(stale.tauCommit, first.tauCommit, "the conflict names the commit it lost to");
    committed(await again.commit(commitRequest(first.tauCommit, [upd("orders/1")])));
  });

  it("keeps half-written frames waiting instead of rejecting them", async () => {
    const client = await connect();
    const { encodeMessage } = await import("../../src/protocol");
    const bytes = encodeMessage(
      commitRequest(clock.nowMicros(), [upd("slow")], { requestId: 77n }),
    );
    for (const byte of bytes) {
      client.sendRaw(Uint8Array.of(byte));
      await new Promise((resolve) => setImmediate(resolve));
    }
    committed(await client.replyTo(77n));
  });

  it("does not leave a stray connection behind a raw socket that just hangs up", async () => {
    const socket = net.connect(running!.socketPath);
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.end(Uint8Array.of(1, 2, 3));
    await new Promise((resolve) => socket.once("close", resolve));
    const client = await connect();
    committed(await client.commit(commitRequest(clock.nowMicros(), [upd("k")])));
  });
});
