/**
 * Tests src/adjudicator/schema.ts and the adjudicator's schema conflicts
 * (OC001): writers of a table whose schema changed after their snapshot
 * lose, and a schema change waits for no in-flight writes.
 */
import assert from "node:assert/strict";
import { Adjudicator, SchemaVersions, tableOfKey, tableSetOf } from "../../src/adjudicator";
import { WriteKind } from "../../src/protocol";

function name(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16LE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/** A primary-key key (tag 1) of `schema.table` with one text value. */
function rowKey(table: string, value: string): Uint8Array {
  const v = Buffer.from(value);
  const len = Buffer.alloc(4);
  len.writeInt32LE(v.length, 0);
  const ncols = Buffer.alloc(2);
  ncols.writeUInt16LE(1, 0);
  return Buffer.concat([Buffer.from([1]), name("public"), name(table), ncols, len, v]);
}

/** A DDL key (tag 3) of `schema.table`. */
function ddlKey(table: string): Uint8Array {
  return Buffer.concat([Buffer.from([3]), name("public"), name(table), Buffer.alloc(2)]);
}

const ddlImage = Buffer.alloc(12); // three empty strings: search_path, role, statement

describe("schema versions", function () {
  it("names the same table for row keys and DDL keys", function () {
    assert.equal(tableOfKey(rowKey("t", "1")), tableOfKey(ddlKey("t")));
    assert.notEqual(tableOfKey(rowKey("t", "1")), tableOfKey(rowKey("u", "1")));
    assert.equal(tableOfKey(Uint8Array.of(1, 9)), null);
  });

  it("splits a write set into DDL and DML tables", function () {
    const tables = tableSetOf([
      { kind: WriteKind.Insert, key: rowKey("a", "1") },
      { kind: WriteKind.Ddl, key: ddlKey("b") },
      { kind: WriteKind.SharedLock, key: rowKey("a", "2") },
    ]);
    assert.deepEqual(tables.dml, [tableOfKey(rowKey("a", "1"))]);
    assert.deepEqual(tables.ddl, [tableOfKey(ddlKey("b"))]);
  });

  it("refuses a writer whose snapshot predates a committed schema change", function () {
    const versions = new SchemaVersions();
    const t = { ddl: [tableOfKey(ddlKey("t"))!], dml: [] };
    versions.reserve(t);
    versions.release(t);
    versions.commit(t, 100);
    const writer = { ddl: [], dml: [tableOfKey(rowKey("t", "1"))!] };
    assert.match(versions.check(writer, 99)!.detail, /"public\.t" changed schema at tau 100/);
    assert.equal(versions.check(writer, 99)!.tau, 100, "the commit a retry must see");
    assert.equal(versions.check(writer, 100), null);
    versions.forgetBefore(100);
    assert.equal(versions.check(writer, 50), null);
  });

  it("refuses a schema change of a table written after its tau_start", function () {
    const versions = new SchemaVersions();
    const t = tableOfKey(ddlKey("t"))!;
    const writer = { ddl: [], dml: [tableOfKey(rowKey("t", "1"))!] };
    versions.reserve(writer);
    versions.release(writer);
    versions.commit(writer, 100);
    // The DDL ran without the row written at 100: every applier would run it after that row.
    assert.match(
      versions.check({ ddl: [t], dml: [] }, 99)!.detail,
      /"public\.t" was written at tau 100, after tau_start 99/,
    );
    assert.equal(versions.check({ ddl: [t], dml: [] }, 99)!.tau, 100);
    assert.equal(versions.check({ ddl: [t], dml: [] }, 100), null);
    assert.equal(versions.check({ ddl: [tableOfKey(ddlKey("u"))!], dml: [] }, 99), null);
    versions.forgetBefore(100);
    assert.equal(versions.check({ ddl: [t], dml: [] }, 50), null);
  });

  it("serializes DDL on objects other than tables under the catalog key", function () {
    const versions = new SchemaVersions();
    const catalogKey = Buffer.concat([Buffer.from([3]), name(""), name(""), Buffer.alloc(2)]);
    const catalog = tableSetOf([{ kind: WriteKind.Ddl, key: catalogKey }]);
    assert.equal(catalog.ddl.length, 1);
    versions.reserve(catalog);
    assert.deepEqual(versions.check(catalog, 10), {
      detail: "the catalog (DDL on objects other than tables) has another schema change in flight",
      tau: 0,
    });
    versions.release(catalog);
    versions.commit(catalog, 100);
    assert.match(versions.check(catalog, 99)!.detail, /^the catalog .* changed schema at tau 100/);
    assert.equal(versions.check(catalog, 100), null);
    // Row writers never name the catalog key, so they do not conflict with it.
    assert.equal(versions.check({ ddl: [], dml: [tableOfKey(rowKey("t", "1"))!] }, 99), null);
  });

  for (const engine of ["js", "native"] as const) {
    describe(`through the adjudicator (${engine})`, function () {
      it("gives writers of a changed table a schema conflict", function () {
        const adj = new Adjudicator({ engine });
        const ddl = adj.adjudicate({
          tauStart: 10,
          writes: [{ kind: WriteKind.Ddl, key: ddlKey("t"), image: ddlImage }],
        });
        assert.ok(ddl.approved);
        // In flight: a writer of t loses; a writer of another table does not.
        const during = adj.adjudicate({
          tauStart: 11,
          writes: [{ kind: WriteKind.Update, key: rowKey("t", "1"), image: Buffer.from("x") }],
        });
        assert.equal(!during.approved && during.verdict, "schema_conflict");
        const other = adj.adjudicate({
          tauStart: 11,
          writes: [{ kind: WriteKind.Update, key: rowKey("u", "1"), image: Buffer.from("x") }],
        });
        assert.ok(other.approved);
        adj.confirm(other.ticket, 12);
        adj.confirm(ddl.ticket, 20);
        const stale = adj.adjudicate({
          tauStart: 19,
          writes: [{ kind: WriteKind.Delete, key: rowKey("t", "2"), image: new Uint8Array() }],
        });
        assert.equal(!stale.approved && stale.verdict, "schema_conflict");
        const fresh = adj.adjudicate({
          tauStart: 20,
          writes: [{ kind: WriteKind.Delete, key: rowKey("t", "2"), image: new Uint8Array() }],
        });
        assert.ok(fresh.approved);
        adj.close();
      });

      it("refuses a schema change while writes of its table are in flight", function () {
        const adj = new Adjudicator({ engine });
        const write = adj.adjudicate({
          tauStart: 10,
          writes: [{ kind: WriteKind.Insert, key: rowKey("t", "1"), image: Buffer.from("x") }],
        });
        assert.ok(write.approved);
        const ddl = () =>
          adj.adjudicate({
            tauStart: 10,
            writes: [{ kind: WriteKind.Ddl, key: ddlKey("t"), image: ddlImage }],
          });
        const refused = ddl();
        assert.equal(!refused.approved && refused.verdict, "schema_conflict");
        adj.abandon(write.ticket);
        assert.ok(ddl().approved);
        adj.close();
      });

      it("rebuilds schema versions from replayed commits", function () {
        const adj = new Adjudicator({ engine });
        adj.registerCommitted([{ kind: WriteKind.Ddl, key: ddlKey("t") }], 50);
        const stale = adj.adjudicate({
          tauStart: 40,
          writes: [{ kind: WriteKind.Insert, key: rowKey("t", "9"), image: Buffer.from("x") }],
        });
        assert.equal(!stale.approved && stale.verdict, "schema_conflict");
        adj.close();
      });
    });
  }
});
