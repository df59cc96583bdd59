/**
 * Bad input and security on a real local cluster: a flood of connections to
 * the sidecar's socket is refused past its limit while an existing session
 * keeps committing; the socket is 0600 in a 0700 directory; every QP listens
 * on loopback only; functions of the extension that change cluster state
 * are not executable by a plain role, read-only ones are. (An oversize write
 * set getting 54000 is in test/e2e/commit-path.test.ts.)
 */
import { connections_max_default } from "../../src/sidecar/server";
import { strict as assert } from "node:assert";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import { Client } from "pg";
import { processAlive } from "../../src/cluster/system";
import { sidecarPid } from "../../src/cluster/sidecar-process";
import { startLocalCluster, type LocalCluster } from "../support/local-cluster";

const flood_connections = 2000;
/** Waves go on past flood_connections, up to this, until the sidecar itself refused one. */
const flood_connections_max = 6000;
const flood_wave = 50;
const flood_wave_pause_ms = 10;
const flood_settle_ms_max = 20_000;

/** How one flood connection ended: refused (closed by the sidecar after a reply) or still open. */
function floodConnect(
  socketPath: string,
): Promise<{ socket: net.Socket; refused: Promise<boolean> }> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    let gotData = false;
    const refused = new Promise<boolean>((done) => {
      socket.on("data", () => (gotData = true));
      socket.on("close", () => done(gotData));
      socket.on("error", () => undefined);
    });
    socket.once("connect", () => resolve({ socket, refused }));
    socket.once("error", () => resolve({ socket, refused }));
  });
}

function nonLoopbackAddress(): string | null {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return null;
}

describe("security", function () {
  this.timeout(120_000);
  let cluster: LocalCluster;

  before(async () => {
    cluster = await startLocalCluster({ qps: 1 });
  });

  after(async () => {
    await cluster?.stop();
  });

  it("keeps the sidecar socket 0600 in a 0700 directory", () => {
    const socket = fs.statSync(cluster.layout.sidecarSocket);
    assert.ok(socket.isSocket());
    assert.equal(socket.mode & 0o777, 0o600, `socket mode ${(socket.mode & 0o777).toString(8)}`);
    const dir = fs.statSync(cluster.layout.runDir);
    assert.equal(dir.mode & 0o777, 0o700, `directory mode ${(dir.mode & 0o777).toString(8)}`);
  });

  it("listens on loopback only", async function () {
    const qp = cluster.status().qps[0]!;
    const c = await cluster.client(0);
    const { rows } = await c.query("SHOW listen_addresses");
    assert.equal(rows[0]!.listen_addresses, "127.0.0.1");
    const address = nonLoopbackAddress();
    if (address === null) return; // no other address on this machine
    const outside = new Client({
      host: address,
      port: qp.port,
      user: "postgres",
      database: "postgres",
      connectionTimeoutMillis: 3000,
    });
    outside.on("error", () => undefined);
    await assert.rejects(outside.connect());
    await outside.end().catch(() => undefined);
  });

  it("lets a plain role call the read-only functions; capture_existing refuses old tables", async () => {
    const c = await cluster.client(0);
    await c.query("CREATE TABLE IF NOT EXISTS security_t (k int PRIMARY KEY, v text)");
    await c.query("DROP ROLE IF EXISTS ordo_plain");
    await c.query("CREATE ROLE ordo_plain LOGIN");
    await c.query("SET ROLE ordo_plain");
    try {
      const version = await c.query("SELECT ordo.version() AS v");
      assert.match(String(version.rows[0]!.v), /\d/);
      await c.query("SELECT * FROM ordo.status()");
      // Executable by PUBLIC on purpose (sql/ordo--0.1.sql), but never for a table
      // that was not created in the current transaction.
      const err = await c.query("SELECT ordo.capture_existing('security_t'::regclass)").then(
        () => null,
        (e: { code?: string }) => e,
      );
      assert.ok(err !== null, "capture_existing of an existing table must fail");
    } finally {
      await c.query("RESET ROLE");
    }
  });

  it("refuses attach_capture and attach_missing to a plain role (42501)", async () => {
    const c = await cluster.client(0);
    await c.query("DROP ROLE IF EXISTS ordo_plain2");
    await c.query("CREATE ROLE ordo_plain2 LOGIN");
    await c.query("SET ROLE ordo_plain2");
    try {
      for (const call of [
        "SELECT ordo.attach_capture('security_t'::regclass)",
        "SELECT ordo.attach_missing()",
      ]) {
        const err = await c.query(call).then(
          () => null,
          (e: { code?: string }) => e,
        );
        assert.equal(err?.code, "42501", `${call}: got ${err?.code ?? "success"}`);
      }
    } finally {
      await c.query("RESET ROLE");
    }
  });

  it("captures a table a plain role creates, through the owner-run event trigger", async () => {
    const c = await cluster.client(0);
    await c.query("DROP ROLE IF EXISTS ordo_plain3");
    await c.query("CREATE ROLE ordo_plain3 LOGIN");
    await c.query("CREATE SCHEMA plain3 AUTHORIZATION ordo_plain3");
    await c.query("SET ROLE ordo_plain3");
    try {
      await c.query("CREATE TABLE plain3.t (id int PRIMARY KEY)");
      await c.query("INSERT INTO plain3.t VALUES (1)");
    } finally {
      await c.query("RESET ROLE");
    }
    const { rows } = await c.query("SELECT ordo.is_captured('plain3.t'::regclass) AS captured");
    assert.equal(rows[0].captured, true);
  });

  it("refuses a flood of sidecar connections past the limit, keeps committing and stays up", async () => {
    const c = await cluster.client(0);
    await c.query("CREATE TABLE IF NOT EXISTS flood_t (k int PRIMARY KEY)");
    await c.query("INSERT INTO flood_t VALUES (0)"); // the session's sidecar connection is open
    const pid = sidecarPid(cluster.layout.sidecarPidFile);
    assert.ok(pid !== null);
    // Waves small enough for the listen backlog, so connections reach the
    // sidecar (a full backlog makes the kernel refuse them instead, without
    // a reply). On a loaded machine the sidecar may accept slowly enough that
    // the backlog still overflows, so waves go on until it refused one itself.
    const flood: Awaited<ReturnType<typeof floodConnect>>[] = [];
    let closed = 0;
    let replied = 0;
    while (
      flood.length < flood_connections ||
      (replied === 0 && flood.length < flood_connections_max)
    ) {
      const wave = await Promise.all(
        Array.from({ length: flood_wave }, () => floodConnect(cluster.layout.sidecarSocket)),
      );
      for (const f of wave) {
        void f.refused.then((gotReply) => {
          closed++;
          if (gotReply) replied++;
        });
      }
      flood.push(...wave);
      await new Promise((r) => setTimeout(r, flood_wave_pause_ms));
    }
    try {
      // The existing session keeps committing while the flood holds the sidecar's slots.
      for (let k = 1; k <= 20; k++) await c.query("INSERT INTO flood_t VALUES ($1)", [k]);
      // Past the limit every connection is closed: by the sidecar with an ERROR
      // frame, or by the kernel when the listen backlog overflowed. At most
      // connections_max_default stay open, whichever ones the sidecar accepted first.
      const deadline = Date.now() + flood_settle_ms_max;
      while (flood.length - closed > connections_max_default && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(
        flood.length - closed <= connections_max_default,
        `${flood.length - closed} flood connections still open`,
      );
      assert.ok(replied > 0, "the sidecar answers a refused connection before closing it");
    } finally {
      for (const f of flood) f.socket.destroy();
    }
    assert.ok(processAlive(pid));
    await c.query("INSERT INTO flood_t VALUES (100)");
    const { rows } = await c.query("SELECT count(*)::int AS n FROM flood_t");
    assert.equal(rows[0]!.n, 22);
  });
});
