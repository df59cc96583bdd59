/**
 * Tests for src/sidecar/main.ts, the process entry: a real `node
 * dist/src/sidecar/main.js` process prints its ready line, commits over its
 * socket, survives SIGKILL right after an acknowledged commit (the commit is
 * in the journal after restart, and still conflicts), stops cleanly on
 * SIGTERM, and refuses bad arguments.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { FsDisk } from "../../src/io/fs-disk";
import { SystemClock } from "../../src/io/system-clock";
import { Journal } from "../../src/journal";
import { decodeCommitBody, MessageType, Verdict } from "../../src/protocol";
import type { CommitReply } from "../../src/protocol";
import type { ReadyEvent } from "../../src/sidecar";
import { realClock } from "../../src/sidecar";
import { bytes, commitRequest, upd } from "../support/commits";
import { SidecarClient } from "../support/sidecar-client";
import { makeTempDir, removeTempDir } from "../support/temp-dir";

const entry = path.resolve(__dirname, "..", "..", "src", "sidecar", "main.js");
const clock = realClock();

interface Spawned {
  child: ChildProcess;
  ready: ReadyEvent;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnSidecar(args: string[]): Promise<Spawned> {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split("\n")[0];
      if (stdout.includes("\n"))
        resolve({ child, ready: JSON.parse(line) as ReadyEvent, stderr: () => stderr, exited });
    });
    void exited.then(({ code }) =>
      reject(new Error(`sidecar exited ${code} before ready: ${stderr}`)),
    );
  });
}

describe("sidecar process (main.js)", function () {
  let dir: string;
  let dataDir: string;
  let socket: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    dir = makeTempDir("sidecar-main");
    dataDir = path.join(dir, "data");
    socket = path.join(dir, "run", "sidecar.sock");
  });

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    removeTempDir(dir);
  });

  /** Starts a sidecar on `socketPath` that is expected to exit: its code, stdout and last log line. */
  const failedStart = async (
    socketPath: string,
  ): Promise<{
    code: unknown;
    stdout: string;
    line: { event: string; error: { code: string; message: string } };
  }> => {
    const child = spawn(process.execPath, [entry, "--data-dir", dataDir, "--socket", socketPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let stderr = "";
    let stdout = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    return { code, stdout, line: JSON.parse(stderr.trim().split("\n").pop()!) };
  };

  const start = async (): Promise<Spawned> => {
    const spawned = await spawnSidecar(["--data-dir", dataDir, "--socket", socket]);
    children.push(spawned.child);
    return spawned;
  };

  it("prints one ready line, and keeps an acknowledged commit through SIGKILL", async () => {
    const first = await start();
    assert.deepStrictEqual(Object.keys(first.ready), [
      "event",
      "pid",
      "socket",
      "journal",
      "journals",
    ]);
    assert.equal(first.ready.event, "ready");
    assert.equal(first.ready.pid, first.child.pid);
    assert.equal(first.ready.socket, socket);
    assert.deepStrictEqual(first.ready.journal, { lastTau: 0, recovered: 0, truncatedBytes: 0 });

    const tauStart = clock.nowMicros();
    const client = await SidecarClient.connect(socket);
    const request = commitRequest(tauStart, [upd("accounts/1", "balance=10")]);
    const reply = (await client.commit(request)) as CommitReply;
    assert.equal(reply.type, MessageType.CommitReply);
    assert.equal(reply.verdict, Verdict.Committed);
    first.child.kill("SIGKILL");
    assert.deepStrictEqual(await first.exited, { code: null, signal: "SIGKILL" });
    client.close();

    const second = await start();
    assert.equal(second.ready.journal.recovered, 1);
    assert.equal(second.ready.journal.lastTau, reply.tauCommit);
    const again = await SidecarClient.connect(socket);
    const stale = (await again.commit(commitRequest(tauStart, [upd("accounts/1")]))) as CommitReply;
    assert.equal(stale.verdict, Verdict.Conflict, "the recovered commit still conflicts");
    const resend = (await again.commit({ ...request, requestId: 99n })) as CommitReply;
    assert.equal(
      resend.verdict,
      Verdict.Committed,
      "a resend of the durable commit is not a failure",
    );
    assert.equal(resend.tauCommit, reply.tauCommit);
    again.close();

    second.child.kill("SIGTERM");
    assert.deepStrictEqual(await second.exited, { code: 0, signal: null });
    assert.ok(!fs.existsSync(socket), "SIGTERM removes the socket");
    assert.match(second.stderr(), /"event":"stopped"/);

    const journal = await Journal.open({
      dir: path.join(dataDir, "journal", "0"),
      disk: new FsDisk(),
      clock: new SystemClock(),
    });
    try {
      const entries = [];
      for await (const e of journal.readFrom(0)) entries.push(e);
      assert.equal(entries.length, 1);
      assert.equal(entries[0].tauCommit, reply.tauCommit);
      assert.deepStrictEqual(entries[0].txnId, request.txnId);
      const body = decodeCommitBody(entries[0].body);
      assert.deepStrictEqual(body.writes[0].key, bytes("accounts/1"));
    } finally {
      await journal.close();
    }
  });

  it("logs the stats of a window on SIGUSR2 and starts a new one", async () => {
    interface StatsLine {
      window?: boolean;
      commitLatency: { count: number };
      journalSync: { count: number; p50Us: number };
    }
    const spawned = await start();
    const client = await SidecarClient.connect(socket);
    for (let i = 0; i < 3; i++) {
      const reply = (await client.commit(
        commitRequest(clock.nowMicros(), [upd(`window/${i}`)]),
      )) as CommitReply;
      assert.equal(reply.verdict, Verdict.Committed);
    }
    const statsLines = (): StatsLine[] =>
      spawned
        .stderr()
        .split("\n")
        .filter((line) => line.includes('"event":"stats"'))
        .map((line) => JSON.parse(line));
    const signal = async (): Promise<StatsLine> => {
      const before = statsLines().length;
      spawned.child.kill("SIGUSR2");
      for (let i = 0; i < 200 && statsLines().length === before; i++)
        await new Promise((r) => setTimeout(r, 10));
      return statsLines().at(-1)!;
    };
    const first = await signal();
    assert.equal(first.window, true);
    assert.equal(first.commitLatency.count, 3);
    // One after another: a group, a write and an fsync each.
    assert.equal(first.journalSync.count, 3);
    assert.ok(first.journalSync.p50Us > 0, "an fsync takes time");
    await client.commit(commitRequest(clock.nowMicros(), [upd("window/3")]));
    const second = await signal();
    assert.equal(second.commitLatency.count, 1, "a new window");
    assert.equal(second.journalSync.count, 1);
    client.close();
    spawned.child.kill("SIGTERM");
    await spawned.exited;
    assert.equal(statsLines().at(-1)!.commitLatency.count, 0, "the last window, at stop");
  });

  it("refuses a second sidecar on the same data directory and leaves its journal alone", async () => {
    const first = await start();
    const client = await SidecarClient.connect(socket);
    const reply = (await client.commit(
      commitRequest(clock.nowMicros(), [upd("lock/1")]),
    )) as CommitReply;
    assert.equal(reply.verdict, Verdict.Committed);
    const segment = path.join(dataDir, "journal", "0", "00000000000000000001.seg");
    const before = fs.readFileSync(segment);

    // Another socket, so only the data directory is shared.
    const { code, line } = await failedStart(path.join(dir, "run2", "s.sock"));
    assert.equal(code, 1);
    assert.equal(line.event, "start_failed");
    assert.equal(line.error.code, "data_dir_in_use");
    assert.ok(line.error.message.includes(`process ${first.child.pid}`), line.error.message);
    assert.deepEqual(fs.readFileSync(segment), before, "the journal was not opened");

    // The first still serves, and after it stops the directory is free.
    const again = (await client.commit(
      commitRequest(clock.nowMicros(), [upd("lock/2")]),
    )) as CommitReply;
    assert.equal(again.verdict, Verdict.Committed);
    client.close();
    first.child.kill("SIGTERM");
    await first.exited;
    assert.equal(fs.existsSync(path.join(dataDir, "sidecar.lock")), false);
    const second = await start();
    assert.equal(second.ready.journal.recovered, 2);
    second.child.kill("SIGTERM");
    await second.exited;
  });

  it("exits non-zero with a JSON log line on a bad start", async () => {
    fs.mkdirSync(path.join(dir, "open"), { mode: 0o777 });
    fs.chmodSync(path.join(dir, "open"), 0o777);
    const { code, stdout, line } = await failedStart(path.join(dir, "open", "s.sock"));
    assert.equal(code, 1);
    assert.equal(stdout, "", "no ready line");
    assert.equal(line.event, "start_failed");
    assert.equal(line.error.code, "socket_dir_insecure");
  });

  it("hands the socket and its directory to --socket-owner", async function () {
    const postgres = fs
      .readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .map((line) => line.split(":"))
      .find((fields) => fields[0] === "postgres");
    if (process.getuid?.() !== 0 || postgres === undefined) this.skip();
    const spawned = await spawnSidecar([
      "--data-dir",
      dataDir,
      "--socket",
      socket,
      "--socket-owner",
      "postgres",
    ]);
    children.push(spawned.child);
    for (const target of [socket, path.dirname(socket)]) {
      assert.equal(fs.statSync(target).uid, Number(postgres![2]), target);
    }
    assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
    spawned.child.kill("SIGTERM");
    assert.equal((await spawned.exited).code, 0);
  });

  it("requires --data-dir and --socket", async () => {
    const child = spawn(process.execPath, [entry, "--socket", socket], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /--data-dir/);
  });
});
