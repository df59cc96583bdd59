/**
 * Durability end to end: a sidecar killed with SIGKILL right after it
 * acknowledged a commit comes back with that commit replayed from its
 * journal (and still decides conflicts against it); a journal whose last
 * record is torn recovers to the last good record and loses nothing that
 * was acknowledged.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { Client } from "pg";
import { Journal, type JournalEntry } from "../../src/journal";
import { FsDisk } from "../../src/io/fs-disk";
import { SystemClock } from "../../src/io/system-clock";
import { decodeCommitBody } from "../../src/protocol";
import { sqlError, startLocalCluster, type LocalCluster } from "../support/local-cluster";

async function journalEntries(cluster: LocalCluster): Promise<JournalEntry[]> {
  const journal = await Journal.open({
    dir: path.join(cluster.layout.sidecarData, "journal", "0"),
    disk: new FsDisk(),
    clock: new SystemClock(),
  });
  try {
    const entries: JournalEntry[] = [];
    for await (const entry of journal.readFrom(0)) entries.push(entry);
    return entries;
  } finally {
    await journal.close();
  }
}

async function lastTau(client: Client): Promise<number> {
  const { rows } = await client.query("SELECT last_tau_commit::text AS tau FROM ordo.status()");
  return Number(rows[0].tau);
}

function imageText(entry: JournalEntry): string {
  return decodeCommitBody(entry.body)
    .writes.map((w) => Buffer.from(w.image).toString("latin1"))
    .join("|");
}

describe("durability (e2e)", function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  let a: Client;
  let b: Client;

  before(async function () {
    cluster = await startLocalCluster({ qps: 2 });
    a = await cluster.client(0);
    b = await cluster.client(1);
    for (const c of [a, b]) await c.query("CREATE TABLE items (id int PRIMARY KEY, note text)");
  });

  after(async function () {
    await cluster?.stop();
  });

  it("replays a commit acknowledged right before the sidecar was killed", async function () {
    await b.query("BEGIN");
    await b.query("SELECT count(*) FROM items"); // b's snapshot precedes a's commit
    await a.query("INSERT INTO items VALUES (1, 'acknowledged-before-kill')");
    const tau = await lastTau(a);
    assert.ok(tau > 0);
    await cluster.killSidecar();

    const entries = await journalEntries(cluster);
    const entry = entries.find((e) => e.tauCommit === tau);
    assert.ok(entry, `the journal holds the commit at tau ${tau}`);
    assert.match(imageText(entry), /acknowledged-before-kill/);

    const ready = await cluster.startSidecar();
    assert.ok((ready.journal as { recovered: number }).recovered >= 1);
    // The restarted adjudicator still knows the commit: b's stale write of the same key loses.
    await b.query("INSERT INTO items VALUES (1, 'stale')");
    const err = await sqlError(() => b.query("COMMIT"));
    assert.equal(err?.code, "40001");
    // And new work commits.
    await a.query("INSERT INTO items VALUES (2, 'after-restart')");
  });

  it("cuts a torn last record and keeps every acknowledged commit", async function () {
    const acknowledged: number[] = [];
    for (let i = 10; i < 20; i++) {
      await a.query("INSERT INTO items VALUES ($1, 'torn-test')", [i]);
      acknowledged.push(await lastTau(a));
    }
    await cluster.killSidecar();

    // A record the sidecar was writing when it died: a length and checksum that
    // promise more bytes than made it to disk.
    const dir = path.join(cluster.layout.sidecarData, "journal", "0");
    const segments = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".seg"))
      .sort();
    const last = path.join(dir, segments[segments.length - 1]!);
    const sizeBefore = fs.statSync(last).size;
    const torn = Buffer.alloc(20);
    torn.writeUInt32LE(200, 0);
    torn.writeUInt32LE(0xdeadbeef, 4);
    fs.appendFileSync(last, torn);

    const ready = await cluster.startSidecar();
    const journal = ready.journal as { truncatedBytes: number };
    // Cut at the last whole record: the torn one and the zeros the journal
    // keeps written ahead of its records (src/journal/journal.ts).
    assert.ok(journal.truncatedBytes >= torn.length, `cut ${journal.truncatedBytes} bytes`);
    assert.ok(fs.statSync(last).size <= sizeBefore);

    await a.query("INSERT INTO items VALUES (20, 'after-torn-tail')");
    acknowledged.push(await lastTau(a));
    await cluster.stopSidecar();
    const taus = new Set((await journalEntries(cluster)).map((e) => e.tauCommit));
    for (const tau of acknowledged) assert.ok(taus.has(tau), `acknowledged tau ${tau} survived`);
    await cluster.startSidecar();
  });
});
