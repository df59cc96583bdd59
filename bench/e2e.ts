/**
 * End-to-end benchmark: ordo beside vanilla PostgreSQL in one run.
 *
 * Runs pgbench's TPC-B-like and select-only scripts against a vanilla
 * PostgreSQL 15 (synchronous_commit on, as shipped) and against ordo clusters
 * with replication on (1 QP by default; more QPs and journals with --targets), on the same
 * schema and data, and prints TPS, the ratio to vanilla, and per-transaction
 * latency p50/p99 from pgbench's transaction logs.
 *
 * The schema differs from `pgbench -i` in one way: pgbench_history gets a
 * primary key (a random uuid), because ordo needs one on every written table
 * and a sequence would hand out the same ids on two QPs.
 *
 *   node dist/bench/e2e.js [--scale 5] [--clients 8] [--seconds 15]
 *                          [--targets vanilla,vanilla-rr,ordo:1:1,ordo:2:4] [--cpu] [--keep]
 *
 * `--clients` is the number of pgbench clients of each target: a target with
 * several QPs splits them among its QPs, so every target carries the same
 * offered load.
 *
 * `vanilla` runs at PostgreSQL's default READ COMMITTED, `vanilla-rr` at
 * REPEATABLE READ (what ordo forces); both retry serialization failures
 * like ordo runs do (pgbench --max-tries=10).
 *
 * `--cpu` also prints, for each TPC-B run, the CPU time and wake-ups per
 * transaction of each kind of process (backends, pgbench, sidecar, applier,
 * ...), read from /proc over the middle of the run (bench/proc-usage.ts).
 * `--keep` leaves each cluster's directory, with its servers' and sidecar's
 * logs, where it was and prints where.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InvalidArgumentError } from "commander";
import { Client } from "pg";
import { down, up } from "../src/cluster";
import { ClusterLayout } from "../src/cluster/layout";
import { initQp, pgBinDir, qpUrl, startQp, stopQp } from "../src/cluster/postgres";
import { freePort, mkdirForPg, writeFileForPg } from "../src/cluster/system";
import type { WaitSummary } from "../src/sidecar/wait-stats";
import { benchCommand, positiveInteger } from "./common";
import {
  snapshotUsage,
  usage_groups,
  usageBetween,
  type GroupUsage,
  type UsageGroup,
} from "./proc-usage";

const accounts_per_scale = 100_000;
const tellers_per_scale = 10;
const load_rows_per_txn = 2_500; // under ordo's 3,000-row limit
/** --cpu leaves this much of each run's start and end out of its window. */
const cpu_margin_s = 1;
const cpu_seconds_min = 4;

interface Options {
  scale: number;
  clients: number;
  seconds: number;
  targets: string[];
  /** Report CPU and wake-ups per transaction by process (Linux /proc). */
  cpu: boolean;
  /** Leave the clusters' directories (server and sidecar logs) in place. */
  keep: boolean;
}

interface RunResult {
  target: string;
  script: string;
  tps: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  retried: number;
  /** Clients pgbench lost for the rest of the run (their session ended, e.g. FATAL). */
  aborted: number;
  /** When each logged transaction ended (epoch seconds). */
  endedAt: number[];
}

const target_pattern = /^(vanilla|vanilla-rr|ordo:([1-9]\d*):([1-9]\d*))$/;

function parseTargets(value: string): string[] {
  const targets = value.split(",");
  for (const target of targets) {
    if (!target_pattern.test(target)) {
      throw new InvalidArgumentError(
        `unknown target "${target}" (vanilla, vanilla-rr or ordo:QPS:JOURNALS)`,
      );
    }
  }
  const twice = targets.find((t, i) => targets.indexOf(t) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`${twice} is named twice`);
  return targets;
}

function parseArgs(argv: string[]): Options {
  const command = benchCommand(
    "bench-e2e",
    "ordo beside vanilla PostgreSQL, pgbench TPC-B and select-only",
  )
    .option("--scale <n>", "pgbench scale factor", positiveInteger, 5)
    .option(
      "--clients <n>",
      "pgbench clients of each target (split among its QPs)",
      positiveInteger,
      8,
    )
    .option("--seconds <n>", "seconds per pgbench run", positiveInteger, 15)
    .option(
      "--targets <list>",
      "comma-separated: vanilla, vanilla-rr, ordo:QPS:JOURNALS",
      parseTargets,
      ["vanilla", "vanilla-rr", "ordo:1:1"],
    )
    .option("--cpu", "CPU time and wake-ups per TPC-B transaction by process", false)
    .option("--keep", "leave each cluster's directory (logs) in place", false)
    .parse(argv, { from: "user" });
  const options = command.opts<Options>();
  for (const target of options.targets) {
    const qps = Number(target_pattern.exec(target)?.[2] ?? 1);
    if (options.clients < qps) {
      command.error(`error: ${target} needs --clients ${qps} or more (one per QP at least)`);
    }
  }
  if (options.cpu && options.seconds < cpu_seconds_min) {
    command.error(`error: --cpu needs --seconds ${cpu_seconds_min} or more`);
  }
  return options;
}

const schema = `
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
CREATE TABLE pgbench_history (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tid int, bid int,
  aid int, delta int, mtime timestamp, filler char(22));
`;

/** Creates and fills the tables in transactions small enough for ordo's limits. */
async function load(url: string, scale: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(schema);
    await client.query(
      "INSERT INTO pgbench_branches SELECT b, 0, '' FROM generate_series(1, $1::int) b",
      [scale],
    );
    await client.query(
      "INSERT INTO pgbench_tellers SELECT t, (t - 1) / $2::int + 1, 0, '' FROM generate_series(1, $1::int) t",
      [scale * tellers_per_scale, tellers_per_scale],
    );
    const total = scale * accounts_per_scale;
    for (let from = 1; from <= total; from += load_rows_per_txn) {
      const to = Math.min(total, from + load_rows_per_txn - 1);
      await client.query(
        "INSERT INTO pgbench_accounts SELECT a, (a - 1) / $3::int + 1, 0, '' FROM generate_series($1::int, $2::int) a",
        [from, to, accounts_per_scale],
      );
    }
    await client.query("VACUUM ANALYZE");
  } finally {
    await client.end();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function pgbench(
  target: string,
  url: string,
  script: "tpcb-like" | "select-only",
  options: Options,
  logDir: string,
  isolation?: string,
): Promise<RunResult> {
  fs.rmSync(logDir, { recursive: true, force: true });
  mkdirForPg(logDir, 0o777);
  const prefix = path.join(logDir, "tx");
  const args = [
    "-n",
    "-b",
    script,
    "-M",
    "prepared",
    "-c",
    String(options.clients),
    "-j",
    String(Math.min(options.clients, os.cpus().length)),
    "-T",
    String(options.seconds),
    "-l",
    `--log-prefix=${prefix}`,
    "--max-tries=10",
    "--failures-detailed",
    url,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const env = {
      ...process.env,
      ...(isolation ? { PGOPTIONS: `-c default_transaction_isolation=${isolation}` } : {}),
    };
    const child = spawn(path.join(pgBinDir(), "pgbench"), args, { cwd: logDir, env });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (text += d.toString()));
    child.on("error", reject);
    child.on("close", () => resolve(text));
  });
  const tps = Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? Number.NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0);
  const retried = Number(/number of transactions retried: (\d+)/.exec(output)?.[1] ?? 0);
  const aborted = output.match(/client \d+ (script \d+ )?aborted/g)?.length ?? 0;
  if (!Number.isFinite(tps)) throw new Error(`pgbench failed on ${target}:\n${output}`);
  const latenciesUs: number[] = [];
  const endedAt: number[] = [];
  for (const file of fs.readdirSync(logDir)) {
    for (const line of fs.readFileSync(path.join(logDir, file), "utf8").split("\n")) {
      // client, transaction, latency µs, script, end (epoch s), end (µs part), ...
      const fields = line.split(" ");
      const latency = Number(fields[2]);
      if (fields.length >= 3 && Number.isFinite(latency)) latenciesUs.push(latency);
      const end = Number(fields[4]) + Number(fields[5]) / 1e6;
      if (fields.length >= 6 && Number.isFinite(latency) && Number.isFinite(end)) endedAt.push(end);
    }
  }
  latenciesUs.sort((x, y) => x - y);
  return {
    target,
    script,
    tps,
    p50Ms: percentile(latenciesUs, 50) / 1000,
    p99Ms: percentile(latenciesUs, 99) / 1000,
    failed,
    retried,
    aborted,
    endedAt,
  };
}

const usageRows: { target: string; transactions: number; usage: Map<UsageGroup, GroupUsage> }[] =
  [];

/**
 * Runs a TPC-B run and, with --cpu, reads every process's usage over its
 * middle, per transaction that ended in that window.
 */
async function withUsage<T extends RunResult | RunResult[]>(
  target: string,
  options: Options,
  run: () => Promise<T>,
): Promise<T> {
  if (!options.cpu) return run();
  const sleep = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));
  const running = run();
  await sleep(cpu_margin_s);
  const from = Date.now() / 1000;
  const before = snapshotUsage();
  await sleep(options.seconds - 2 * cpu_margin_s);
  const after = snapshotUsage();
  const to = Date.now() / 1000;
  const result = await running;
  const runs: RunResult[] = Array.isArray(result) ? result : [result];
  const transactions = runs.reduce(
    (sum, r) => sum + r.endedAt.filter((t) => t >= from && t <= to).length,
    0,
  );
  usageRows.push({ target, transactions, usage: usageBetween(before, after) });
  return result;
}

function printUsage(): void {
  if (usageRows.length === 0) return;
  console.log(
    "CPU ms (wake-ups) per TPC-B transaction by process, machine-wide, over the middle of each run:",
  );
  const header = ["target", ...usage_groups, "all"];
  const rows = usageRows.map(({ target, transactions, usage }) => {
    const per = (x: number): number => (transactions > 0 ? x / transactions : 0);
    const cells = usage_groups.map((group) => {
      const u = usage.get(group)!;
      return `${per(u.cpuMs).toFixed(3)} (${per(u.wakeups).toFixed(1)})`;
    });
    const all = [...usage.values()].reduce((sum, u) => sum + u.cpuMs, 0);
    return [target, ...cells, per(all).toFixed(3)];
  });
  printAligned(header, rows);
}

/** Prints a header and rows, each column right-aligned to its widest cell. */
function printAligned(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

async function withVanilla<T>(
  root: string,
  name: string,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const layout = new ClusterLayout(path.join(root, name));
  fs.mkdirSync(layout.dir, { recursive: true });
  fs.chmodSync(layout.dir, 0o755);
  mkdirForPg(layout.logDir, 0o755);
  const qp = layout.qp(0);
  initQp(qp);
  const port = await freePort();
  writeFileForPg(
    path.join(qp.data, "ordo.conf"),
    `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${qp.socketDir}'\nmax_connections = 100\n`,
  );
  const conf = path.join(qp.data, "postgresql.conf");
  writeFileForPg(conf, `${fs.readFileSync(conf, "utf8")}\ninclude_if_exists = 'ordo.conf'\n`);
  startQp(qp);
  try {
    return await fn(qpUrl(port));
  } finally {
    stopQp(qp, "immediate");
  }
}

interface SidecarStats {
  /** How long commits waited to be visible everywhere (strong reads). */
  visibleWait: WaitSummary;
  /** From a commit request's arrival at the sidecar to its reply. */
  commitLatency?: WaitSummary;
  /** Each journal group's writes and fsync. */
  journalSync?: WaitSummary;
}

/** The sidecar's `stats` log lines, oldest first. */
function statsLines(dir: string): SidecarStats[] {
  const log = new ClusterLayout(dir).sidecarLog;
  return fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line.includes('"event":"stats"'))
    .map((line) => JSON.parse(line) as SidecarStats);
}

/**
 * Asks the sidecar of the cluster in `dir` for the stats of the window since
 * the last ask (SIGUSR2; a new window starts) and returns them.
 */
async function takeSidecarStats(dir: string): Promise<SidecarStats> {
  const before = statsLines(dir).length;
  const pid = Number(fs.readFileSync(new ClusterLayout(dir).sidecarPidFile, "utf8").trim());
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 200; i++) {
    const lines = statsLines(dir);
    if (lines.length > before) return lines[lines.length - 1]!;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the sidecar in ${dir} logged no stats after SIGUSR2`);
}

const allStats: { target: string; stats: SidecarStats }[] = [];

/**
 * Runs `fn` against an ordo cluster. `fn` calls `measure` around the part
 * whose sidecar stats count (the TPC-B run, not the load before it).
 */
async function withOrdo<T>(
  root: string,
  target: string,
  qps: number,
  journals: number,
  fn: (urls: string[], measure: <R>(run: () => Promise<R>) => Promise<R>) => Promise<T>,
): Promise<T> {
  const dir = path.join(root, `ordo-${qps}-${journals}`);
  const started = await up({ dir, qps, journals, replication: true });
  const measure = async <R>(run: () => Promise<R>): Promise<R> => {
    await takeSidecarStats(dir); // the window so far (the load) is dropped
    const result = await run();
    allStats.push({ target, stats: await takeSidecarStats(dir) });
    return result;
  };
  try {
    return await fn(
      started.qps.map((q) => q.url),
      measure,
    );
  } finally {
    await down({ dir });
  }
}

async function benchTarget(target: string, root: string, options: Options): Promise<RunResult[]> {
  const logDir = path.join(root, "pgbench-log");
  const run = async (
    url: string,
    measure: <R>(run: () => Promise<R>) => Promise<R> = (r) => r(),
  ): Promise<RunResult[]> => {
    await load(url, options.scale);
    return [
      await measure(() =>
        withUsage(target, options, () => pgbench(target, url, "tpcb-like", options, logDir)),
      ),
      await pgbench(target, url, "select-only", options, logDir),
    ];
  };
  if (target === "vanilla") return withVanilla(root, target, run);
  if (target === "vanilla-rr") {
    return withVanilla(root, target, async (url) => {
      await load(url, options.scale);
      const rr = "repeatable\\ read";
      return [
        await withUsage(target, options, () =>
          pgbench(target, url, "tpcb-like", options, logDir, rr),
        ),
        await pgbench(target, url, "select-only", options, logDir, rr),
      ];
    });
  }
  const match = /^ordo:(\d+):(\d+)$/.exec(target);
  if (!match) throw new Error(`unknown target ${target} (vanilla or ordo:QPS:JOURNALS)`);
  const [qps, journals] = [Number(match[1]), Number(match[2])];
  return withOrdo(root, target, qps, journals, async (urls, measure) => {
    if (urls.length === 1) return run(urls[0]!, measure);
    // Several QPs: load through the first; pgbench drives them all at once,
    // the clients split among them (as many in all as against vanilla).
    const clientsOf = (i: number): number =>
      Math.floor(options.clients / urls.length) + (i < options.clients % urls.length ? 1 : 0);
    await load(urls[0]!, options.scale);
    const results: RunResult[] = [];
    for (const script of ["tpcb-like", "select-only"] as const) {
      const all = (): Promise<RunResult[]> =>
        Promise.all(
          urls.map((url, i) =>
            pgbench(
              `${target} qp${i}`,
              url,
              script,
              { ...options, clients: clientsOf(i) },
              `${logDir}-${i}`,
            ),
          ),
        );
      const per =
        script === "tpcb-like" ? await measure(() => withUsage(target, options, all)) : await all();
      results.push(...per);
      results.push({
        target: `${target} all`,
        script,
        tps: per.reduce((sum, r) => sum + r.tps, 0),
        p50Ms: Math.max(...per.map((r) => r.p50Ms)),
        p99Ms: Math.max(...per.map((r) => r.p99Ms)),
        failed: per.reduce((sum, r) => sum + r.failed, 0),
        retried: per.reduce((sum, r) => sum + r.retried, 0),
        aborted: per.reduce((sum, r) => sum + r.aborted, 0),
        endedAt: [],
      });
    }
    return results;
  });
}

function print(results: RunResult[]): void {
  const baseline = (name: string): Map<string, number> =>
    new Map(results.filter((r) => r.target === name).map((r) => [r.script, r.tps]));
  const [rc, rr] = [baseline("vanilla"), baseline("vanilla-rr")];
  const ratio = (tps: number, base: number | undefined): string =>
    base ? (tps / base).toFixed(2) + "x" : "-";
  const rows = results.map((r) => [
    r.target,
    r.script,
    r.tps.toFixed(0),
    ratio(r.tps, rc.get(r.script)),
    ratio(r.tps, rr.get(r.script)),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    String(r.retried),
    String(r.failed),
    String(r.aborted),
  ]);
  const header = [
    "target",
    "script",
    "tps",
    "vs vanilla",
    "vs vanilla-rr",
    "p50 ms",
    "p99 ms",
    "retried",
    "failed",
    "clients lost",
  ];
  printAligned(header, rows);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ordo-bench-e2e-"));
  fs.chmodSync(root, 0o755);
  console.log(
    `e2e bench: scale ${options.scale}, ${options.clients} clients (split among a target's QPs), ` +
      `${options.seconds} s per run, ` +
      `${os.cpus().length} cores`,
  );
  const results: RunResult[] = [];
  try {
    for (const target of options.targets)
      results.push(...(await benchTarget(target, root, options)));
  } finally {
    if (options.keep) console.log(`kept the clusters' directories (logs) in ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
  print(results);
  printUsage();
  const ms = (us: number): string => (us / 1000).toFixed(2);
  for (const { target, stats } of allStats) {
    const commit = stats.commitLatency;
    if (commit) {
      console.log(
        `${target}: sidecar commit latency during TPC-B (request in, verdict out): p50 ${ms(commit.p50Us)} ms, ` +
          `p99 ${ms(commit.p99Us)} ms, p999 ${ms(commit.p999Us)} ms over ${commit.count} requests`,
      );
    }
    const sync = stats.journalSync;
    if (sync) {
      console.log(
        `${target}: journal group write+fsync during TPC-B: p50 ${ms(sync.p50Us)} ms, ` +
          `p99 ${ms(sync.p99Us)} ms, p999 ${ms(sync.p999Us)} ms over ${sync.count} groups`,
      );
    }
    const wait = stats.visibleWait;
    console.log(
      `${target}: commit waited for visibility on every QP during TPC-B (strong reads): ` +
        `p50 ${ms(wait.p50Us)} ms, p99 ${ms(wait.p99Us)} ms, p999 ${ms(wait.p999Us)} ms ` +
        `over ${wait.count} commits` +
        (wait.count === 0 ? " (no other QP counted: every commit skipped the wait)" : ""),
    );
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
