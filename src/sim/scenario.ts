/**
 * One simulated run, driven by one seed: builds the world (hosts with skewed
 * clocks, network, disks), the servers of the chosen design from the real
 * components, the QPs and their clients; injects stalls and crashes; runs in
 * virtual time; measures throughput and commit-to-visible latency; runs the
 * checkers. `replayCommand` is what a failing run prints.
 */
import type { EngineKind } from "../crossbar";
import { nativeAvailable } from "../native";
import type { BuggifySite } from "../buggify";
import type { CommitReply, CommitRequest, ErrorMessage } from "../protocol";
import type { PlantedBugs } from "./bugs";
import { SimBuggify } from "./buggify";
import { checkAll } from "./checkers";
import type { Ack, CheckResult } from "./checkers";
import type { LinkOptions } from "./network";
import { SimNetwork } from "./network";
import { Prng } from "./prng";
import type { LatencyDist } from "./prng";
import {
  fence_after_us,
  fence_check_interval_us,
  hedged_fence_after_us,
  hedged_fence_check_interval_us,
  SingleSidecar,
  SplitCluster,
} from "./servers";
import type { ServerEnv, SimServer } from "./servers";
import { Client, QpApplier, VisibilityTracker } from "./workload";
import { World } from "./world";
import type { SimHost } from "./world";

export type SimDesign = "single" | "baseline" | "fenced" | "hedged";

export interface ScenarioOptions {
  seed: number;
  design: SimDesign;
  journals: number;
  durationUs: number;
  qps?: number;
  clients?: number;
  keys?: number;
  writesMax?: number;
  /** Stalls of journal hosts (the sidecar host in "single"): per host per second. */
  stallRate?: number;
  stallUs?: number;
  /** Crashes per second: of the sidecar host ("single"), of a journal host ("fenced", "hedged"). */
  crashRate?: number;
  downUs?: number;
  /** A crashed host's clock comes back up to this far behind where it was (an NTP step at boot). */
  clockStepBackUs?: number;
  /**
   * Network partitions per second in the cluster, each `partitionUs` long:
   * "single" cuts a QP from the sidecar (its requests are lost, its
   * subscription breaks and resumes when the partition heals); "fenced" and
   * "hedged" cut a journal host from the crossbar, the adjudicator or both
   * (the crossbar fences it, the router sends its commits elsewhere).
   */
  partitionRate?: number;
  partitionUs?: number;
  clientLossP?: number;
  clockSkewMaxUs?: number;
  engine?: EngineKind;
  bugs?: PlantedBugs;
  /**
   * "fenced", "hedged": silence after which the crossbar fences a journal
   * (default per design). "single": the sidecar's JournalSet fences a journal
   * whose fsync waited this long (default off).
   */
  fenceAfterUs?: number;
  /**
   * "single": journal retention with this keep window (µs), passes every
   * quarter of it, small segments; the QPs report what they applied. Default
   * off.
   */
  retentionKeepUs?: number;
  /** Fault points inside component code (src/buggify, src/sim/buggify.ts). Default off. */
  buggify?: boolean;
  /** Keep every QP's stream for the checkers (default true). */
  check?: boolean;
  /** Series buckets for the chart. */
  buckets?: number;
  onProgress?: (fraction: number) => void;
}

export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
}

export interface SeriesPoint {
  /** Virtual seconds at the bucket's end. */
  t: number;
  tps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SimResult {
  options: ScenarioOptions;
  traceHash: string;
  acked: number;
  visible: number;
  conflicts: number;
  unavailable: number;
  /** Commits made visible everywhere per virtual second. */
  throughput: number;
  /** Commit acknowledgement to visible on every QP, microseconds. */
  commitToVisibleUs: Percentiles;
  /** Request sent to visible everywhere, microseconds. */
  endToEndUs: Percentiles;
  series: SeriesPoint[];
  checks: CheckResult | null;
  errors: string[];
  /** How often each BUGGIFY point fired (empty with buggify off). */
  buggifyFired: Partial<Record<BuggifySite, number>>;
  stalls: number;
  crashes: number;
  partitions: number;
  fences: number;
  redirects: number;
  /** Journal segments retention removed ("single" with `retentionKeepUs`). */
  removedSegments: number;
  events: number;
  realMs: number;
}

const lan: LatencyDist = { minUs: 50, meanExtraUs: 50, outlierP: 0.001, outlierUs: 2_000 };
const fsync_latency: LatencyDist = {
  minUs: 300,
  meanExtraUs: 200,
  outlierP: 0.002,
  outlierUs: 5_000,
};
const client_timeout_us = 300_000;
/** Virtual time the run goes on after its end, faults off, so in-flight commits settle before the checks. */
const quiesce_us = 400_000;

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, p999: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

export function replayCommand(options: ScenarioOptions): string {
  const parts = [
    `npx ordo sim --seed ${options.seed} --design ${options.design} --journals ${options.journals}`,
    `--duration ${options.durationUs / 1e6}s`,
  ];
  if ((options.stallRate ?? 0) > 0)
    parts.push(`--stall-ms ${(options.stallUs ?? 0) / 1000} --stall-rate ${options.stallRate}`);
  if ((options.crashRate ?? 0) > 0) parts.push(`--crash-rate ${options.crashRate}`);
  if (options.downUs !== undefined) parts.push(`--down-ms ${options.downUs / 1000}`);
  if ((options.clockStepBackUs ?? 0) > 0)
    parts.push(`--clock-step-back-ms ${(options.clockStepBackUs ?? 0) / 1000}`);
  if ((options.partitionRate ?? 0) > 0) parts.push(`--partition-rate ${options.partitionRate}`);
  if (options.partitionUs !== undefined) parts.push(`--partition-ms ${options.partitionUs / 1000}`);
  if ((options.clientLossP ?? 0) > 0) parts.push(`--client-loss ${options.clientLossP}`);
  if (options.fenceAfterUs !== undefined) parts.push(`--fence-ms ${options.fenceAfterUs / 1000}`);
  if ((options.retentionKeepUs ?? 0) > 0)
    parts.push(`--retention-ms ${(options.retentionKeepUs ?? 0) / 1000}`);
  if (options.qps !== undefined) parts.push(`--qps ${options.qps}`);
  if (options.clients !== undefined) parts.push(`--clients ${options.clients}`);
  if (options.keys !== undefined) parts.push(`--keys ${options.keys}`);
  if (options.writesMax !== undefined) parts.push(`--writes-max ${options.writesMax}`);
  if (options.engine !== undefined) parts.push(`--engine ${options.engine}`);
  if (options.buggify === true) parts.push("--buggify");
  for (const [name, on] of Object.entries(options.bugs ?? {})) {
    if (on !== undefined && on !== false && on !== 0)
      parts.push(
        `--bug ${name.replace(/Us$/, "").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
      );
  }
  return parts.join(" ");
}

export async function runScenario(options: ScenarioOptions): Promise<SimResult> {
  const started = performance.now();
  const root = new Prng(options.seed);
  const world = new World();
  const network = new SimNetwork(world, root.fork("network"));
  const faults = root.fork("faults");
  const skewPrng = root.fork("skew");
  const skewMax = options.clockSkewMaxUs ?? 200;
  const skew = (): number => (skewMax > 0 ? skewPrng.range(-skewMax, skewMax) : 0);
  const qpCount = options.qps ?? 4;
  const clientCount = options.clients ?? Math.max(qpCount, options.journals * 2);
  const check = options.check ?? true;
  const errors: string[] = [];
  const engine: EngineKind = options.engine ?? (nativeAvailable() ? "native" : "js");
  const stream: LinkOptions = { latency: lan, fifo: true };
  const clientLink: LinkOptions = { latency: lan, lossP: options.clientLossP ?? 0 };

  const buggify = options.buggify === true ? new SimBuggify(root.fork("buggify")) : null;
  const tracker = new VisibilityTracker(qpCount);
  const qps: QpApplier[] = [];
  for (let q = 0; q < qpCount; q++)
    qps.push(new QpApplier(q, world.addHost(`qp${q}`, skew()), tracker, check, check && q === 0));
  const env: ServerEnv = {
    world,
    network,
    prng: root.fork("servers"),
    fsync: fsync_latency,
    stream,
    engine,
    journalEngine: engine,
    bugs: options.bugs ?? {},
    buggify,
    hedgedStreams: options.design === "hedged",
    qps,
    onError: (where, error) => {
      if (errors.length < 20) errors.push(`${where}: ${(error as Error).message ?? String(error)}`);
      world.trace(`error ${where}`);
    },
  };

  let server: SimServer;
  let single: SingleSidecar | null = null;
  let split: SplitCluster | null = null;
  const stallTargets = [];
  if ((options.retentionKeepUs ?? 0) > 0 && options.design !== "single")
    throw new Error("retention runs in the single design only (its sidecar keeps the journals)");
  if (options.design === "single") {
    single = new SingleSidecar(
      env,
      world.addHost("sidecar", skew()),
      options.journals,
      options.fenceAfterUs ?? 0,
      options.retentionKeepUs ?? 0,
    );
    server = single;
    stallTargets.push(single.host);
  } else {
    const adjudicator = world.addHost("adjudicator", skew());
    const crossbar = world.addHost("crossbar", skew());
    const hosts = [];
    for (let j = 0; j < options.journals; j++) hosts.push(world.addHost(`journal${j}`, skew()));
    const hedged = options.design === "hedged";
    split = new SplitCluster(
      env,
      { adjudicator, crossbar, hosts },
      options.design !== "baseline",
      options.fenceAfterUs ?? (hedged ? hedged_fence_after_us : fence_after_us),
      hedged ? hedged_fence_check_interval_us : fence_check_interval_us,
    );
    server = split;
    stallTargets.push(...hosts);
  }

  // Measurements.
  const acks = new Map<number, Ack>();
  const c2v: number[] = [];
  const e2e: number[] = [];
  const buckets = options.buckets ?? 60;
  const bucketUs = options.durationUs / buckets;
  const bucketCount = new Array<number>(buckets).fill(0);
  const bucketLat: number[][] = Array.from({ length: buckets }, () => []);
  let conflicts = 0;
  let unavailable = 0;
  let visible = 0;
  const stats = {
    acked(txn: number, tau: number, info: Ack["info"]): void {
      if (check) acks.set(txn, { tau, info });
      world.trace(`ack ${txn} ${tau}`);
    },
    visible(_txn: number, _tau: number, ackedAt: number, requestedAt: number): void {
      visible += 1;
      c2v.push(world.now - ackedAt);
      e2e.push(world.now - requestedAt);
      const b = Math.min(buckets - 1, Math.floor(world.now / bucketUs));
      bucketCount[b]! += 1;
      bucketLat[b]!.push(world.now - ackedAt);
    },
    conflict(): void {
      conflicts += 1;
    },
    unavailable(): void {
      unavailable += 1;
    },
  };
  const send = (
    from: (typeof qps)[number]["host"],
    request: CommitRequest,
    reply: (r: CommitReply | ErrorMessage) => void,
  ): void => {
    const to = server.commitHost;
    network.send(from, to, clientLink, () =>
      server.commit(request, (r) => network.send(to, from, clientLink, () => reply(r))),
    );
  };

  // Faults, each a Poisson process on the faults stream, stopped when the run ends.
  let faultsOn = true;
  /** Calls `fire` at exponential intervals of mean 1/`perSecond` while faults are on. */
  const poisson = (perSecond: number, fire: () => void): void => {
    const next = (): void => {
      world.schedule(null, faults.exponential(1e6 / perSecond), () => {
        if (!faultsOn) return;
        fire();
        next();
      });
    };
    next();
  };
  let stalls = 0;
  let crashes = 0;
  let partitions = 0;
  const stallRate = options.stallRate ?? 0;
  const stallUs = options.stallUs ?? 1_000_000;
  const crashRate = options.crashRate ?? 0;
  const partitionRate = options.partitionRate ?? 0;
  const partitionUs = options.partitionUs ?? 50_000;
  if (options.design === "baseline" && (crashRate > 0 || partitionRate > 0))
    throw new Error(
      "the baseline design has no recovery from a journal host's crash or partition (it never fences): use fenced or hedged",
    );
  if (stallRate > 0) {
    for (const host of stallTargets) {
      poisson(stallRate, () => {
        stalls += 1;
        world.stall(host, stallUs);
      });
    }
  }
  /** A journal host that is up and connected, while more than half are; else null. */
  const pickJournal = (c: SplitCluster): number | null => {
    const healthy = c.healthyJournals();
    if (healthy.length <= c.journalHosts.length / 2) return null;
    return healthy[faults.int(healthy.length)]!;
  };
  const clockStepBackUs = options.clockStepBackUs ?? 0;
  /** The host's clock steps back at a restart, by up to `clockStepBackUs`. */
  const stepBack = (host: SimHost): void => {
    if (clockStepBackUs > 0) host.skewUs -= faults.int(clockStepBackUs + 1);
  };
  if (crashRate > 0 && split !== null) {
    const c = split;
    poisson(crashRate, () => {
      const j = pickJournal(c);
      if (j === null) return;
      crashes += 1;
      c.crashJournal(j);
      world.schedule(null, options.downUs ?? 20_000, () => {
        stepBack(c.journalHosts[j]!.host);
        c.restartJournal(j);
      });
    });
  }
  if (crashRate > 0 && single !== null) {
    const s = single;
    poisson(crashRate, () => {
      if (!s.host.up) return;
      crashes += 1;
      s.crash();
      world.schedule(null, options.downUs ?? 20_000, () => {
        stepBack(s.host);
        world.restart(s.host);
        // The restart runs on the host's own queue, like a process start.
        world.schedule(
          s.host,
          0,
          () => void s.start().catch((error: unknown) => env.onError("restart failed", error)),
        );
      });
    });
  }
  if (partitionRate > 0 && split !== null) {
    const c = split;
    poisson(partitionRate, () => {
      const j = pickJournal(c);
      if (j === null) return;
      // Cut from the crossbar, from the adjudicator, or from both (isolated).
      const which = faults.int(3);
      partitions += 1;
      c.partitionJournal(j, which !== 1, which !== 0, partitionUs);
    });
  }
  if (partitionRate > 0 && single !== null) {
    const s = single;
    const cut = new Set<number>();
    poisson(partitionRate, () => {
      const candidates = qps.filter((q) => !cut.has(q.qp));
      if (candidates.length === 0) return;
      const q = candidates[faults.int(candidates.length)]!.qp;
      partitions += 1;
      cut.add(q);
      network.partition(qps[q]!.host, s.host, partitionUs);
      s.disconnect(q);
      world.schedule(null, partitionUs, () => {
        cut.delete(q);
        s.connect(q);
      });
    });
  }

  world.schedule(
    server.commitHost,
    0,
    () => void server.start().catch((error: unknown) => env.onError("start failed", error)),
  );
  const end = options.durationUs;
  const done = (): boolean => world.now >= end;
  const clientPrng = root.fork("clients");
  const running: Promise<void>[] = [];
  for (let c = 0; c < clientCount; c++) {
    const client = new Client(
      c + 1,
      qps[c % qpCount]!,
      clientPrng.fork(`c${c}`),
      {
        keys: options.keys ?? 100_000,
        writesMax: options.writesMax ?? 4,
        clientTimeoutUs: client_timeout_us,
      },
      send,
      tracker,
      stats,
      () => world.now,
    );
    running.push(client.run(done));
  }
  await world.run(end, end / 100, (now) => options.onProgress?.(now / end));
  options.onProgress?.(1);

  faultsOn = false;
  /** Runs the world until `promise` settles (disk syncs need the event queue). */
  const settle = async <T>(promise: Promise<T>): Promise<T> => {
    let settled = false;
    void promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let i = 0; i < 10_000 && !settled; i++) await world.run(world.now + 10_000);
    return promise;
  };
  let checks: CheckResult | null = null;
  if (check) {
    // Let the last commits settle (clients issue no new ones) before reading the disks.
    // A crashed sidecar restarts on its own schedule within it (downUs < quiesce_us).
    // A stall that began just before the end runs its course first.
    await world.run(world.now + quiesce_us + (stallRate > 0 ? stallUs : 0));
    const durable = await settle(server.durableRecords());
    checks = checkAll({
      acks,
      sequences: qps.map((q) => q.sequence),
      applied: qps.map((q) => q.applied),
      anomalies: qps.flatMap((q) => q.anomalies),
      durable: durable?.records ?? null,
      removedThroughTau: durable?.removedThroughTau ?? 0,
      infos: qps[0]!.infos ?? new Map(),
      stuck: server.stuck(),
    });
  }
  server.close();
  const seconds = options.durationUs / 1e6;
  return {
    options,
    traceHash: world.traceHash,
    acked: acks.size,
    visible,
    conflicts,
    unavailable,
    throughput: visible / seconds,
    commitToVisibleUs: percentiles(c2v),
    endToEndUs: percentiles(e2e),
    series: bucketCount.map((count, b) => {
      const p = percentiles(bucketLat[b]!);
      return {
        t: ((b + 1) * bucketUs) / 1e6,
        tps: count / (bucketUs / 1e6),
        p50Ms: p.p50 / 1000,
        p99Ms: p.p99 / 1000,
      };
    }),
    checks,
    errors,
    buggifyFired: buggify?.fired() ?? {},
    stalls,
    crashes,
    partitions,
    fences: split?.fences ?? single?.fences ?? 0,
    redirects: split?.redirects ?? 0,
    removedSegments: single?.removedSegments ?? 0,
    events: world.eventCount,
    realMs: performance.now() - started,
  };
}

/** True when the run found no violation and no component error. */
export function passed(result: SimResult): boolean {
  const c = result.checks;
  const clean =
    c === null ||
    (c.totalOrder.length === 0 &&
      c.durability.length === 0 &&
      c.snapshotIsolation.length === 0 &&
      c.liveness.length === 0);
  return clean && result.errors.length === 0;
}
