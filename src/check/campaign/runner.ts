/**
 * `runCampaign`: drives a workload through node-postgres against a real
 * local cluster while injecting faults, records the history, heals the
 * cluster, takes final reads, and checks everything — the list-append
 * checker (snapshot isolation), durability of acknowledged appends, or the
 * bank's invariants. See docs/checker.md, "Campaign".
 *
 * Until QPs replicate (`SHOW ordo.replication` = on), each QP holds its own
 * data, so each QP gets its own tables and its own history, checked apart.
 *
 * `plantedBugs` starts the cluster with deliberate bugs (docs/checker.md,
 * "Planted bugs"), so tests can show that a campaign catches them.
 */
import path from "node:path";
import { setTimeout as sleepFor } from "node:timers/promises";
import type { Client } from "pg";
import { down, status, up } from "../../cluster";
import { ClusterLayout } from "../../cluster/layout";
import { isSidecarPlantedBug, sidecar_planted_bugs } from "../../sidecar/start";
import { checkHistory } from "../checker";
import type { HistoryOp, Key, Mop } from "../types";
import { checkBank, type BankOp, type BankValue } from "./bank";
import {
  append_table,
  balancesOf,
  bank_read_sql,
  bank_table,
  appendPlan,
  bankPlan,
  connectClient,
  parseAppendList,
  runClientLoop,
  type ClientStats,
} from "./client";
import { checkDurability } from "./durability";
import { ClusterFaults, runFaultSchedule, type FaultEvent } from "./faults";
import { sqlStateOf } from "./outcome";
import { seededRandom, type Random } from "./random";
import { HistoryRecorder } from "./recorder";
import type { CampaignOptions, CampaignResult, GroupResult, TxnCounts } from "./types";
import {
  AppendWorkload,
  BankWorkload,
  bank_accounts_default,
  bank_balance_initial,
} from "./workload";

export const clients_default = 4;
export const fault_interval_ms_default = 5000;
export const seed_default = 1;
/** The process that takes the final reads. */
export const final_process = "final";
const ready_timeout_ms = 60_000;
const progress_interval_ms = 5000;
const final_read_attempts_max = 10;
const final_read_keys_per_txn_max = 200;
const table_visible_timeout_ms = 30_000;

/** Bugs the extension can be started with (`ordo.planted_bugs`, docs/extension.md). */
export const qp_planted_bugs: readonly string[] = ["skip-visible-wait"];
/** Every bug a campaign can plant. */
export const planted_bug_names: readonly string[] = [...sidecar_planted_bugs, ...qp_planted_bugs];
/** The sidecar's environment variable for planted bugs (read by src/sidecar/main.ts). */
const planted_bugs_env = "ORDO_PLANTED_BUGS";

/** Splits planted bug names into the sidecar's environment and the QPs' settings. */
export function plantedBugSettings(names: readonly string[]): {
  env: Record<string, string>;
  pgSettings: Record<string, string>;
} {
  const sidecar: string[] = [];
  const qp: string[] = [];
  for (const name of new Set(names)) {
    if (isSidecarPlantedBug(name)) sidecar.push(name);
    else if (qp_planted_bugs.includes(name)) qp.push(name);
    else
      throw new RangeError(
        `unknown planted bug ${JSON.stringify(name)} (known: ${planted_bug_names.join(", ")})`,
      );
  }
  return {
    env: sidecar.length > 0 ? { [planted_bugs_env]: sidecar.join(",") } : {},
    pgSettings: qp.length > 0 ? { "ordo.planted_bugs": `'${qp.join(",")}'` } : {},
  };
}

type AppendValue = readonly Mop[] | null;

interface Group {
  name: string;
  qps: number[];
  historyFile: string;
  stats: ClientStats;
  /** Exactly one of the two, by workload. */
  append?: { workload: AppendWorkload; recorder: HistoryRecorder<AppendValue> };
  bank?: { workload: BankWorkload; recorder: HistoryRecorder<BankValue>; total: number };
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function clusterRunning(dir: string): boolean {
  try {
    const s = status({ dir });
    return s.sidecar.pid !== null && s.qps.every((qp) => qp.pid !== null);
  } catch {
    return false;
  }
}

async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await connectClient(url);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether QPs replicate: `SHOW ordo.replication` is 'on'; an unknown setting means off. */
async function replicationOn(url: string): Promise<boolean> {
  return withClient(url, async (c) => {
    try {
      const { rows } = await c.query("SHOW ordo.replication");
      return String(rows[0]?.["ordo.replication"]) === "on";
    } catch {
      return false;
    }
  });
}

/** Waits (together at most `timeoutMs`) until each QP answers; returns the ones that never did. */
async function readyWithin(
  urls: readonly string[],
  timeoutMs: number,
): Promise<{ qp: number; problem: string }[]> {
  const deadline = Date.now() + timeoutMs;
  const notReady: { qp: number; problem: string }[] = [];
  for (const [qp, url] of urls.entries()) {
    for (;;) {
      try {
        await withClient(url, (c) => c.query("SELECT 1"));
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          notReady.push({ qp, problem: `${url} not ready: ${(err as Error).message}` });
          break;
        }
        await sleepFor(200);
      }
    }
  }
  return notReady;
}

async function waitTableVisible(urls: readonly string[], table: string): Promise<void> {
  const deadline = Date.now() + table_visible_timeout_ms;
  for (const url of urls) {
    for (;;) {
      const { rows } = await withClient(url, (c) =>
        c.query("SELECT to_regclass($1) IS NOT NULL AS ok", [table]),
      );
      if (rows[0]?.ok === true) break;
      if (Date.now() > deadline) throw new Error(`${table} did not appear on ${url}`);
      await sleepFor(200);
    }
  }
}

/** Creates the append table; returns the first key not used by earlier runs. */
async function setupAppend(url: string, create: boolean): Promise<number> {
  return withClient(url, (c) =>
    retryingSetup(async () => {
      if (create) {
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${append_table} (k int PRIMARY KEY, v text NOT NULL DEFAULT '')`,
        );
      }
      const { rows } = await c.query(
        `SELECT coalesce(max(k), -1) + 1 AS base FROM ${append_table}`,
      );
      return Number(rows[0]!.base);
    }),
  );
}

/** The retries a set-up step gets on 40001 (e.g. OC001 right after its own DDL). */
const setup_retries_max = 50;
const setup_retry_ms = 50;

/** Runs a set-up step again on SQLSTATE 40001, as any client must. */
async function retryingSetup<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (sqlStateOf(err) !== "40001" || attempt >= setup_retries_max) throw err;
      await sleepFor(setup_retry_ms);
    }
  }
}

/** Creates and fills the bank table once; returns its account ids. */
async function setupBank(url: string, create: boolean, accounts: number): Promise<number[]> {
  return withClient(url, (c) =>
    retryingSetup(async () => {
      if (create) {
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${bank_table} (id int PRIMARY KEY, balance bigint)`,
        );
        const { rows } = await c.query(`SELECT count(*)::int AS n FROM ${bank_table}`);
        if (Number(rows[0]!.n) === 0) {
          await c.query(
            `INSERT INTO ${bank_table} SELECT g, $2 FROM generate_series(0, $1 - 1) g`,
            [accounts, bank_balance_initial],
          );
        }
      }
      const { rows } = await c.query(`SELECT id FROM ${bank_table} ORDER BY id`);
      return rows.map((r) => Number(r.id));
    }),
  );
}

/** Retries `fn` (a read-only transaction) until it commits, recording every attempt. */
async function finalTxn<V>(
  url: string,
  recorder: HistoryRecorder<V>,
  f: string,
  invoke: V,
  fn: (c: Client) => Promise<V>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    recorder.invoke(final_process, f, invoke);
    try {
      const value = await withClient(url, async (c) => {
        await c.query("BEGIN");
        const v = await fn(c);
        await c.query("COMMIT");
        return v;
      });
      recorder.complete(final_process, "ok", value);
      return;
    } catch (err) {
      recorder.complete(final_process, "fail", invoke);
      if (attempt >= final_read_attempts_max) {
        throw new Error(`final read failed ${attempt} times: ${(err as Error).message}`);
      }
      await sleepFor(500);
    }
  }
}

async function finalReads(group: Group, url: string): Promise<void> {
  if (group.append) {
    const keys = group.append.workload.keys();
    for (let i = 0; i < keys.length; i += final_read_keys_per_txn_max) {
      const chunk = keys.slice(i, i + final_read_keys_per_txn_max);
      const invoke: Mop[] = chunk.map((k) => ["r", k, null]);
      await finalTxn<AppendValue>(url, group.append.recorder, "txn", invoke, async (c) => {
        const { rows } = await c.query(
          `SELECT k, v FROM ${append_table} WHERE k = ANY($1::int[])`,
          [chunk],
        );
        const lists = new Map<Key, string>(rows.map((r) => [Number(r.k), String(r.v)]));
        return chunk.map((k): Mop => ["r", k, parseAppendList(lists.get(k))]);
      });
    }
  }
  if (group.bank) {
    await finalTxn<BankValue>(url, group.bank.recorder, "read", null, async (c) =>
      balancesOf((await c.query(bank_read_sql)).rows),
    );
  }
}

function historyFile(options: CampaignOptions, stamp: string, suffix: string): string {
  if (options.out !== undefined) {
    const ext = path.extname(options.out);
    return suffix === ""
      ? options.out
      : `${options.out.slice(0, options.out.length - ext.length)}-${suffix}${ext}`;
  }
  const base = `history-${stamp}${suffix === "" ? "" : "-" + suffix}.jsonl`;
  return path.join(new ClusterLayout(options.dir).dir, "check", base);
}

function checkGroup(group: Group, options: CampaignOptions): GroupResult {
  const counts: TxnCounts = { ok: group.stats.ok, fail: group.stats.fail, info: group.stats.info };
  const base = { name: group.name, qps: group.qps, historyFile: group.historyFile, counts };
  if (group.append) {
    const ops = group.append.recorder.ops as HistoryOp[];
    const check = checkHistory(ops, { realtime: options.realtime === true });
    const durability = checkDurability(ops, final_process);
    return { ...base, check, durability, valid: check.valid && durability.valid };
  }
  const bank = group.bank!;
  const ops = bank.recorder.ops as BankOp[];
  const result = checkBank(ops, {
    accounts: bank.workload.accounts,
    total: bank.total,
    finalProcess: final_process,
  });
  return { ...base, bank: result, valid: result.valid };
}

async function prepareGroups(
  options: CampaignOptions,
  urls: readonly string[],
  shared: boolean,
  random: Random,
): Promise<Group[]> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const groups: Group[] = [];
  const groupQps = shared ? [urls.map((_, i) => i)] : urls.map((_, i) => [i]);
  const table = options.workload === "append" ? append_table : bank_table;
  if (shared) {
    // One copy of the data: create it through QP 0 and wait for the others to see it.
    if (options.workload === "append") await setupAppend(urls[0]!, true);
    else await setupBank(urls[0]!, true, options.accounts ?? bank_accounts_default);
    await waitTableVisible(urls, table);
  }
  for (const qps of groupQps) {
    const url = urls[qps[0]!]!;
    const name = shared ? "all QPs" : `qp${qps[0]}`;
    const file = historyFile(options, stamp, shared || urls.length === 1 ? "" : name);
    const group: Group = {
      name,
      qps,
      historyFile: file,
      stats: { ok: 0, fail: 0, info: 0, reconnects: 0 },
    };
    if (options.workload === "append") {
      const keyBase = await setupAppend(url, !shared);
      group.append = {
        workload: new AppendWorkload(random, {
          keyBase,
          ...(options.keysActive !== undefined ? { keysActive: options.keysActive } : {}),
        }),
        recorder: new HistoryRecorder<AppendValue>(file, nowNs),
      };
    } else {
      const accounts = await setupBank(url, !shared, options.accounts ?? bank_accounts_default);
      group.bank = {
        workload: new BankWorkload(random, accounts),
        recorder: new HistoryRecorder<BankValue>(file, nowNs),
        total: accounts.length * bank_balance_initial,
      };
    }
    groups.push(group);
  }
  return groups;
}

function sum(groups: readonly { counts: TxnCounts }[]): TxnCounts {
  return groups.reduce(
    (acc, g) => ({
      ok: acc.ok + g.counts.ok,
      fail: acc.fail + g.counts.fail,
      info: acc.info + g.counts.info,
    }),
    { ok: 0, fail: 0, info: 0 },
  );
}

async function runWorkload(
  options: CampaignOptions,
  urls: readonly string[],
  groups: Group[],
  faults: ClusterFaults,
  random: Random,
): Promise<{ events: FaultEvent[]; elapsedMs: number }> {
  const log = options.log ?? (() => undefined);
  const clients = options.clients ?? clients_default;
  const stop = new AbortController();
  const start = Date.now();
  const loops: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    const qp = i % urls.length;
    const group = groups.find((g) => g.qps.includes(qp))!;
    const common = {
      url: urls[qp]!,
      process: i,
      processStride: clients,
      stats: group.stats,
      stopped: () => stop.signal.aborted,
      ...(options.opTimeoutMs !== undefined ? { opTimeoutMs: options.opTimeoutMs } : {}),
    };
    if (group.append) {
      const { workload, recorder } = group.append;
      loops.push(runClientLoop({ ...common, recorder, nextPlan: () => appendPlan(workload) }));
    } else {
      const { workload, recorder } = group.bank!;
      loops.push(runClientLoop({ ...common, recorder, nextPlan: () => bankPlan(workload) }));
    }
  }
  const schedule = runFaultSchedule({
    mode: options.faults ?? "none",
    intervalMs: options.faultIntervalMs ?? fault_interval_ms_default,
    random,
    faults,
    signal: stop.signal,
    nowMs: Date.now,
  });
  const progress = setInterval(() => {
    const c = sum(groups.map((g) => ({ counts: g.stats })));
    log(
      `progress: ${((Date.now() - start) / 1000).toFixed(0)} s, ok ${c.ok}, fail ${c.fail}, info ${c.info}`,
    );
  }, progress_interval_ms);
  try {
    await sleepFor(options.durationMs);
  } finally {
    stop.abort();
    clearInterval(progress);
  }
  const events = await schedule;
  // Heal before waiting for the clients: a client may wait on a stopped sidecar.
  await faults.heal();
  await Promise.all(loops);
  return { events, elapsedMs: Date.now() - start };
}

/** Runs one campaign against the cluster in `options.dir`; see the file comment. */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const log = options.log ?? (() => undefined);
  if (!(options.durationMs > 0)) throw new RangeError("the duration must be positive");
  const clients = options.clients ?? clients_default;
  if (!Number.isInteger(clients) || clients < 1)
    throw new RangeError("clients must be a positive integer");
  const seed = options.seed ?? seed_default;
  const random = seededRandom(seed);
  const faultMode = options.faults ?? "none";

  const planted = plantedBugSettings(options.plantedBugs ?? []);
  const plantedAny = (options.plantedBugs ?? []).length > 0;
  const startedCluster = !clusterRunning(options.dir);
  if (!startedCluster && plantedAny) {
    throw new Error(`planted bugs need a cluster this campaign starts; ${options.dir} is running`);
  }
  if (startedCluster) {
    log(`starting a cluster in ${options.dir}`);
    if (plantedAny) log(`PLANTED BUGS ON: ${[...new Set(options.plantedBugs)].join(", ")}`);
    await up({
      dir: options.dir,
      ...(options.qps !== undefined ? { qps: options.qps } : {}),
      ...(plantedAny ? { env: planted.env, pgSettings: planted.pgSettings } : {}),
    });
  }
  try {
    const urls = status({ dir: options.dir }).qps.map((qp) => qp.url);
    if (options.qps !== undefined && options.qps !== urls.length) {
      throw new Error(`the cluster in ${options.dir} has ${urls.length} QP(s), not ${options.qps}`);
    }
    // A fresh QP refuses transactions until its applier holds a lease (OC002).
    const notUp = await readyWithin(urls, ready_timeout_ms);
    if (notUp.length > 0) throw new Error(notUp.map((n) => n.problem).join("; "));
    const shared = urls.length > 1 && (await replicationOn(urls[0]!));
    if (urls.length > 1 && !shared) {
      log("replication is off: each QP holds its own data; one history per QP, checked separately");
    }
    const groups = await prepareGroups(options, urls, shared || urls.length === 1, random);
    log(
      `running ${options.workload} for ${options.durationMs / 1000} s: ${clients} clients, ` +
        `${urls.length} QP(s), faults ${faultMode}, seed ${seed}`,
    );
    const faults = new ClusterFaults(options.dir, random, log, planted.env);
    let events: FaultEvent[];
    let elapsedMs: number;
    let notReady: { qp: number; problem: string }[] = [];
    try {
      ({ events, elapsedMs } = await runWorkload(options, urls, groups, faults, random));
      notReady = await readyWithin(urls, options.readyTimeoutMs ?? ready_timeout_ms);
      for (const { problem } of notReady) log(`after the heal: ${problem}`);
      for (const group of groups) {
        // Final reads through the first QP of the group that came back.
        const qp = group.qps.find((q) => !notReady.some((n) => n.qp === q));
        if (qp === undefined) {
          // Nothing to read through: keys go unread, and the QPs are reported as not back.
          log(`no QP of ${group.name} came back after the heal: no final reads`);
          continue;
        }
        await finalReads(group, urls[qp]!);
      }
    } finally {
      for (const g of groups) (g.append?.recorder ?? g.bank!.recorder).close();
    }
    const results = groups.map((g) => checkGroup(g, options));
    const counts = sum(results);
    return {
      valid: results.every((g) => g.valid) && notReady.length === 0,
      notReady,
      workload: options.workload,
      faultMode,
      seed,
      qps: urls.length,
      clients,
      sharedData: shared || urls.length === 1,
      startedCluster,
      elapsedMs,
      counts,
      throughput: elapsedMs > 0 ? (counts.ok * 1000) / elapsedMs : 0,
      faults: events,
      groups: results,
    };
  } finally {
    if (startedCluster) {
      log(`stopping the cluster in ${options.dir}`);
      await down({ dir: options.dir });
    }
  }
}
