/**
 * Active-active replication end to end (docs/replication.md): real
 * PostgreSQL QPs with the applier, a real sidecar with several journals and
 * the crossbar. Every QP sees one history: reads after an acknowledged
 * commit see it on any QP, concurrent writers of a row on two QPs conflict,
 * a bank workload across three QPs keeps its total, and QPs and the sidecar
 * survive kill -9 without losing an acknowledged commit or diverging.
 */
import assert from "node:assert/strict";
import type { Client } from "pg";
import { sqlError, startLocalCluster, type LocalCluster } from "../support/local-cluster";

const account_count = 100;
const initial_balance = 1000;
const bank_total = account_count * initial_balance;
const bank_clients = 12;
const bank_seconds = 30;

/** Retries `fn` while it fails with a retryable SQLSTATE (as an application would). */
async function retrying<T>(fn: () => Promise<T>, attempts = 100): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (i >= attempts || (code !== "40001" && code !== "40P01")) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A table's contents as one hash, to compare QPs. */
async function checksum(client: Client, table: string): Promise<string> {
  const { rows } = await client.query(
    `SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') AS sum FROM ${table} t`,
  );
  return rows[0].sum as string;
}

async function transfer(client: Client): Promise<void> {
  const from = 1 + Math.floor(Math.random() * account_count);
  const to = 1 + ((from + Math.floor(Math.random() * (account_count - 1))) % account_count);
  const amount = 1 + Math.floor(Math.random() * 10);
  await client.query("BEGIN");
  try {
    await client.query("UPDATE bank SET balance = balance - $2 WHERE id = $1", [from, amount]);
    await client.query("UPDATE bank SET balance = balance + $2 WHERE id = $1", [to, amount]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

describe("replication across QPs (e2e)", function () {
  this.timeout(240_000);
  let cluster: LocalCluster;
  let a: Client;
  let b: Client;
  let c: Client;

  before(async function () {
    cluster = await startLocalCluster({ qps: 3, journals: 4, replication: true });
    a = await cluster.client(0);
    b = await cluster.client(1);
    c = await cluster.client(2);
    await a.query("CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL)");
    await a.query(
      "CREATE TABLE bank (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance > -1000000))",
    );
    for (let from = 1; from <= account_count; from += 50) {
      await a.query("INSERT INTO bank SELECT g, $3 FROM generate_series($1::int, $2::int) g", [
        from,
        Math.min(account_count, from + 49),
        initial_balance,
      ]);
    }
  });

  after(async function () {
    await cluster?.stop();
  });

  it("shows a commit acknowledged on one QP in the next transaction on every other", async function () {
    for (let i = 0; i < 50; i++) {
      await a.query("INSERT INTO kv VALUES ($1, $2)", [i, `from-a-${i}`]);
      for (const other of [b, c]) {
        const { rows } = await other.query("SELECT v FROM kv WHERE k = $1", [i]);
        assert.equal(rows[0]?.v, `from-a-${i}`, `row ${i} visible right after its commit`);
      }
    }
    // DDL reached every QP too (the table exists and has the same rows).
    assert.equal(await checksum(b, "kv"), await checksum(a, "kv"));
  });

  it("lets exactly one of two concurrent writers of a row on two QPs commit", async function () {
    await a.query("INSERT INTO kv VALUES (1000, 'start')");
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query("SELECT v FROM kv WHERE k = 1000");
    await b.query("SELECT v FROM kv WHERE k = 1000");
    await a.query("UPDATE kv SET v = 'a' WHERE k = 1000");
    await b.query("UPDATE kv SET v = 'b' WHERE k = 1000");
    const results = await Promise.all([
      sqlError(() => a.query("COMMIT")),
      sqlError(() => b.query("COMMIT")),
    ]);
    const failed = results.filter((r) => r !== null);
    assert.equal(failed.length, 1, `exactly one fails: ${JSON.stringify(results)}`);
    assert.equal(failed[0]!.code, "40001");
    const winner = results[0] === null ? "a" : "b";
    for (const client of [a, b, c]) {
      const { rows } = await client.query("SELECT v FROM kv WHERE k = 1000");
      assert.equal(rows[0].v, winner);
    }
  });

  it("starts the retry of a transaction that lost a conflict once its QP applied the commit it lost to", async function () {
    // B's applier is stopped: A's commit reaches QP c but not B. B's writer
    // then loses at its COMMIT (the adjudicator finds A's commit); its retry
    // must not take a snapshot before B applied A's commit, or it would lose
    // to it again. A block is retried from its BEGIN, which waits; a single
    // statement's snapshot comes before any hook, so its abort waits instead.
    const { rows: applier } = await b.query(
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'ordo applier'",
    );
    assert.equal(applier.length, 1, "one applier");
    const pid = applier[0].pid as number;
    const read = async (k: number): Promise<string> =>
      (await b.query("SELECT v FROM kv WHERE k = $1", [k])).rows[0].v as string;

    /** A updates row k; B runs `lose` while its applier is stopped, then `retry`; the applier
     * runs again 400 ms after `lose` started. */
    const loseWhileBehind = async (
      k: number,
      lose: () => Promise<unknown>,
      retry: () => Promise<string>,
    ) => {
      await a.query("INSERT INTO kv VALUES ($1, 'start')", [k]);
      process.kill(pid, "SIGSTOP");
      let resumedAt = 0;
      const resume = (): void => {
        if (resumedAt !== 0) return;
        resumedAt = Date.now();
        process.kill(pid, "SIGCONT");
      };
      // A's client hears "committed" only once B applied it too: awaited at the end.
      const aCommit = a.query("UPDATE kv SET v = 'a' WHERE k = $1", [k]);
      try {
        await waitFor("A's commit on QP c", async () => {
          const { rows } = await c.query("SELECT v FROM kv WHERE k = $1", [k]);
          return rows[0].v === "a";
        });
        const timer = setTimeout(resume, 400);
        const error = await sqlError(lose);
        // Queued behind the end of the failed command: done once its abort is.
        await b.query("ROLLBACK").catch(() => undefined);
        const abortedAt = Date.now();
        const seen = await retry();
        clearTimeout(timer);
        return { error, abortedAt, retriedAt: Date.now(), resumedAt, seen };
      } finally {
        resume();
        await aCommit;
      }
    };

    // A block: COMMIT fails at once; the retry's BEGIN waits for B's applier.
    const block = await loseWhileBehind(
      3000,
      async () => {
        await b.query("BEGIN");
        await b.query("UPDATE kv SET v = 'b' WHERE k = 3000");
        await b.query("COMMIT");
      },
      async () => {
        await b.query("BEGIN");
        const seen = await read(3000);
        await b.query("COMMIT");
        return seen;
      },
    );
    assert.equal(block.error?.code, "40001");
    assert.match(block.error!.message, /OC000/);
    // Its abort holds the session up no longer than it takes: a client that waits for the
    // end of the failed command (pgbench does) goes on with its other sessions meanwhile.
    assert.ok(block.abortedAt < block.resumedAt, "the block's abort did not wait");
    assert.ok(block.resumedAt > 0 && block.retriedAt >= block.resumedAt, "the retry waited");
    assert.equal(block.seen, "a", "the retry's snapshot holds the commit it lost to");

    // One statement outside a block, or several in one query string (a block that began
    // without BEGIN, retried without one): its abort waits, so its 40001 comes once B
    // applied A's commit.
    for (const [k, statement] of [
      [3001, "UPDATE kv SET v = 'b' WHERE k = 3001"],
      [3003, "UPDATE kv SET v = 'b' WHERE k = 3003; SELECT 1"],
    ] as const) {
      const lost = await loseWhileBehind(
        k,
        () => b.query(statement),
        () => read(k),
      );
      assert.equal(lost.error?.code, "40001", statement);
      assert.ok(
        lost.resumedAt > 0 && lost.retriedAt >= lost.resumedAt,
        "the session's next statement waited for the abort",
      );
      assert.equal(lost.seen, "a", "the retry's snapshot holds the commit it lost to");
    }

    // Doomed instead: B's writer holds the row A's commit needs; B's applier
    // dooms it, and the retry's BEGIN waits until the applier got past it.
    await a.query("INSERT INTO kv VALUES (3002, 'start')");
    await b.query("BEGIN");
    await b.query("UPDATE kv SET v = 'b' WHERE k = 3002");
    const aDooms = a.query("UPDATE kv SET v = 'a' WHERE k = 3002");
    let doomed: Awaited<ReturnType<typeof sqlError>> = null;
    for (const deadline = Date.now() + 10_000; doomed === null && Date.now() < deadline;) {
      doomed = await sqlError(() => b.query("SELECT 1"));
    }
    await b.query("ROLLBACK");
    assert.equal(doomed?.code, "40001");
    await b.query("BEGIN");
    assert.equal(await read(3002), "a", "the retry's snapshot holds the commit that doomed it");
    await b.query("COMMIT");
    await aDooms;
  });

  it("lets a transaction write a row whose last commit its snapshot sees, though it began before it", async function () {
    // tau_start follows what the snapshot saw, not when BEGIN ran: a commit
    // stamped between BEGIN and the first query is no conflict.
    await a.query("INSERT INTO kv VALUES (2000, 'start')");
    const a2 = await cluster.client(0);
    try {
      for (const [writer, label] of [
        [a2, "same QP"],
        [b, "other QP"],
      ] as const) {
        await a.query("BEGIN");
        await writer.query("UPDATE kv SET v = $1 WHERE k = 2000", [`by ${label}`]);
        await a.query("UPDATE kv SET v = v || ' then a' WHERE k = 2000");
        await a.query("COMMIT");
        const { rows } = await c.query("SELECT v FROM kv WHERE k = 2000");
        assert.equal(rows[0].v, `by ${label} then a`, label);
      }
    } finally {
      await a2.end();
    }
  });

  it("refuses a write to a table whose schema changed after the snapshot (OC001)", async function () {
    await a.query("CREATE TABLE evolving (id int PRIMARY KEY, v int)");
    await a.query("INSERT INTO evolving VALUES (1, 1)");
    await waitFor("evolving on QP 1", async () => {
      const { rows } = await b.query("SELECT count(*)::int AS n FROM evolving");
      return rows[0].n === 1;
    });
    await b.query("BEGIN");
    await b.query("SELECT 1"); // b's snapshot: before the schema change
    await a.query("ALTER TABLE evolving ADD COLUMN note text");
    await waitFor("the new column on QP 1", async () => {
      const { rows } = await c.query(
        "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'evolving'",
      );
      return rows[0].n === 3;
    });
    const err = await sqlError(async () => {
      await b.query("UPDATE evolving SET v = 2 WHERE id = 1");
      await b.query("COMMIT");
    });
    await b.query("ROLLBACK").catch(() => undefined);
    assert.equal(err?.code, "40001");
    assert.match(err!.message, /schema has been updated by another transaction.*\(OC001\)/);
    // A transaction that starts after the change writes the table fine, on every QP.
    await b.query("UPDATE evolving SET v = 3, note = 'after' WHERE id = 1");
    const { rows } = await c.query("SELECT v, note FROM evolving WHERE id = 1");
    assert.deepEqual(rows, [{ v: 3, note: "after" }]);
  });

  it("refuses a schema change that ran without rows another QP committed before it (OC001)", async function () {
    await a.query("CREATE TABLE checked (id int PRIMARY KEY, v int NOT NULL)");
    await a.query("CREATE TABLE gate (id int PRIMARY KEY, n int NOT NULL)");
    await a.query("INSERT INTO gate VALUES (1, 0)");
    for (const client of [b, c]) {
      await waitFor("gate on every QP", async () => {
        const { rows } = await client.query("SELECT count(*)::int AS n FROM gate");
        return rows[0].n === 1;
      });
    }
    // QP 0's applier stops at a commit of gate's row while a local transaction
    // holds that row (for the grace, made long here).
    await a.query("ALTER SYSTEM SET ordo.apply_lock_grace = '20s'");
    await a.query("SELECT pg_reload_conf()");
    await new Promise((r) => setTimeout(r, 200));
    const holder = await cluster.client(0);
    const b2 = await cluster.client(1);
    const b3 = await cluster.client(1);
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT n FROM gate WHERE id = 1 FOR UPDATE");
      const gateCommit = sqlError(() => b2.query("UPDATE gate SET n = n + 1 WHERE id = 1"));
      await waitFor("gate's commit on QP 2", async () => {
        const { rows } = await c.query("SELECT n FROM gate WHERE id = 1");
        return rows[0].n === 1;
      });
      const rowCommit = sqlError(() => b3.query("INSERT INTO checked VALUES (1, -5)"));
      // The row is in the total order (QP 2 applied it), not yet on QP 0.
      await waitFor("the row on QP 2", async () => {
        const { rows } = await c.query("SELECT count(*)::int AS n FROM checked");
        return rows[0].n === 1;
      });
      const { rows: here } = await a.query("SELECT count(*)::int AS n FROM checked");
      assert.equal(here[0].n, 0, "QP 0 has not applied the row yet");
      // The constraint holds for what QP 0 has, but every applier would add it after the row.
      const err = await sqlError(() =>
        a.query("ALTER TABLE checked ADD CONSTRAINT positive CHECK (v > 0)"),
      );
      assert.equal(err?.code, "40001", JSON.stringify(err));
      // A machine so slow that QP 0 lagged past its lease (2 s) is catching up instead (OC002).
      if (/\(OC002\)/.test(err!.message)) {
        await holder.query("ROLLBACK");
        this.skip();
      }
      assert.match(err!.message, /schema has been updated by another transaction.*\(OC001\)/);
      await holder.query("ROLLBACK"); // QP 0's applier goes on
      assert.equal(await gateCommit, null);
      assert.equal(await rowCommit, null);
    } finally {
      await holder.end().catch(() => undefined);
      await b2.end().catch(() => undefined);
      await b3.end().catch(() => undefined);
      await a.query("ALTER SYSTEM RESET ordo.apply_lock_grace");
      await a.query("SELECT pg_reload_conf()");
    }
    // Every QP has the row and no constraint; run again, the statement fails where it runs.
    for (const client of [a, b, c]) {
      await waitFor("the row on every QP", async () => {
        const { rows } = await client.query("SELECT count(*)::int AS n FROM checked");
        return rows[0].n === 1;
      });
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'positive'",
      );
      assert.equal(rows[0].n, 0);
    }
    const again = await sqlError(() =>
      a.query("ALTER TABLE checked ADD CONSTRAINT positive CHECK (v > 0)"),
    );
    assert.equal(again?.code, "23514", JSON.stringify(again));
    // A schema change of a table written only before it commits, on every QP.
    await a.query("ALTER TABLE checked ADD CONSTRAINT small CHECK (v < 100)");
    await waitFor("the constraint on QP 2", async () => {
      const { rows } = await c.query(
        "SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'small'",
      );
      return rows[0].n === 1;
    });
  });

  it("commits a schema change that waited for its table's local writers to finish", async function () {
    await a.query("CREATE TABLE migrating (id int PRIMARY KEY, v int NOT NULL)");
    await a.query("INSERT INTO migrating VALUES (1, 1)");
    const writer = await cluster.client(0);
    const a2 = await cluster.client(0);
    try {
      await writer.query("BEGIN");
      await writer.query("UPDATE migrating SET v = 2 WHERE id = 1");
      // The schema change's snapshot predates the writer's commit; it waits for the writer's lock.
      const altered = sqlError(() =>
        a2.query("ALTER TABLE migrating ADD CONSTRAINT below_ten CHECK (v < 10)"),
      );
      await waitFor("the schema change waiting for its lock", async () => {
        const { rows } = await a.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE migrating%'",
        );
        return rows[0].n === 1;
      });
      await writer.query("COMMIT");
      // It saw the writer's row when it ran: no schema conflict.
      assert.equal(await altered, null);
    } finally {
      await writer.end().catch(() => undefined);
      await a2.end().catch(() => undefined);
    }
    await waitFor("the constraint on QP 1", async () => {
      const { rows } = await b.query(
        "SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'below_ten'",
      );
      return rows[0].n === 1;
    });
  });

  it("makes a change of a type a schema change of the tables using it (OC001)", async function () {
    await a.query("CREATE DOMAIN small_int AS int");
    await a.query("CREATE DOMAIN tiny_int AS small_int");
    await a.query("CREATE TABLE uses_domain (id int PRIMARY KEY, v small_int)");
    await a.query("CREATE TABLE uses_nested (id int PRIMARY KEY, v tiny_int)");
    await waitFor("the tables on QP 1", async () => {
      const { rows } = await b.query("SELECT to_regclass('uses_nested') IS NOT NULL AS ok");
      return rows[0].ok === true;
    });
    const direct = await cluster.client(1);
    const nested = await cluster.client(1);
    try {
      for (const writer of [direct, nested]) {
        await writer.query("BEGIN");
        await writer.query("SELECT 1"); // snapshots from before the domain's new constraint
      }
      await a.query("ALTER DOMAIN small_int ADD CONSTRAINT below_hundred CHECK (VALUE < 100)");
      await waitFor("the domain's constraint on QP 1", async () => {
        const { rows } = await c.query(
          "SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'below_hundred'",
        );
        return rows[0].n === 1;
      });
      // Rows built before the change: of the domain, and of a domain over it.
      const errs = [
        await sqlError(async () => {
          await direct.query("INSERT INTO uses_domain VALUES (1, 5)");
          await direct.query("COMMIT");
        }),
        await sqlError(async () => {
          await nested.query("INSERT INTO uses_nested VALUES (1, 5)");
          await nested.query("COMMIT");
        }),
      ];
      for (const err of errs) {
        assert.equal(err?.code, "40001", JSON.stringify(err));
        assert.match(err!.message, /\(OC001\)/);
      }
    } finally {
      await direct.end().catch(() => undefined);
      await nested.end().catch(() => undefined);
    }
    // After the change they commit, and the constraint holds on every QP.
    await b.query("INSERT INTO uses_nested VALUES (2, 7)");
    const bad = await sqlError(() => b.query("INSERT INTO uses_domain VALUES (3, 500)"));
    assert.equal(bad?.code, "23514");
    await waitFor("the row on QP 0", async () => {
      const { rows } = await a.query("SELECT count(*)::int AS n FROM uses_nested");
      return rows[0].n === 1;
    });
  });

  it("refuses DDL and DML in one transaction", async function () {
    await a.query("BEGIN");
    await a.query("INSERT INTO kv VALUES (5000, 'mixed')");
    const err = await sqlError(() => a.query("CREATE TABLE mixed (id int PRIMARY KEY)"));
    await a.query("ROLLBACK");
    assert.equal(err?.code, "0A000");
    assert.match(err!.message, /^ordo: a transaction cannot mix DDL and DML/);
  });

  it("refuses CREATE and DROP INDEX CONCURRENTLY, which no QP could apply in order", async function () {
    for (const sql of [
      "CREATE INDEX CONCURRENTLY kv_v_idx ON kv (v)",
      "DROP INDEX CONCURRENTLY IF EXISTS kv_v_idx",
    ]) {
      const err = await sqlError(() => a.query(sql));
      assert.equal(err?.code, "0A000", sql);
      assert.match(err!.message, /^ordo: (CREATE|DROP) INDEX CONCURRENTLY is not supported/);
    }
    await a.query("CREATE INDEX kv_v_idx ON kv (v)");
    await waitFor("the index on QP 1", async () => {
      const { rows } = await b.query("SELECT to_regclass('kv_v_idx') IS NOT NULL AS ok");
      return rows[0].ok === true;
    });
    await a.query("DROP INDEX kv_v_idx");
  });

  it("runs a statement that names several tables once on every QP", async function () {
    await a.query("CREATE TABLE multi_a (id int PRIMARY KEY)");
    await a.query("CREATE TABLE multi_b (id int PRIMARY KEY)");
    await a.query("DROP TABLE multi_a, multi_b");
    await a.query(
      "CREATE TABLE parted (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);" +
        "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);" +
        "CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (100) TO (200)",
    );
    await a.query("ALTER TABLE parted ADD COLUMN note text"); // a key per partition, one statement
    await a.query("INSERT INTO parted VALUES (1, 1, 'x'), (150, 2, 'y')");
    for (const other of [b, c]) {
      const { rows } = await other.query(
        "SELECT to_regclass('multi_a') IS NULL AND to_regclass('multi_b') IS NULL AS dropped",
      );
      assert.equal(rows[0].dropped, true);
      assert.equal(await checksum(other, "parted"), await checksum(a, "parted"));
    }
  });

  it("replicates DDL on schemas, sequences, views, functions, types, roles and grants, not on temporary objects", async function () {
    await a.query("CREATE SCHEMA app");
    await a.query("CREATE TABLE app.items (id int PRIMARY KEY, price int)");
    await a.query("INSERT INTO app.items VALUES (1, 10), (2, 20)");
    await a.query("CREATE SEQUENCE app.seq START 100");
    await a.query("CREATE VIEW app.expensive AS SELECT id FROM app.items WHERE price > 15");
    await a.query("CREATE FUNCTION app.twice(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x'");
    await a.query("CREATE TYPE app.mood AS ENUM ('ok', 'sad')");
    await a.query("DROP ROLE IF EXISTS ordo_reader");
    await a.query("CREATE ROLE ordo_reader");
    await a.query("GRANT USAGE ON SCHEMA app TO ordo_reader");
    await a.query("GRANT SELECT ON app.items TO ordo_reader");
    await a.query("COMMENT ON VIEW app.expensive IS 'over 15'");
    // Temporary objects are the session's own: not replicated, and no applier trips on them.
    await a.query("CREATE TEMP TABLE scratch (x int)");
    await a.query("CREATE TEMP VIEW scratch_v AS SELECT 1 AS one");
    await a.query("CREATE VIEW scratch_implicit AS SELECT x FROM scratch"); // temporary too
    await a.query("CREATE TEMP SEQUENCE scratch_seq");
    await a.query("CREATE INDEX ON scratch (x)");
    await a.query("COMMENT ON TABLE scratch IS 'local'");
    // A persistent object built on them could not be made on another QP: refused.
    for (const sql of [
      "CREATE TABLE like_scratch (LIKE scratch)",
      "CREATE FUNCTION app.count_scratch() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM scratch'",
    ]) {
      const err = await sqlError(() => a.query(sql));
      assert.equal(err?.code, "0A000", sql);
      assert.match(err!.message, /^ordo: a replicated schema change cannot use temporary objects/);
    }
    for (const other of [b, c]) {
      const { rows } = await other.query(
        `SELECT (SELECT array_agg(id ORDER BY id) FROM app.expensive) AS expensive,
                nextval('app.seq') AS next, app.twice(21) AS twice, 'sad'::app.mood::text AS mood,
                has_table_privilege('ordo_reader', 'app.items', 'SELECT') AS granted,
                obj_description('app.expensive'::regclass) AS comment,
                to_regclass('scratch_v') IS NULL AND to_regclass('scratch_implicit') IS NULL
                  AND to_regclass('scratch_seq') IS NULL AS no_temp`,
      );
      assert.deepEqual(rows[0], {
        expensive: [2],
        next: "100",
        twice: 42,
        mood: "sad",
        granted: true,
        comment: "over 15",
        no_temp: true,
      });
    }
    await a.query("DROP VIEW app.expensive");
    await a.query("DROP FUNCTION app.twice(int)");
    const { rows } = await c.query(
      "SELECT to_regclass('app.expensive') IS NULL AND to_regprocedure('app.twice(int)') IS NULL AS gone",
    );
    assert.equal(rows[0].gone, true);
  });

  it("lets one of two concurrent DDLs on other objects commit, under the catalog key", async function () {
    await a.query("BEGIN");
    await b.query("BEGIN");
    await a.query("CREATE VIEW raced AS SELECT 'a' AS who");
    await b.query("CREATE VIEW raced AS SELECT 'b' AS who");
    const results = await Promise.all([
      sqlError(() => a.query("COMMIT")),
      sqlError(() => b.query("COMMIT")),
    ]);
    await b.query("ROLLBACK").catch(() => undefined);
    const failed = results.filter((r) => r !== null);
    assert.equal(failed.length, 1, `exactly one fails: ${JSON.stringify(results)}`);
    assert.equal(failed[0]!.code, "40001");
    const winner = results[0] === null ? "a" : "b";
    for (const client of [a, b, c]) {
      const { rows } = await client.query("SELECT who FROM raced");
      assert.equal(rows[0].who, winner);
    }
  });

  it("makes DROP SCHEMA ... CASCADE a schema change of every table in it", async function () {
    await a.query("CREATE SCHEMA doomed_app");
    await a.query("CREATE TABLE doomed_app.t (id int PRIMARY KEY)");
    await waitFor("doomed_app.t on QP 1", async () => {
      const { rows } = await b.query("SELECT to_regclass('doomed_app.t') IS NOT NULL AS ok");
      return rows[0].ok === true;
    });
    // The writer sits idle in its transaction while the drop commits: a long
    // grace keeps QP 1's applier from ending its session before its COMMIT.
    await b.query("ALTER SYSTEM SET ordo.apply_lock_grace = '60s'");
    await b.query("SELECT pg_reload_conf()");
    await new Promise((r) => setTimeout(r, 200));
    const writer = await cluster.client(1);
    const a2 = await cluster.client(0);
    try {
      await writer.query("BEGIN");
      await writer.query("INSERT INTO doomed_app.t VALUES (1)");
      const dropped = sqlError(() => a.query("DROP SCHEMA doomed_app CASCADE"));
      await waitFor("the drop on QP 0", async () => {
        const { rows } = await a2.query("SELECT to_regnamespace('doomed_app') IS NULL AS gone");
        return rows[0].gone === true;
      });
      const err = await sqlError(() => writer.query("COMMIT"));
      assert.equal(err?.code, "40001", JSON.stringify(err));
      assert.equal(await dropped, null);
    } finally {
      await writer.end().catch(() => undefined);
      await a2.end();
      await b.query("ALTER SYSTEM RESET ordo.apply_lock_grace");
      await b.query("SELECT pg_reload_conf()");
    }
    for (const client of [b, c]) {
      const { rows } = await client.query("SELECT to_regnamespace('doomed_app') IS NULL AS gone");
      assert.equal(rows[0].gone, true);
    }
  });

  it("makes DROP OWNED, DROP FUNCTION ... CASCADE and CREATE TRIGGER schema changes of the tables they reach; a foreign key's lock dooms too", async function () {
    await a.query("CREATE ROLE table_owner");
    await a.query("CREATE TABLE owned_t (id int PRIMARY KEY)");
    await a.query("ALTER TABLE owned_t OWNER TO table_owner");
    await a.query(
      "CREATE FUNCTION doubled(x int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT x * 2'",
    );
    await a.query(
      "CREATE TABLE generated_t (id int PRIMARY KEY, v int, w int GENERATED ALWAYS AS (doubled(v)) STORED)",
    );
    await waitFor("the tables on QP 1", async () => {
      const { rows } = await b.query(
        "SELECT to_regclass('owned_t') IS NOT NULL AND to_regclass('generated_t') IS NOT NULL AS ok",
      );
      return rows[0].ok === true;
    });
    const columnGone =
      "NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'generated_t'::regclass " +
      "AND attname = 'w' AND NOT attisdropped)";
    // Each drops what a writer on QP 1 is writing: DROP OWNED the table, DROP
    // FUNCTION ... CASCADE the generated column that calls the function.
    // Before they named those tables, QP 1's applier waited for the writer's
    // lock without dooming it, and the writer's commit (approved: no key in
    // common) then waited for its turn behind the applier.
    const cases = [
      {
        insert: "INSERT INTO owned_t VALUES (1)",
        drop: "DROP OWNED BY table_owner",
        gone: "SELECT to_regclass('owned_t') IS NULL AS gone",
      },
      {
        insert: "INSERT INTO generated_t (id, v) VALUES (1, 2)",
        drop: "DROP FUNCTION doubled(int) CASCADE",
        gone: `SELECT ${columnGone} AS gone`,
      },
      {
        // Not a drop, but it locks the table against its writers the same way.
        insert: "INSERT INTO generated_t (id, v) VALUES (1, 2)",
        drop:
          "CREATE TRIGGER generated_t_audit BEFORE UPDATE ON generated_t " +
          "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        gone: "SELECT count(*) = 1 AS gone FROM pg_trigger WHERE tgname = 'generated_t_audit'",
      },
      {
        // A new table referencing it: its foreign key locks the referenced
        // table. No statement names every table it locks; the applier dooms
        // whatever holds it up.
        insert: "INSERT INTO generated_t (id, v) VALUES (1, 2)",
        drop: "CREATE TABLE referencing_t (id int PRIMARY KEY, g int REFERENCES generated_t)",
        gone: "SELECT to_regclass('referencing_t') IS NOT NULL AS gone",
      },
    ];
    await b.query("ALTER SYSTEM SET ordo.apply_lock_grace = '60s'");
    await b.query("SELECT pg_reload_conf()");
    await new Promise((r) => setTimeout(r, 200));
    const a2 = await cluster.client(0);
    try {
      for (const { insert, drop, gone } of cases) {
        const writer = await cluster.client(1);
        try {
          await writer.query("BEGIN");
          await writer.query(insert);
          const dropped = sqlError(() => a.query(drop));
          await waitFor(
            `${drop} on QP 0`,
            async () => (await a2.query(gone)).rows[0].gone === true,
          );
          const err = await sqlError(() => writer.query("COMMIT"));
          assert.equal(err?.code, "40001", `${drop}: ${JSON.stringify(err)}`);
          assert.equal(await dropped, null);
        } finally {
          await writer.end().catch(() => undefined);
        }
      }
    } finally {
      await a2.end();
      await b.query("ALTER SYSTEM RESET ordo.apply_lock_grace");
      await b.query("SELECT pg_reload_conf()");
    }
    // Every QP applied both drops, and goes on applying.
    await a.query("INSERT INTO generated_t (id, v) VALUES (2, 3)");
    for (const client of [b, c]) {
      await waitFor("both drops and a later row on every QP", async () => {
        const { rows } = await client.query(
          `SELECT to_regclass('owned_t') IS NULL AND ${columnGone} AND ` +
            "(SELECT count(*) FROM generated_t) = 1 AS ok",
        );
        return rows[0].ok === true;
      });
    }
  });

  it("makes CREATE OR REPLACE and ALTER FUNCTION of a function a constraint calls, and ALTER TABLE of a row type another table uses, schema changes of those tables (OC001)", async function () {
    await a.query(
      "CREATE FUNCTION small_enough(x int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT x < 100'",
    );
    await a.query("CREATE TABLE checked_t (id int PRIMARY KEY, v int CHECK (small_enough(v)))");
    // A function whose result follows its search_path, which ALTER FUNCTION changes.
    await a.query("CREATE SCHEMA limits_100");
    await a.query("CREATE SCHEMA limits_10");
    await a.query(
      "CREATE FUNCTION limits_100.lim() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 100'",
    );
    await a.query(
      "CREATE FUNCTION limits_10.lim() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 10'",
    );
    await a.query(
      "CREATE FUNCTION under_limit(x int) RETURNS bool IMMUTABLE LANGUAGE sql " +
        "SET search_path = limits_100 AS 'SELECT x < lim()'",
    );
    await a.query("CREATE TABLE limited_t (id int PRIMARY KEY, v int CHECK (under_limit(v)))");
    await a.query("CREATE TABLE inner_t (id int PRIMARY KEY, n int)");
    await a.query("CREATE TABLE outer_t (id int PRIMARY KEY, item inner_t)");
    await waitFor("the tables on QP 1", async () => {
      const { rows } = await b.query("SELECT to_regclass('outer_t') IS NOT NULL AS ok");
      return rows[0].ok === true;
    });
    // Each changes what the writer's row may hold on the QPs that apply it
    // after the change: a CHECK the row no longer passes, a composite value
    // with one attribute too few. Committed behind the change, the row would
    // stop those QPs' appliers; the writer must lose instead.
    const cases = [
      {
        insert: "INSERT INTO checked_t VALUES (1, 50)",
        change:
          "CREATE OR REPLACE FUNCTION small_enough(x int) RETURNS bool IMMUTABLE LANGUAGE sql AS 'SELECT x < 10'",
        done: "SELECT prosrc LIKE '%< 10%' AS done FROM pg_proc WHERE proname = 'small_enough'",
      },
      {
        insert: "INSERT INTO limited_t VALUES (1, 50)",
        change: "ALTER FUNCTION under_limit(int) SET search_path = limits_10",
        done: "SELECT proconfig::text LIKE '%limits_10%' AS done FROM pg_proc WHERE proname = 'under_limit'",
      },
      {
        insert: "INSERT INTO outer_t VALUES (1, ROW(1, 2))",
        change: "ALTER TABLE inner_t ADD COLUMN extra int",
        done: "SELECT count(*) = 1 AS done FROM pg_attribute WHERE attrelid = 'inner_t'::regclass AND attname = 'extra'",
      },
    ];
    for (const { insert, change, done } of cases) {
      const writer = await cluster.client(1);
      try {
        await writer.query("BEGIN");
        await writer.query(insert);
        await a.query(change);
        await waitFor(`${change} on QP 1`, async () => (await b.query(done)).rows[0].done === true);
        const err = await sqlError(() => writer.query("COMMIT"));
        assert.equal(err?.code, "40001", `${change}: ${JSON.stringify(err)}`);
        assert.match(err!.message, /OC001/);
      } finally {
        await writer.end().catch(() => undefined);
      }
    }
    // Every QP goes on applying, and the retries commit.
    await b.query("INSERT INTO checked_t VALUES (2, 5)");
    await b.query("INSERT INTO limited_t VALUES (2, 5)");
    await b.query("INSERT INTO outer_t VALUES (2, ROW(1, 2, 3))");
    for (const client of [a, c]) {
      const { rows } = await client.query(
        "SELECT (SELECT count(*) FROM checked_t) = 1 AND (SELECT count(*) FROM limited_t) = 1 " +
          "AND (SELECT count(*) FROM outer_t) = 1 AS ok",
      );
      assert.equal(rows[0].ok, true);
    }
  });

  it("keeps the bank total on every read across 3 QPs and converges", async function () {
    const clients = await Promise.all(
      Array.from({ length: bank_clients }, (_, i) => cluster.client(i % 3)),
    );
    const deadline = Date.now() + bank_seconds * 1000;
    let transfers = 0;
    let reads = 0;
    const badTotals: number[] = [];
    await Promise.all(
      clients.map(async (client, i) => {
        while (Date.now() < deadline) {
          if (i % 4 === 0) {
            const { rows } = await client.query("SELECT sum(balance)::bigint AS total FROM bank");
            if (Number(rows[0].total) !== bank_total) badTotals.push(Number(rows[0].total));
            reads++;
          } else {
            await retrying(() => transfer(client));
            transfers++;
          }
        }
      }),
    );
    assert.deepEqual(badTotals, [], "every read sees the same total");
    assert.ok(transfers > 0 && reads > 0);
    // Every QP converges to identical contents.
    const sums = await Promise.all([a, b, c].map((client) => checksum(client, "bank")));
    assert.equal(new Set(sums).size, 1, `identical tables: ${sums.join(" ")}`);
    console.log(`      ${transfers} transfers, ${reads} total reads in ${bank_seconds} s`);
  });

  it("never lets two readers see two independent commits in opposite orders", async function () {
    await a.query("CREATE TABLE fork (k text PRIMARY KEY, n int NOT NULL)");
    await a.query("INSERT INTO fork VALUES ('x', 0), ('y', 0)");
    await waitFor("fork table on every QP", async () => {
      const { rows } = await c.query("SELECT count(*)::int AS n FROM fork");
      return rows[0].n === 2;
    });
    const readerB = await cluster.client(1);
    const readerC = await cluster.client(2);
    // Observations are (x, y) pairs; a long fork is one reader seeing x's
    // write without y's while another sees y's without x's.
    for (let round = 1; round <= 40; round++) {
      const seen: { x: number; y: number }[] = [];
      const poll = async (reader: Client): Promise<void> => {
        for (let i = 0; i < 5; i++) {
          const { rows } = await reader.query("SELECT k, n FROM fork ORDER BY k");
          seen.push({ x: rows[0].n, y: rows[1].n });
        }
      };
      await Promise.all([
        a.query("UPDATE fork SET n = $1 WHERE k = 'x'", [round]),
        b.query("UPDATE fork SET n = $1 WHERE k = 'y'", [round]),
        poll(readerB),
        poll(readerC),
      ]);
      const xOnly = seen.some((s) => s.x === round && s.y < round);
      const yOnly = seen.some((s) => s.y === round && s.x < round);
      assert.ok(
        !(xOnly && yOnly),
        `round ${round}: readers saw the two commits in opposite orders`,
      );
    }
  });

  it("catches up a QP killed mid-load and loses no acknowledged commit", async function () {
    let next = 10_000;
    const acknowledged: number[] = [];
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const k = next++;
        try {
          await a.query("INSERT INTO kv VALUES ($1, 'load')", [k]);
          acknowledged.push(k);
        } catch {
          // a failed or unknown commit is not counted as acknowledged
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    await cluster.killQp(1);
    await new Promise((r) => setTimeout(r, 1000));
    cluster.startQp(1);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await writer;
    const b2 = await cluster.client(1);
    await waitFor("QP 1 caught up", async () => {
      return (await checksum(b2, "kv")) === (await checksum(a, "kv"));
    });
    const { rows } = await b2.query("SELECT k FROM kv WHERE k >= 10000");
    const present = new Set(rows.map((r) => r.k as number));
    assert.deepEqual(
      acknowledged.filter((k) => !present.has(k)),
      [],
      "every acknowledged commit is on the restarted QP",
    );
    assert.ok(acknowledged.length > 0);
  });

  it("commits a QP's new transactions after a crash in the middle of a burst of its commits", async function () {
    // synchronous_commit is off on QPs: kill -9 mid-burst loses the newest
    // commits from this QP's WAL buffers (the journal has them) and the
    // restarted server hands their xids out again while its applier
    // re-applies them. Acknowledged commits come back, and new transactions
    // commit as new ones (txn ids carry a per-start nonce), everywhere.
    const writers = await Promise.all([0, 1, 2, 3].map(() => cluster.client(2)));
    let next = 30_000;
    let stop = false;
    const acknowledged: number[] = [];
    const load = writers.map(async (w) => {
      while (!stop) {
        const k = next++;
        if (k >= 31_000) break;
        await w
          .query("INSERT INTO kv VALUES ($1, 'before')", [k])
          .then(() => acknowledged.push(k))
          .catch(() => undefined); // failed or unknown: not counted
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await cluster.killQp(2); // mid-burst: the newest commits are not in its WAL yet
    stop = true;
    await Promise.all(load);
    await Promise.all(writers.map((w) => w.end().catch(() => undefined)));
    cluster.startQp(2);
    const c2 = await cluster.client(2);
    for (let k = 31_000; k < 31_100; k++) {
      await retrying(() => c2.query("INSERT INTO kv VALUES ($1, 'after')", [k]));
    }
    await waitFor("QP 2's commits on QP 0", async () => {
      const { rows } = await a.query(
        "SELECT count(*)::int AS n FROM kv WHERE k >= 31000 AND k < 31100",
      );
      return rows[0].n === 100;
    });
    await waitFor("QP 2 equal to QP 0", async () => {
      return (await checksum(c2, "kv")) === (await checksum(a, "kv"));
    });
    const { rows } = await c2.query("SELECT k FROM kv WHERE k >= 30000 AND k < 31000");
    const present = new Set(rows.map((r) => r.k as number));
    assert.ok(acknowledged.length > 0);
    assert.deepEqual(
      acknowledged.filter((k) => !present.has(k)),
      [],
      "every acknowledged commit of the burst is back",
    );
    await c2.end();
    c = await cluster.client(2); // later tests use QP 2 again
  });

  it("loses no acknowledged commit anywhere when the sidecar is killed mid-load", async function () {
    let next = 20_000;
    const acknowledged: number[] = [];
    let stop = false;
    const clients = await Promise.all([0, 1].map((i) => cluster.client(i)));
    const writers = clients.map(async (client) => {
      while (!stop) {
        const k = next++;
        try {
          await client.query("INSERT INTO kv VALUES ($1, 'sidecar-crash')", [k]);
          acknowledged.push(k);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    await cluster.killSidecar();
    await new Promise((r) => setTimeout(r, 300));
    await cluster.startSidecar();
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(writers);
    const fresh = await Promise.all([0, 1, 2].map((i) => cluster.client(i)));
    await waitFor("every QP live and converged", async () => {
      const sums = await Promise.all(fresh.map((client) => checksum(client, "kv")));
      return new Set(sums).size === 1;
    });
    for (const client of fresh) {
      const { rows } = await client.query("SELECT k FROM kv WHERE k >= 20000");
      const present = new Set(rows.map((r) => r.k as number));
      assert.deepEqual(
        acknowledged.filter((k) => !present.has(k)),
        [],
      );
    }
    assert.ok(acknowledged.length > 0);
  });
});
