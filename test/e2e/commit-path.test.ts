/**
 * The commit path end to end, against real PostgreSQL QPs with the `ordo`
 * extension and a real sidecar process: capture, adjudication across QPs,
 * SQLSTATEs for every failure, limits, and read-only transactions that never
 * reach the sidecar.
 */
import assert from "node:assert/strict";
import type { Client } from "pg";
import { sqlError, startLocalCluster, type LocalCluster } from "../support/local-cluster";

const oc000 = "ordo: change conflicts with another transaction, please retry (OC000)";

describe("commit path (e2e)", function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let a: Client;
  let b: Client;

  before(async function () {
    cluster = await startLocalCluster({ qps: 2 });
    a = await cluster.client(0);
    b = await cluster.client(1);
    // Before the crossbar, each QP holds its own data: create the table on both.
    for (const c of [a, b]) {
      await c.query("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)");
      await c.query("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g");
    }
  });

  after(async function () {
    await cluster?.stop();
  });

  it("commits captured writes and makes them visible", async function () {
    await a.query("UPDATE accounts SET balance = 150 WHERE id = 1");
    const { rows } = await a.query("SELECT balance FROM accounts WHERE id = 1");
    assert.equal(rows[0].balance, 150);
  });

  it("runs every transaction under repeatable read", async function () {
    const { rows } = await a.query("SHOW transaction_isolation");
    assert.equal(rows[0].transaction_isolation, "repeatable read");
  });

  it("lets exactly one of two concurrent writers of the same row commit (two QPs)", async function () {
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query("SELECT * FROM accounts WHERE id = 2"); // both snapshots taken
    await b.query("SELECT * FROM accounts WHERE id = 2");
    await a.query("UPDATE accounts SET balance = balance + 1 WHERE id = 2");
    await b.query("UPDATE accounts SET balance = balance + 2 WHERE id = 2");
    const first = await sqlError(() => a.query("COMMIT"));
    const second = await sqlError(() => b.query("COMMIT"));
    assert.equal(first, null);
    assert.ok(second, "the second committer must fail");
    assert.equal(second.code, "40001");
    assert.equal(second.message, oc000);
    // The loser's write is not visible.
    const { rows } = await b.query("SELECT balance FROM accounts WHERE id = 2");
    assert.equal(rows[0].balance, 100);
  });

  it("commits both of two concurrent writers of disjoint rows", async function () {
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query("UPDATE accounts SET balance = 1 WHERE id = 3");
    await b.query("UPDATE accounts SET balance = 2 WHERE id = 4");
    assert.equal(await sqlError(() => a.query("COMMIT")), null);
    assert.equal(await sqlError(() => b.query("COMMIT")), null);
  });

  it("sees no conflict with a commit that finished before the snapshot", async function () {
    await a.query("UPDATE accounts SET balance = 7 WHERE id = 5");
    await b.query("BEGIN");
    await b.query("UPDATE accounts SET balance = 8 WHERE id = 5");
    assert.equal(await sqlError(() => b.query("COMMIT")), null);
  });

  it("conflicts with a commit that finished after the snapshot", async function () {
    await b.query("BEGIN");
    await b.query("SELECT count(*) FROM accounts"); // snapshot taken here
    await a.query("UPDATE accounts SET balance = 9 WHERE id = 6");
    await b.query("UPDATE accounts SET balance = 10 WHERE id = 6");
    const err = await sqlError(() => b.query("COMMIT"));
    assert.equal(err?.code, "40001");
  });

  it("lets one of two writers of one row on the same QP commit", async function () {
    const c = await cluster.client(0);
    await a.query("BEGIN");
    await c.query("BEGIN");
    await a.query("SELECT 1 FROM accounts WHERE id = 7");
    await c.query("SELECT 1 FROM accounts WHERE id = 7");
    await a.query("UPDATE accounts SET balance = 1 WHERE id = 7");
    const blocked = c.query("UPDATE accounts SET balance = 2 WHERE id = 7");
    await a.query("COMMIT");
    const err = await sqlError(async () => {
      await blocked;
      await c.query("COMMIT");
    });
    await c.query("ROLLBACK").catch(() => undefined);
    assert.equal(err?.code, "40001");
  });

  it("counts SELECT ... FOR UPDATE rows as writes", async function () {
    await a.query("BEGIN");
    await a.query("SELECT * FROM accounts WHERE id = 8 FOR UPDATE");
    await b.query("UPDATE accounts SET balance = 0 WHERE id = 8");
    await a.query("UPDATE accounts SET balance = 0 WHERE id = 9");
    const err = await sqlError(() => a.query("COMMIT"));
    assert.equal(err?.code, "40001");
  });

  it("captures INSERT ... ON CONFLICT and COPY", async function () {
    await a.query("INSERT INTO accounts VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET balance = 42");
    await a.query("INSERT INTO accounts VALUES (11, 1) ON CONFLICT DO NOTHING");
    const { rows } = await a.query(
      "SELECT id, balance FROM accounts WHERE id IN (1, 11) ORDER BY id",
    );
    assert.deepEqual(rows, [
      { id: 1, balance: 42 },
      { id: 11, balance: 1 },
    ]);
    // An ON CONFLICT upsert on one QP conflicts with a concurrent write on another.
    await b.query("BEGIN");
    await b.query("SELECT 1");
    await a.query("INSERT INTO accounts VALUES (12, 1) ON CONFLICT (id) DO UPDATE SET balance = 5");
    await b.query("INSERT INTO accounts VALUES (12, 2) ON CONFLICT (id) DO UPDATE SET balance = 6");
    assert.equal((await sqlError(() => b.query("COMMIT")))?.code, "40001");
  });

  it("rejects writes to a table without a primary key with 0A000", async function () {
    await a.query("CREATE TABLE nokey (v int)");
    const err = await sqlError(() => a.query("INSERT INTO nokey VALUES (1)"));
    assert.equal(err?.code, "0A000");
    assert.match(err!.message, /^ordo: table "public\.nokey" needs a primary key/);
  });

  it("rejects TRUNCATE with 0A000", async function () {
    const err = await sqlError(() => a.query("TRUNCATE accounts"));
    assert.equal(err?.code, "0A000");
  });

  it("fails a transaction over the row limit with 54000", async function () {
    await a.query("CREATE TABLE big (id int PRIMARY KEY)");
    const err = await sqlError(() =>
      a.query("INSERT INTO big SELECT g FROM generate_series(1, 3001) g"),
    );
    assert.equal(err?.code, "54000");
    assert.match(err!.message, /ordo: transaction exceeds/);
    assert.match(err!.message, /3000/);
    const { rows } = await a.query("SELECT count(*)::int AS n FROM big");
    assert.equal(rows[0].n, 0);
    await a.query("INSERT INTO big SELECT g FROM generate_series(1, 3000) g");
  });

  it("fails a transaction over the byte limit with 54000", async function () {
    await a.query("SET ordo.max_write_bytes = 4096");
    try {
      const err = await sqlError(() =>
        a.query("INSERT INTO big SELECT g FROM generate_series(100001, 100100) g"),
      );
      assert.equal(err?.code, "54000");
      assert.match(err!.message, /^ordo: transaction exceeds the byte limit/);
      assert.match(err!.message, /4096/);
    } finally {
      await a.query("RESET ordo.max_write_bytes");
    }
  });

  it("fails a transaction older than the age limit with 54000 at commit", async function () {
    await a.query("SET ordo.max_transaction_age = 1");
    try {
      await a.query("BEGIN");
      await a.query("UPDATE accounts SET balance = 3 WHERE id = 3");
      await a.query("SELECT pg_sleep(1.2)");
      const err = await sqlError(() => a.query("COMMIT"));
      assert.equal(err?.code, "54000");
      assert.match(err!.message, /^ordo: transaction exceeds the age limit/);
    } finally {
      await a.query("ROLLBACK").catch(() => undefined);
      await a.query("RESET ordo.max_transaction_age");
    }
  });

  it("reports 40003 when the verdict does not come back in time", async function () {
    const pid = cluster.status().sidecar.pid!;
    await a.query("SET ordo.commit_timeout = 300");
    process.kill(pid, "SIGSTOP");
    let err: Awaited<ReturnType<typeof sqlError>>;
    try {
      err = await sqlError(() => a.query("UPDATE accounts SET balance = 77 WHERE id = 9"));
    } finally {
      process.kill(pid, "SIGCONT");
      await a.query("RESET ordo.commit_timeout");
    }
    assert.equal(err?.code, "40003");
    assert.match(err!.message, /^ordo: commit outcome unknown/);
    // The session goes on working once the sidecar answers again.
    await a.query("UPDATE accounts SET balance = 78 WHERE id = 11");
  });

  it("never contacts the sidecar for read-only transactions, and fails writes with 08006 without it", async function () {
    await cluster.stopSidecar();
    try {
      const { rows } = await a.query("SELECT count(*)::int AS n FROM accounts");
      assert.ok(rows[0].n >= 10);
      await a.query("BEGIN; SELECT * FROM accounts; COMMIT");
      const err = await sqlError(() => a.query("UPDATE accounts SET balance = 0 WHERE id = 10"));
      assert.equal(err?.code, "08006");
      assert.match(err!.message, /^ordo: commit service unavailable/);
      const { rows: after } = await a.query("SELECT balance FROM accounts WHERE id = 10");
      assert.equal(after[0].balance, 100, "nothing committed");
    } finally {
      await cluster.startSidecar();
    }
    await a.query("UPDATE accounts SET balance = 0 WHERE id = 10");
  });
});
