/**
 * One campaign client: a node-postgres connection to one QP that runs
 * transactions back to back — invoke, BEGIN, the statements, COMMIT — and
 * records each outcome (see outcome.ts). A retry after a failure is a new
 * transaction that reads again, never a replay of old reads. After a
 * connection error it reconnects with backoff, since the QP or the sidecar
 * may be down; after an `info` it takes a new process id, because the
 * unknown transaction might still be running.
 */
import { setTimeout as sleepFor } from "node:timers/promises";
import { Client } from "pg";
import type { Mop, Value } from "../types";
import type { BankBalances, BankValue } from "./bank";
import { outcomeOfCommitTag, outcomeOfError, sqlStateOf, type TxnPhase } from "./outcome";
import type { HistoryRecorder } from "./recorder";
import type { AppendWorkload, BankWorkload } from "./workload";

export const append_table = "ordo_check_append";
export const bank_table = "ordo_check_bank";
export const op_timeout_ms_default = 15_000;
const reconnect_backoff_ms_min = 50;
const reconnect_backoff_ms_max = 1000;
const connect_timeout_ms = 5000;

export const append_sql =
  `INSERT INTO ${append_table} (k, v) VALUES ($1, $2) ` +
  `ON CONFLICT (k) DO UPDATE SET v = ${append_table}.v || ',' || $2`;
export const read_sql = `SELECT v FROM ${append_table} WHERE k = $1`;
export const bank_read_sql = `SELECT id, balance FROM ${bank_table} ORDER BY id`;

/** A transaction as a client runs it: what to record at invoke and how to run it. */
export interface TxnPlan<V> {
  readonly f: string;
  readonly invoke: V;
  /** Runs the statements between BEGIN and COMMIT; returns the ok completion's value. */
  run(query: Query): Promise<V>;
}

export type Query = (
  text: string,
  params?: unknown[],
) => Promise<{ rows: Record<string, unknown>[] }>;

export class OpTimeoutError extends Error {
  readonly code = "op_timeout";
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "OpTimeoutError";
  }
}

/** A list-append value as stored: comma-separated, '' for none. */
export function parseAppendList(text: string | null | undefined): Value[] {
  if (text === null || text === undefined || text === "") return [];
  return text.split(",").map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n))
      throw new Error(`not a list of integers: ${JSON.stringify(text)}`);
    return n;
  });
}

export function appendPlan(workload: AppendWorkload): TxnPlan<readonly Mop[] | null> {
  const invoke = workload.next();
  return {
    f: "txn",
    invoke,
    async run(query) {
      const done: Mop[] = [];
      for (const mop of invoke) {
        if (mop[0] === "append") {
          await query(append_sql, [mop[1], String(mop[2])]);
          done.push(mop);
        } else {
          const { rows } = await query(read_sql, [mop[1]]);
          done.push(["r", mop[1], parseAppendList(rows[0]?.v as string | undefined)]);
        }
      }
      return done;
    },
  };
}

export function balancesOf(rows: Record<string, unknown>[]): BankBalances {
  const balances: Record<string, number> = {};
  for (const row of rows) balances[String(row.id)] = Number(row.balance);
  return balances;
}

export function bankPlan(workload: BankWorkload): TxnPlan<BankValue> {
  const txn = workload.next();
  if (txn.kind === "read") {
    return {
      f: "read",
      invoke: null,
      async run(query) {
        return balancesOf((await query(bank_read_sql)).rows);
      },
    };
  }
  const { from, to, amount } = txn;
  return {
    f: "transfer",
    invoke: { from, to, amount },
    async run(query) {
      const { rows } = await query(
        `SELECT id, balance FROM ${bank_table} WHERE id = $1 OR id = $2`,
        [from, to],
      );
      const seen = balancesOf(rows);
      const a = seen[String(from)];
      const b = seen[String(to)];
      if (a === undefined || b === undefined) throw new Error(`accounts ${from} or ${to} missing`);
      // Absolute values from this transaction's reads: a lost update changes the total.
      if (a < amount) return { from, to, amount: 0 };
      await query(`UPDATE ${bank_table} SET balance = $2 WHERE id = $1`, [from, a - amount]);
      await query(`UPDATE ${bank_table} SET balance = $2 WHERE id = $1`, [to, b + amount]);
      return { from, to, amount };
    },
  };
}

export interface ClientStats {
  ok: number;
  fail: number;
  info: number;
  reconnects: number;
}

export interface ClientLoopOptions<V> {
  readonly url: string;
  /** First process id; later ones add `processStride`. */
  readonly process: number;
  readonly processStride: number;
  readonly recorder: HistoryRecorder<V>;
  readonly nextPlan: () => TxnPlan<V>;
  readonly stopped: () => boolean;
  readonly opTimeoutMs?: number;
  readonly stats: ClientStats;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new OpTimeoutError(ms));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Whether the connection survives `err` (a plain SQL error) or must be dropped. */
function connectionUsable(err: unknown): boolean {
  const state = sqlStateOf(err);
  if (state === null) return false;
  return !state.startsWith("08") && !state.startsWith("57");
}

export async function connectClient(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: connect_timeout_ms });
  client.on("error", () => undefined); // a backend that dies between queries
  try {
    await client.connect();
  } catch (err) {
    void client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** Runs transactions until `stopped()`; every invocation gets a completion. */
export async function runClientLoop<V>(options: ClientLoopOptions<V>): Promise<void> {
  const timeoutMs = options.opTimeoutMs ?? op_timeout_ms_default;
  const { recorder, stats } = options;
  let process = options.process;
  let client: Client | null = null;
  let backoffMs = reconnect_backoff_ms_min;
  const drop = (): void => {
    if (client !== null) void client.end().catch(() => undefined);
    client = null;
  };
  while (!options.stopped()) {
    if (client === null) {
      try {
        client = await connectClient(options.url);
        backoffMs = reconnect_backoff_ms_min;
      } catch {
        await sleepFor(backoffMs);
        backoffMs = Math.min(backoffMs * 2, reconnect_backoff_ms_max);
        stats.reconnects++;
        continue;
      }
    }
    const c: Client = client;
    const query: Query = (text, params) => withTimeout(c.query(text, params), timeoutMs, drop);
    const plan = options.nextPlan();
    recorder.invoke(process, plan.f, plan.invoke);
    let phase: TxnPhase = "statements";
    try {
      await query("BEGIN");
      const value = await plan.run(query);
      phase = "commit";
      const result = (await withTimeout(c.query("COMMIT"), timeoutMs, drop)) as {
        command?: string;
      };
      const outcome = outcomeOfCommitTag(result.command);
      recorder.complete(process, outcome, outcome === "ok" ? value : plan.invoke);
      stats[outcome]++;
    } catch (err) {
      const outcome = outcomeOfError(phase, err);
      recorder.complete(process, outcome, plan.invoke);
      stats[outcome]++;
      if (outcome === "info") process += options.processStride;
      // A COMMIT that failed has ended the transaction; a failed statement has not.
      if (phase === "commit" && client !== null && connectionUsable(err)) continue;
      if (client !== null && connectionUsable(err)) {
        try {
          await withTimeout(c.query("ROLLBACK"), timeoutMs, drop);
        } catch {
          drop();
        }
      } else {
        drop();
      }
    }
  }
  drop();
}
