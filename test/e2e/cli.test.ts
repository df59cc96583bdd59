/**
 * The `ordo` command line as a user runs it: `up --detach` prints one JSON
 * line with the QP URLs, `status` adds process ids, the QPs accept SQL, and
 * `down` stops every process; `qp-progress` shows what the sidecar saved of
 * each QP's progress, and `forget-qp` drops one, only while the cluster is
 * down.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "pg";

const ordo = path.resolve(__dirname, "..", "..", "..", "bin", "ordo.js");

function run(...args: string[]): string {
  return execFileSync(process.execPath, [ordo, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("ordo up / status / down (e2e)", function () {
  this.timeout(120_000);
  let dir: string;

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-cli-"));
  });

  after(function () {
    try {
      run("down", "--dir", dir);
    } catch {
      // already down
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs through a link named ordo, as npx and node_modules/.bin run it", function () {
    const link = path.join(dir, "ordo");
    fs.symlinkSync(ordo, link);
    const help = execFileSync(process.execPath, [link, "--help"], { encoding: "utf8" });
    assert.match(help, /Usage: ordo/);
    assert.throws(
      () =>
        execFileSync(process.execPath, [link, "status", "--dir", path.join(dir, "none")], {
          stdio: ["ignore", "pipe", "pipe"],
        }),
      /is not an ordo cluster directory/,
    );
    fs.rmSync(link);
  });

  it("starts a cluster, reports it, and stops it", async function () {
    const up = JSON.parse(run("up", "--dir", dir, "--qps", "2", "--detach").trim());
    assert.equal(up.qps.length, 2);
    assert.match(up.qps[0].url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    assert.ok(up.sidecar.socket.endsWith("sidecar.sock"));

    const status = JSON.parse(run("status", "--dir", dir).trim());
    assert.deepEqual(
      status.qps.map((q: { url: string }) => q.url),
      up.qps.map((q: { url: string }) => q.url),
    );
    const pids: number[] = [status.sidecar.pid, ...status.qps.map((q: { pid: number }) => q.pid)];
    for (const pid of pids) assert.ok(Number.isInteger(pid) && alive(pid), `pid ${pid} runs`);

    const client = new Client({ connectionString: up.qps[1].url });
    await client.connect();
    try {
      await client.query("CREATE TABLE t (id int PRIMARY KEY)");
      await client.query("INSERT INTO t VALUES (1)");
      const { rows } = await client.query(
        "SELECT extversion FROM pg_extension WHERE extname = 'ordo'",
      );
      assert.equal(rows.length, 1);
    } finally {
      await client.end();
    }
    // Replication is on by default: the other QP has the table and the row.
    const other = new Client({ connectionString: up.qps[0].url });
    await other.connect();
    try {
      const { rows } = await other.query("SELECT id FROM t");
      assert.deepEqual(rows, [{ id: 1 }]);
    } finally {
      await other.end();
    }
    const ids: string[] = [];
    for (const qp of up.qps as { url: string }[]) {
      const c = new Client({ connectionString: qp.url });
      await c.connect();
      try {
        const { rows } = await c.query(
          "SELECT system_identifier::text AS id FROM pg_control_system()",
        );
        ids.push(rows[0].id);
      } finally {
        await c.end();
      }
    }
    assert.deepEqual(
      status.qps.map((q: { systemIdentifier: string }) => q.systemIdentifier),
      ids,
    );
    assert.throws(() => run("forget-qp", ids[0]!, "--dir", dir), /the sidecar is running/);

    // A second `up` on a running cluster is harmless and reports the same URLs.
    const again = JSON.parse(run("up", "--dir", dir, "--detach").trim());
    assert.deepEqual(again.qps, up.qps);

    run("down", "--dir", dir);
    const after = JSON.parse(run("status", "--dir", dir).trim());
    assert.equal(after.sidecar.pid, null);
    assert.ok(after.qps.every((q: { pid: number | null }) => q.pid === null));
    for (const pid of pids) assert.ok(!alive(pid), `pid ${pid} stopped`);

    // The sidecar saved both QPs' progress as it stopped; retention holds records for each.
    const progress = (): { system_identifier: string; applied_tau: number }[] =>
      JSON.parse(run("qp-progress", "--dir", dir).trim()).qps;
    const saved = progress();
    assert.deepEqual(saved.map((q) => q.system_identifier).sort(), [...ids].sort());
    assert.ok(saved.every((q) => Number.isSafeInteger(q.applied_tau) && q.applied_tau > 0));
    run("forget-qp", ids[0]!, "--dir", dir);
    assert.deepEqual(
      progress().map((q) => q.system_identifier),
      [ids[1]],
    );
    assert.throws(() => run("forget-qp", ids[0]!, "--dir", dir), /no QP/);
  });

  it("refuses a QP count that differs from the initialized one", function () {
    assert.throws(() => run("up", "--dir", dir, "--qps", "3", "--detach"), /initialized with 2 QP/);
  });
});
