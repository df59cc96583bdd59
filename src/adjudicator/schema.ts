/**
 * Schema versions for the adjudicator (DESIGN §4a, docs/replication.md §7):
 * which tables had a DDL commit when, and which have DDL or DML in flight.
 *
 * A transaction that wrote table t loses with a schema conflict (OC001) when
 * a DDL on t committed after its tau_start or is still in flight — its row
 * images were built for a schema other QPs no longer have. A DDL on t loses
 * while DML on t is in flight, since that DML's commit could land after the
 * DDL in the total order with rows of the old shape; and when DML on t
 * committed after the DDL's tau_start, since the DDL ran without seeing
 * those rows, and every applier would run it after them (a new constraint
 * they violate would stop every applier). For a schema change of tables
 * only, the extension sends as tau_start what its statements saw
 * (pgext/ddl.c), not the transaction's snapshot, so writes that finished
 * while it waited for its lock do not count. DDL is rare, so plain maps
 * keyed by table suffice; the version of a table is the tau of its last DDL,
 * not a hot per-table write key.
 */
import { WriteKind } from "../protocol";
import type { Write } from "../protocol";

/** The tables a transaction touches: by DDL, and by row writes or locks. */
export interface TableSet {
  readonly ddl: readonly string[];
  readonly dml: readonly string[];
}

const key_tag_table = 3;

/**
 * The table a conflict key names (docs/protocol.md "Conflict keys"): the
 * bytes of `schema` and `table` after the tag, as one string. Null for a key
 * too short to hold them (the extension never sends one).
 */
export function tableOfKey(key: Uint8Array): string | null {
  if (key.length < 5) return null;
  const schemaBytes = key[1]! | (key[2]! << 8);
  const tableAt = 3 + schemaBytes;
  if (tableAt + 2 > key.length) return null;
  const tableBytes = key[tableAt]! | (key[tableAt + 1]! << 8);
  const end = tableAt + 2 + tableBytes;
  if (end > key.length) return null;
  return Buffer.from(key.buffer, key.byteOffset + 1, end - 1).toString("latin1");
}

export function tableSetOf(writes: readonly Pick<Write, "kind" | "key">[]): TableSet {
  const ddl = new Set<string>();
  const dml = new Set<string>();
  for (const write of writes) {
    const table = tableOfKey(write.key);
    if (table === null) continue;
    if (write.kind === WriteKind.Ddl) {
      if (write.key[0] === key_tag_table) ddl.add(table);
    } else {
      dml.add(table);
    }
  }
  return { ddl: [...ddl], dml: [...dml] };
}

function bump(map: Map<string, number>, table: string, by: number): void {
  const count = (map.get(table) ?? 0) + by;
  if (count < 0) throw new Error(`schema bookkeeping for ${table} went negative`);
  if (count === 0) map.delete(table);
  else map.set(table, count);
}

/** Why a transaction cannot commit, and the tau of the commit it lost to (0: one in flight). */
export interface SchemaConflict {
  readonly detail: string;
  readonly tau: number;
}

export class SchemaVersions {
  /** Table → tau_commit of its last DDL. */
  readonly #ddlTau = new Map<string, number>();
  /** Table → tau_commit of its last row write or lock. */
  readonly #dmlTau = new Map<string, number>();
  readonly #ddlInFlight = new Map<string, number>();
  readonly #dmlInFlight = new Map<string, number>();

  /** Why `tables` cannot commit from a snapshot at `tauStart`, or null. */
  check(tables: TableSet, tauStart: number): SchemaConflict | null {
    for (const table of tables.dml) {
      const tau = this.#ddlTau.get(table);
      if (tau !== undefined && tau > tauStart) {
        return {
          detail: `${printable(table)} changed schema at tau ${tau}, after tau_start ${tauStart}`,
          tau,
        };
      }
      if (this.#ddlInFlight.has(table)) {
        return { detail: `${printable(table)} has a schema change in flight`, tau: 0 };
      }
    }
    for (const table of tables.ddl) {
      if (this.#ddlInFlight.has(table)) {
        return { detail: `${printable(table)} has another schema change in flight`, tau: 0 };
      }
      const tau = this.#ddlTau.get(table);
      if (tau !== undefined && tau > tauStart) {
        return {
          detail: `${printable(table)} changed schema at tau ${tau}, after tau_start ${tauStart}`,
          tau,
        };
      }
      if (this.#dmlInFlight.has(table)) {
        return { detail: `${printable(table)} has writes in flight`, tau: 0 };
      }
      const written = this.#dmlTau.get(table);
      if (written !== undefined && written > tauStart) {
        return {
          detail: `${printable(table)} was written at tau ${written}, after tau_start ${tauStart}`,
          tau: written,
        };
      }
    }
    return null;
  }

  /** An approved transaction's tables are in flight. */
  reserve(tables: TableSet): void {
    for (const table of tables.ddl) bump(this.#ddlInFlight, table, 1);
    for (const table of tables.dml) bump(this.#dmlInFlight, table, 1);
  }

  /** Undoes `reserve` (the commit is durable or abandoned). */
  release(tables: TableSet): void {
    for (const table of tables.ddl) bump(this.#ddlInFlight, table, -1);
    for (const table of tables.dml) bump(this.#dmlInFlight, table, -1);
  }

  /** A durable commit: its DDL tables now have version `tauCommit`; its DML tables were written then. */
  commit(tables: TableSet, tauCommit: number): void {
    for (const table of tables.ddl) {
      if ((this.#ddlTau.get(table) ?? Number.NEGATIVE_INFINITY) < tauCommit) {
        this.#ddlTau.set(table, tauCommit);
      }
    }
    for (const table of tables.dml) {
      if ((this.#dmlTau.get(table) ?? Number.NEGATIVE_INFINITY) < tauCommit) {
        this.#dmlTau.set(table, tauCommit);
      }
    }
  }

  /** Drops versions at or below the horizon: older snapshots are refused anyway. */
  forgetBefore(horizonTau: number): void {
    for (const [table, tau] of this.#ddlTau) if (tau <= horizonTau) this.#ddlTau.delete(table);
    for (const [table, tau] of this.#dmlTau) if (tau <= horizonTau) this.#dmlTau.delete(table);
  }

  get inFlightTables(): number {
    return this.#ddlInFlight.size + this.#dmlInFlight.size;
  }
}

/**
 * How a message names a table key: `table "schema.name"`, or the catalog
 * (the key of DDL on objects other than tables: empty schema and name).
 */
function printable(table: string): string {
  const bytes = Buffer.from(table, "latin1");
  const schemaBytes = bytes.readUInt16LE(0);
  const schema = bytes.subarray(2, 2 + schemaBytes).toString("utf8");
  const name = bytes.subarray(4 + schemaBytes).toString("utf8");
  if (schema === "" && name === "") return "the catalog (DDL on objects other than tables)";
  return `table "${schema}.${name}"`;
}
