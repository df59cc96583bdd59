/**
 * The server side of a simulated cluster, built from the real components:
 *
 * - `SingleSidecar` ("single"): one sidecar host as src/sidecar/start.ts
 *   wires it — a `JournalSet` of N journals on the host's simulated disk, the
 *   `Adjudicator` rebuilt from the journals, the sans-I/O `Sidecar`, a
 *   `CrossbarService` fed by the set, and with a keep window `Retention`
 *   (the QPs report what they applied; their progress file on the same
 *   disk). It can crash (the disk keeps what was synced, maybe a torn tail)
 *   and restart (reopen, replay, resubscribe).
 * - `SplitCluster` ("baseline" / "fenced" / "hedged"): the story's topology.
 *   Every journal on its own host (a `JournalSet` of one, heartbeats every
 *   `heartbeat_interval_us`), the `Sidecar` with its `Adjudicator` on one
 *   host (its `CommitJournal` is a router that sends each approved commit to
 *   one journal host), the `CrossbarService` on another. In "baseline" the
 *   crossbar waits for every journal, so one stalled host holds back the
 *   global watermark for everyone. "fenced" is the fix for stalls: the
 *   crossbar fences a journal it has not heard from for `fence_after_us`, so
 *   the watermark moves on, and decides which copy of a commit counts (the
 *   router resends a fenced journal's commits elsewhere). "hedged" also cuts
 *   the tail: it fences at the scale of an fsync outlier
 *   (`hedged_fence_after_us`) and sends every crossbar → QP flush over two
 *   paths, the QP taking the first copy.
 */
import { Adjudicator, createConflictTable } from "../adjudicator";
import type { ConflictEngine } from "../adjudicator";
import type { Buggify } from "../buggify";
import { CrossbarService } from "../crossbar";
import type { DurableEntry, EngineKind, SubscriberSink } from "../crossbar";
import { JournalSet, watermark_bound_file_name } from "../journal";
import type { JournalEntry, JournalSetListener, MergedEntry } from "../journal";
import type { CommitReply, CommitRequest, ErrorMessage } from "../protocol";
import { silent_logger } from "../sidecar/log";
import type { Logger } from "../sidecar/log";
import { QpProgressFile } from "../sidecar/qp-progress-file";
import { Retention } from "../sidecar/retention";
import { horizonAt, Sidecar, startHorizon } from "../sidecar/sidecar";
import type { CommitJournal } from "../sidecar/sidecar";
import type { PlantedBugs } from "./bugs";
import { ForgetfulConflictTable } from "./bugs";
import { SimDisk } from "./disk";
import type { LinkOptions } from "./network";
import { SimNetwork } from "./network";
import type { LatencyDist, Prng } from "./prng";
import type { QpApplier } from "./workload";
import { txnOf } from "./workload";
import { simAssert } from "./world";
import type { SimHost, World } from "./world";

/** Idle journals raise their watermark this often (docs/replication.md §2). */
export const heartbeat_interval_us = 1_000;
/** The crossbar fences a journal it has not heard from for this long ("fenced" design). */
export const fence_after_us = 10_000;
/** How often the crossbar looks for overdue journals. */
export const fence_check_interval_us = 1_000;
/**
 * "hedged" design: fence at the scale of an fsync outlier, not of a stall
 * (the journal hosts heartbeat every millisecond, so 1.5 ms of silence is
 * already unusual), and look four times as often.
 */
export const hedged_fence_after_us = 1_500;
export const hedged_fence_check_interval_us = 250;
const data_dir = "/data";
const journal_dir = "/data/journal";
/** With retention: small segments, so that a run of a second fills many and removes some. */
const sim_segment_bytes_retention = 2 * 1024;
/**
 * The journal sets' durable watermark bound runs this far ahead of the clock
 * (a restarted set starts above it), at the scale of a run of a second.
 */
const sim_watermark_bound_ahead_us = 20_000;
/** With retention: each QP reports what it applied this often (the applier's APPLIED). */
export const applied_report_interval_us = 1_000;
/**
 * Zeros the journals keep ahead of their records: the real code path (zero
 * tails at replay, cut at rotation) at a size the simulated disk copies
 * cheaply; its latency model does not tell a growing file from a filled one.
 */
const sim_preallocate_bytes = 16 * 1024;

export interface ServerEnv {
  world: World;
  network: SimNetwork;
  prng: Prng;
  fsync: LatencyDist;
  /** Links between servers: streams. */
  stream: LinkOptions;
  engine: EngineKind;
  journalEngine: "native" | "js";
  bugs: PlantedBugs;
  /** Fault points inside the components (src/buggify); null: off. */
  buggify: Buggify | null;
  /** Crossbar → QP streams go over two paths; the QP takes the first copy of each flush. */
  hedgedStreams: boolean;
  qps: QpApplier[];
  /** A component threw where it must not: the run records it and goes on. */
  onError: (where: string, error: unknown) => void;
}

/** What the disks hold: the durability checker's truth. */
export interface DurableView {
  /** Every durable record above `removedThroughTau`. */
  records: MergedEntry[];
  /** Retention removed every record at or below it from some journal (0: none). */
  removedThroughTau: number;
}

export interface SimServer {
  /** The host that receives commit requests. */
  readonly commitHost: SimHost;
  start(): Promise<void>;
  commit(request: CommitRequest, reply: (r: CommitReply | ErrorMessage) => void): void;
  /** What the disks hold, or null if the design keeps no disk to read. */
  durableRecords(): Promise<DurableView | null>;
  /** Commits the servers still hold unanswered (after the run settled, a liveness failure). */
  stuck(): string[];
  close(): void;
}

/** A subscriber sink that ships the frames of one turn as one stream message. */
class StreamSink implements SubscriberSink {
  readonly #env: ServerEnv;
  readonly #from: SimHost;
  readonly #qp: QpApplier;
  readonly #incarnation: number;
  readonly #generation: number;
  #pending: Uint8Array[] = [];
  /** The connection broke (a partition): nothing more is sent. */
  #broken = false;

  constructor(env: ServerEnv, from: SimHost, qp: QpApplier, generation = qp.generation) {
    this.#env = env;
    this.#from = from;
    this.#qp = qp;
    this.#incarnation = from.incarnation;
    this.#generation = generation;
  }

  /** The connection to the QP is gone: the crossbar drops the subscription on its next write. */
  break(): void {
    this.#broken = true;
  }

  write(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.#pending.length === 0) queueMicrotask(() => this.#flush());
    this.#pending.push(frame);
  }

  get bufferedBytes(): number {
    return 0;
  }

  onDrain(callback: () => void): void {
    queueMicrotask(callback);
  }

  get closed(): boolean {
    return this.#broken || this.#from.incarnation !== this.#incarnation || !this.#from.up;
  }

  #flush(): void {
    const frames = this.#pending;
    this.#pending = [];
    if (this.closed) return;
    const qp = this.#qp;
    const generation = this.#generation;
    if (!this.#env.hedgedStreams) {
      this.#env.network.send(this.#from, qp.host, this.#env.stream, () =>
        qp.receive(frames, generation),
      );
      return;
    }
    // Hedged: the same flush over two streams; the QP takes whichever copy comes first.
    const seq = this.#sent++;
    const deliver = (): void => this.#arrive(seq, frames);
    this.#env.network.send(this.#from, qp.host, this.#env.stream, deliver);
    this.#env.network.send(this.#from, qp.host, { ...this.#env.stream, channel: "hedge" }, deliver);
  }

  // Receiver side of a hedged stream (runs on the QP host): flushes in order, each once.
  #sent = 0;
  #delivered = 0;
  readonly #early = new Map<number, readonly Uint8Array[]>();

  #arrive(seq: number, frames: readonly Uint8Array[]): void {
    if (seq < this.#delivered || this.#early.has(seq)) return; // the other copy came first
    this.#early.set(seq, frames);
    for (let next = this.#early.get(this.#delivered); next !== undefined;) {
      this.#early.delete(this.#delivered);
      this.#delivered += 1;
      this.#qp.receive(next, this.#generation);
      next = this.#early.get(this.#delivered);
    }
  }
}

/** Feeds the crossbar, bumping watermarks when the planted bug says so, never letting it throw into the journals. */
function crossbarFeed(service: () => CrossbarService, env: ServerEnv): JournalSetListener {
  const bump = env.bugs.crossbarWatermarkBumpUs ?? 0;
  return {
    durable(journal, entries, watermark) {
      try {
        service().durable(journal, entries, watermark + bump);
      } catch (error) {
        env.onError(`crossbar rejected journal ${journal}`, error);
      }
    },
    watermarks(moves) {
      try {
        service().watermarks(
          bump === 0
            ? moves
            : moves.map((m) => ({ journal: m.journal, watermark: m.watermark + bump })),
        );
      } catch (error) {
        env.onError("crossbar rejected a watermark", error);
      }
    },
  };
}

function makeAdjudicator(engine: ConflictEngine, horizon: number, bugs: PlantedBugs): Adjudicator {
  if (bugs.adjudicatorIgnoresInFlight === true) {
    return new Adjudicator({
      horizonTau: horizon,
      table: new ForgetfulConflictTable(createConflictTable(engine, horizon)),
    });
  }
  return new Adjudicator({ horizonTau: horizon, engine });
}

/** Component errors reach the run's error list; other events go to `observe`. */
function simLogger(env: ServerEnv, observe: (fields: Record<string, unknown>) => void): Logger {
  return {
    log(level, event, fields) {
      if (level === "error") env.onError(event, fields?.error ?? new Error(event));
      else observe({ ...fields, event });
    },
  };
}

async function collect(entries: AsyncIterable<MergedEntry>): Promise<MergedEntry[]> {
  const out: MergedEntry[] = [];
  for await (const entry of entries) out.push(entry);
  return out;
}

// ---- one sidecar host ------------------------------------------------------

export class SingleSidecar implements SimServer {
  readonly host: SimHost;
  readonly #env: ServerEnv;
  readonly #journals: number;
  readonly disk: SimDisk;
  #sidecar: Sidecar | null = null;
  #adjudicator: Adjudicator | null = null;
  #service: CrossbarService | null = null;
  /** Per QP: whether its connection is up (a partition breaks it until it heals). */
  readonly #connected: boolean[];
  /** Per QP: its subscription in this incarnation, if any. */
  #subs: ({ id: number; sink: StreamSink } | null)[];

  /** Fence a journal whose fsync waits this long (JournalSet's fencing); 0: off. */
  readonly #fenceAfterUs: number;
  /** Retention's keep window (µs); 0: off. */
  readonly #keepUs: number;
  #set: JournalSet | null = null;
  #retention: Retention | null = null;
  /** This incarnation's view of what each QP reported applied (by QP system id). */
  #reported = new Map<bigint, number>();
  /** Segments retention removed, over every incarnation. */
  removedSegments = 0;

  constructor(env: ServerEnv, host: SimHost, journals: number, fenceAfterUs = 0, keepUs = 0) {
    this.#env = env;
    this.host = host;
    this.#journals = journals;
    this.#fenceAfterUs = fenceAfterUs;
    this.#keepUs = keepUs;
    this.#connected = env.qps.map(() => true);
    this.#subs = env.qps.map(() => null);
    this.disk = new SimDisk(host, env.prng.fork("disk"), {
      fsync: env.fsync,
      bugAckBeforeFsync: env.bugs.journalAckBeforeFsync,
      ...(env.bugs.watermarkBoundLost === true
        ? { bugLosesAtCrash: watermark_bound_file_name }
        : {}),
    });
    if (keepUs > 0) for (let q = 0; q < env.qps.length; q++) this.#reportApplied(q);
  }

  /**
   * QP `q`'s applier tells the sidecar what it applied, every
   * `applied_report_interval_us`, over its connection (lost while it is cut
   * or the sidecar is down), as the real applier's APPLIED.
   */
  #reportApplied(q: number): void {
    const qp = this.#env.qps[q]!;
    const report = (): void => {
      if (this.#connected[q]) {
        const tau = qp.applied;
        this.#env.network.send(qp.host, this.host, this.#env.stream, () => {
          if (this.#subs[q] !== null && this.#subs[q] !== undefined) this.#report(q, tau);
        });
      }
      this.#env.world.schedule(qp.host, applied_report_interval_us, report);
    };
    this.#env.world.schedule(qp.host, applied_report_interval_us, report);
  }

  /** What QP `q` reported applied (an APPLIED, or a SUBSCRIBE's from_tau). */
  #report(q: number, tau: number): void {
    const id = BigInt(q + 1); // the QP's system identifier
    if (tau > (this.#reported.get(id) ?? -1)) this.#reported.set(id, tau);
  }

  get commitHost(): SimHost {
    return this.host;
  }

  async start(): Promise<void> {
    const env = this.#env;
    const host = this.host;
    const clock = host.clock;
    const buggify = env.buggify ?? undefined;
    const set = await JournalSet.open({
      dir: journal_dir,
      disk: this.disk,
      clock,
      journals: this.#journals,
      engine: env.journalEngine,
      preallocateBytes: sim_preallocate_bytes,
      watermarkBoundAheadUs: sim_watermark_bound_ahead_us,
      ...(this.#keepUs > 0 ? { segmentBytesMax: sim_segment_bytes_retention } : {}),
      buggify,
      fenceAfterUs: this.#fenceAfterUs,
    });
    this.#set = set;
    const horizon = startHorizon(clock.nowMicros(), set.removedThroughTau);
    const adjudicator = makeAdjudicator(env.engine, horizon, env.bugs);
    const sidecar = new Sidecar({
      journal: set,
      adjudicator,
      clock,
      timers: host.timers,
      logger: silent_logger,
      onFatal: (error) => env.onError("sidecar failed", error),
      buggify,
    });
    await sidecar.recover(set.readFrom(Math.max(0, horizon)));
    const service = new CrossbarService({
      journals: set.count,
      reader: set,
      engine: env.engine,
      buggify,
      onError: (_subscription, error) => env.onError("a subscription's catch-up failed", error),
    });
    set.listen(crossbarFeed(() => service, env));
    sidecar.start();
    if (this.#keepUs > 0) {
      const store = new QpProgressFile(this.disk, data_dir);
      const reported = new Map<bigint, number>();
      this.#reported = reported;
      const forget = env.bugs.retentionForgetsQps === true;
      const retention = new Retention({
        journals: set,
        clock,
        timers: host.timers,
        logger: simLogger(env, (fields) => {
          if (fields.event !== "journal_segments_removed") return;
          this.removedSegments += Number(fields.segments);
          env.world.trace(`retention ${String(fields.throughTau)} ${String(fields.segments)}`);
        }),
        store,
        saved: forget ? new Map() : await store.load(),
        qpApplied: () => (forget ? new Map() : reported),
        lowestSentTau: () => (forget ? undefined : service.lowestSentTau),
        intervalUs: Math.max(1_000, Math.floor(this.#keepUs / 4)),
        keepUs: this.#keepUs,
      });
      retention.start();
      this.#retention = retention;
    }
    this.#sidecar = sidecar;
    this.#adjudicator = adjudicator;
    this.#service = service;
    const incarnation = host.incarnation;
    const beat = (): void => {
      if (host.incarnation !== incarnation) return;
      set.heartbeat();
      host.timers.schedule(heartbeat_interval_us, beat);
    };
    host.timers.schedule(heartbeat_interval_us, beat);
    if (set.fencing) {
      // As src/sidecar/start.ts: look for stalled journals four times per fence interval.
      const every = Math.max(50, Math.floor(this.#fenceAfterUs / 4));
      const check = (): void => {
        if (host.incarnation !== incarnation) return;
        set.checkFences();
        host.timers.schedule(every, check);
      };
      host.timers.schedule(every, check);
    }
    // Every connected QP's applier (re)subscribes from what it applied.
    for (let q = 0; q < env.qps.length; q++) this.#subscribe(q);
    env.world.trace(`sidecar up ${set.lastTau}`);
  }

  #subscribe(q: number): void {
    const service = this.#service;
    if (service === null || !this.#connected[q] || this.#subs[q] !== null) return;
    const qp = this.#env.qps[q]!;
    const { generation, fromTau } = qp.resubscribe();
    const sink = new StreamSink(this.#env, this.host, qp, generation);
    const id = service.subscribe({
      fromTau: fromTau + (this.#env.bugs.applierResumesLateUs ?? 0),
      ranges: [{ lo: new Uint8Array(0), hi: new Uint8Array(0) }],
      sink,
    });
    this.#subs[q] = { id, sink };
    this.#report(q, fromTau);
    this.#env.world.trace(`subscribe qp${q} ${fromTau}`);
  }

  /** QP `q`'s connection broke (both ends notice): its subscription ends. */
  disconnect(q: number): void {
    this.#connected[q] = false;
    const sub = this.#subs[q];
    if (sub === null || sub === undefined) return;
    sub.sink.break();
    this.#service?.unsubscribe(sub.id);
    this.#subs[q] = null;
  }

  /** QP `q` reconnects and resubscribes from what it applied (or at the sidecar's next start). */
  connect(q: number): void {
    this.#connected[q] = true;
    const qp = this.#env.qps[q]!;
    this.#env.network.send(qp.host, this.host, this.#env.stream, () => this.#subscribe(q));
  }

  commit(request: CommitRequest, reply: (r: CommitReply | ErrorMessage) => void): void {
    const sidecar = this.#sidecar;
    if (sidecar === null) return;
    const incarnation = this.host.incarnation;
    void sidecar.commit(request).then((r) => {
      if (this.host.incarnation === incarnation) reply(r);
    });
  }

  stuck(): string[] {
    return [];
  }

  /** Journals fenced so far in this incarnation. */
  get fences(): number {
    return this.#set?.fences ?? 0;
  }

  /** The host lost power: the processes are gone, the disk keeps what it kept. */
  crash(): void {
    this.#env.world.crash(this.host);
    this.disk.crash();
    this.close();
  }

  async durableRecords(): Promise<DurableView> {
    const set = await JournalSet.open({
      dir: journal_dir,
      disk: this.disk,
      clock: this.host.clock,
      journals: this.#journals,
      engine: this.#env.journalEngine,
    });
    try {
      const removedThroughTau = set.removedThroughTau;
      return { records: await collect(set.readAll(removedThroughTau)), removedThroughTau };
    } finally {
      await set.close().catch(() => undefined);
    }
  }

  close(): void {
    // A crashed host's pass may hang on its dead disk handles: no waiting for it.
    void this.#retention?.stop();
    this.#retention = null;
    this.#service?.close();
    this.#adjudicator?.close();
    this.#service = null;
    this.#adjudicator = null;
    this.#sidecar = null;
    this.#subs = this.#subs.map(() => null);
  }
}

// ---- every journal on its own host -------------------------------------------

interface AppendMsg {
  id: number;
  txnId: Uint8Array;
  tauStart: number;
  body: Uint8Array;
}

/** One journal host: a JournalSet of one journal on its own disk. */
class JournalHost {
  readonly host: SimHost;
  readonly index: number;
  readonly disk: SimDisk;
  set: JournalSet | null = null;
  /** fenced design: append ids by tau, waiting for the crossbar's verdict. */
  readonly awaiting = new Map<number, number>();
  /**
   * The journal host's connections to the crossbar and to the adjudicator:
   * up or broken, and which connection it is (a message sent over an
   * earlier one is never delivered, as with a new TCP connection).
   */
  crossbarLink = true;
  crossbarConn = 0;
  adjudicatorLink = true;
  adjudicatorConn = 0;

  constructor(env: ServerEnv, host: SimHost, index: number) {
    this.host = host;
    this.index = index;
    this.disk = new SimDisk(host, env.prng.fork(`disk${index}`), {
      fsync: env.fsync,
      bugAckBeforeFsync: env.bugs.journalAckBeforeFsync,
      ...(env.bugs.watermarkBoundLost === true
        ? { bugLosesAtCrash: watermark_bound_file_name }
        : {}),
    });
  }
}

interface Outstanding {
  readonly entry: { txnId: Uint8Array; tauStart: number; body: Uint8Array };
  readonly resolve: (tau: number) => void;
  /** Journals holding a copy whose verdict has not come back. */
  readonly copies: Set<number>;
  done: boolean;
  /** Where the transaction entered the order, once done. */
  tau: number;
}

export class SplitCluster implements SimServer {
  readonly #env: ServerEnv;
  readonly #fenced: boolean;
  readonly adjudicatorHost: SimHost;
  readonly crossbarHost: SimHost;
  readonly journalHosts: JournalHost[];
  #sidecar: Sidecar | null = null;
  #adjudicator: Adjudicator | null = null;
  #service: CrossbarService | null = null;
  // Router state (on the adjudicator host).
  readonly #outstanding = new Map<number, Outstanding>();
  readonly #perJournal: number[];
  readonly #routerFenced: boolean[];
  /** The router's connection to the journal host is down (a crash, a partition). */
  readonly #routerDown: boolean[];
  #nextAppend = 1;
  #rotate = 0;
  // Crossbar state (on the crossbar host), fenced design.
  readonly #lastHeard: number[];
  /** W_j as the merge has it: the highest watermark or tau pushed for j. */
  readonly #pushed: number[];
  readonly #fence: (number | null)[];
  /** The tau at which each transaction entered the order (the first copy the crossbar accepted). */
  readonly #accepted = new Map<number, number>();
  fences = 0;
  redirects = 0;

  readonly #fenceAfterUs: number;
  readonly #fenceCheckUs: number;

  constructor(
    env: ServerEnv,
    journals: JournalHostSpec,
    fenced: boolean,
    fenceAfterUs = fence_after_us,
    fenceCheckUs = fence_check_interval_us,
  ) {
    this.#fenceAfterUs = fenceAfterUs;
    this.#fenceCheckUs = fenceCheckUs;
    this.#env = env;
    this.#fenced = fenced;
    this.adjudicatorHost = journals.adjudicator;
    this.crossbarHost = journals.crossbar;
    this.journalHosts = journals.hosts.map((host, index) => new JournalHost(env, host, index));
    const n = this.journalHosts.length;
    this.#perJournal = new Array<number>(n).fill(0);
    this.#routerFenced = new Array<boolean>(n).fill(false);
    this.#routerDown = new Array<boolean>(n).fill(false);
    this.#lastHeard = new Array<number>(n).fill(0);
    this.#pushed = new Array<number>(n).fill(-1);
    this.#fence = new Array<number | null>(n).fill(null);
  }

  get commitHost(): SimHost {
    return this.adjudicatorHost;
  }

  async start(): Promise<void> {
    const env = this.#env;
    // No buggify here: this crossbar host keeps no journal copy, so it cannot
    // send a subscriber back to catch up ("crossbar.fall-behind").
    const service = new CrossbarService({
      journals: this.journalHosts.length,
      reader: {
        readAll(): AsyncIterable<DurableEntry> {
          throw new Error("the simulated crossbar host keeps no journal copy: no catch-up");
        },
      },
      engine: env.engine,
    });
    this.#service = service;
    for (const qp of env.qps) {
      const { generation } = qp.resubscribe();
      service.subscribe({
        fromTau: 0,
        ranges: [{ lo: new Uint8Array(0), hi: new Uint8Array(0) }],
        sink: new StreamSink(env, this.crossbarHost, qp, generation),
      });
    }
    for (const jh of this.journalHosts) await this.#startJournal(jh);
    const clock = this.adjudicatorHost.clock;
    const horizon = horizonAt(clock.nowMicros());
    this.#adjudicator = makeAdjudicator(env.engine, horizon, env.bugs);
    // The router cannot tell the tau before a commit's: prev_tau 0 (unknown).
    const router: CommitJournal = {
      appendPlaced: async (entry) => ({ tau: await this.#route(entry), prevTau: 0 }),
    };
    this.#sidecar = new Sidecar({
      journal: router,
      adjudicator: this.#adjudicator,
      clock,
      timers: this.adjudicatorHost.timers,
      logger: silent_logger,
      onFatal: (error) => env.onError("sidecar failed", error),
      buggify: env.buggify ?? undefined,
    });
    this.#sidecar.start();
    if (this.#fenced) {
      const check = (): void => {
        this.#checkFences();
        this.crossbarHost.timers.schedule(this.#fenceCheckUs, check);
      };
      this.crossbarHost.timers.schedule(this.#fenceCheckUs, check);
    }
  }

  commit(request: CommitRequest, reply: (r: CommitReply | ErrorMessage) => void): void {
    void this.#sidecar?.commit(request).then(reply);
  }

  async durableRecords(): Promise<null> {
    return null;
  }

  stuck(): string[] {
    const out: string[] = [];
    for (const [id, o] of this.#outstanding) {
      if (!o.done)
        out.push(
          `append ${id} (txn ${txnOf(o.entry.txnId)}) never placed; copies on journals ${[...o.copies].join(",") || "none"}`,
        );
    }
    return out;
  }

  close(): void {
    this.#service?.close();
    this.#adjudicator?.close();
  }

  async #startJournal(jh: JournalHost): Promise<void> {
    const env = this.#env;
    const set = await JournalSet.open({
      dir: journal_dir,
      disk: jh.disk,
      clock: jh.host.clock,
      journals: 1,
      engine: env.journalEngine,
      preallocateBytes: sim_preallocate_bytes,
      watermarkBoundAheadUs: sim_watermark_bound_ahead_us,
      buggify: env.buggify ?? undefined,
    });
    jh.set = set;
    set.listen({
      durable: (_journal: number, entries: readonly JournalEntry[], watermark: number) => {
        const copy = entries.map((e) => ({
          tauCommit: e.tauCommit,
          txn: txnOf(e.txnId),
          body: e.body,
        }));
        this.#crossbarSend(jh, true, () => this.#onDurable(jh.index, copy, watermark));
      },
      watermarks: (moves) => {
        const watermark = moves[moves.length - 1]!.watermark;
        this.#crossbarSend(jh, true, () => this.#onWatermark(jh.index, watermark));
      },
    });
    const beat = (): void => {
      set.heartbeat();
      jh.host.timers.schedule(heartbeat_interval_us, beat);
    };
    jh.host.timers.schedule(heartbeat_interval_us, beat);
    this.#env.world.trace(`journal ${jh.index} up ${set.lastTau}`);
  }

  /** Sends over journal host `jh`'s connection to the crossbar (either way); lost once it broke. */
  #crossbarSend(jh: JournalHost, toCrossbar: boolean, deliver: () => void): void {
    const conn = jh.crossbarConn;
    const [from, to] = toCrossbar ? [jh.host, this.crossbarHost] : [this.crossbarHost, jh.host];
    this.#env.network.send(from, to, this.#env.stream, () => {
      if (jh.crossbarLink && jh.crossbarConn === conn) deliver();
    });
  }

  /** Sends over journal host `jh`'s connection to the adjudicator (either way); lost once it broke. */
  #adjudicatorSend(jh: JournalHost, toAdjudicator: boolean, deliver: () => void): void {
    const conn = jh.adjudicatorConn;
    const [from, to] = toAdjudicator
      ? [jh.host, this.adjudicatorHost]
      : [this.adjudicatorHost, jh.host];
    this.#env.network.send(from, to, this.#env.stream, () => {
      if (jh.adjudicatorLink && jh.adjudicatorConn === conn) deliver();
    });
  }

  // ---- adjudicator host: the router behind the Sidecar's CommitJournal ----------

  #route(entry: { txnId: Uint8Array; tauStart: number; body: Uint8Array }): Promise<number> {
    return new Promise<number>((resolve) => {
      const id = this.#nextAppend++;
      const outstanding: Outstanding = { entry, resolve, copies: new Set(), done: false, tau: -1 };
      this.#outstanding.set(id, outstanding);
      this.#sendCopy(id, outstanding, -1);
    });
  }

  /** Sends a copy to the journal with the fewest appends outstanding, skipping fenced ones and `avoid`. */
  /**
   * Sends a copy to the available journal with the fewest appends
   * outstanding, skipping `avoid`; with none available, to a fenced one the
   * router is still connected to (it may rejoin); with none connected, to
   * none: the commit waits until a journal comes back (#redirectStranded).
   */
  #sendCopy(id: number, outstanding: Outstanding, avoid: number): boolean {
    const n = this.journalHosts.length;
    let best = -1;
    for (let k = 0; k < n; k++) {
      const j = (this.#rotate + k) % n;
      if (j === avoid || this.#unavailable(j) || outstanding.copies.has(j)) continue;
      if (best < 0 || this.#perJournal[j]! < this.#perJournal[best]!) best = j;
    }
    for (let k = 1; best < 0 && k <= n; k++) {
      const j = (avoid + k) % n;
      if (!this.#routerDown[j]! && !outstanding.copies.has(j)) best = j;
    }
    if (best < 0) return false;
    this.#rotate = (this.#rotate + 1) % n;
    outstanding.copies.add(best);
    this.#perJournal[best]! += 1;
    const jh = this.journalHosts[best]!;
    const msg: AppendMsg = {
      id,
      txnId: outstanding.entry.txnId,
      tauStart: outstanding.entry.tauStart,
      body: outstanding.entry.body,
    };
    this.#adjudicatorSend(jh, false, () => this.#onAppend(jh, msg));
    return true;
  }

  #unavailable(journal: number): boolean {
    return this.#routerFenced[journal]! || this.#routerDown[journal]!;
  }

  /**
   * The crossbar's verdict on one copy: `placed` is the tau at which the
   * transaction entered the order (this copy's, or an earlier copy's on
   * another journal whose verdict was lost), or null when it did not.
   */
  #onVerdict(id: number, journal: number, placed: number | null): void {
    const outstanding = this.#outstanding.get(id);
    if (outstanding === undefined || !outstanding.copies.has(journal)) return;
    this.#perJournal[journal]! -= 1;
    outstanding.copies.delete(journal);
    if (placed !== null) {
      if (outstanding.done) {
        if (outstanding.tau !== placed)
          this.#env.onError(
            "router",
            new Error(`commit ${id} placed twice: at ${outstanding.tau} and ${placed}`),
          );
      } else {
        outstanding.done = true;
        outstanding.tau = placed;
        outstanding.resolve(placed);
      }
    } else if (!outstanding.done && outstanding.copies.size === 0) {
      if (this.#sendCopy(id, outstanding, journal)) this.redirects += 1;
    }
    if (outstanding.done && outstanding.copies.size === 0) this.#outstanding.delete(id);
  }

  #onFenced(journal: number, fenced: boolean): void {
    this.#routerFenced[journal] = fenced;
    if (fenced) this.#redirectFrom(journal);
    else this.#redirectStranded();
  }

  /**
   * `journal` is fenced or cut off: its commits may wait a whole stall, or
   * their verdicts never come. Send them to another journal now; the
   * crossbar places one copy and answers the others with its tau.
   */
  #redirectFrom(journal: number): void {
    for (const [id, outstanding] of this.#outstanding) {
      if (outstanding.done || !outstanding.copies.has(journal)) continue;
      if (this.#routerDown[journal]!) {
        // No verdict can come over a broken connection: that copy is gone for the router.
        outstanding.copies.delete(journal);
        this.#perJournal[journal]! -= 1;
      }
      if ([...outstanding.copies].every((j) => this.#unavailable(j))) {
        if (this.#sendCopy(id, outstanding, journal)) this.redirects += 1;
      }
    }
  }

  /** A journal is available again: commits whose every copy sits on an unavailable journal go to it. */
  #redirectStranded(): void {
    for (const [id, outstanding] of this.#outstanding) {
      if (outstanding.done) continue;
      if ([...outstanding.copies].every((j) => this.#unavailable(j))) {
        if (this.#sendCopy(id, outstanding, -1)) this.redirects += 1;
      }
    }
  }

  /** The router's connection to journal host `journal` broke or came back. */
  #routerLink(journal: number, up: boolean): void {
    this.#routerDown[journal] = !up;
    if (up) this.#redirectStranded();
    else if (this.#env.bugs.routerKeepsBrokenCopies !== true) this.#redirectFrom(journal);
  }

  // ---- journal hosts ----------------------------------------------------------

  #onAppend(jh: JournalHost, msg: AppendMsg): void {
    const set = jh.set;
    if (set === null) return;
    const env = this.#env;
    void set.append({ txnId: msg.txnId, tauStart: msg.tauStart, body: msg.body }).then(
      (tau) => {
        if (this.#fenced) {
          jh.awaiting.set(tau, msg.id);
        } else {
          this.#adjudicatorSend(jh, true, () => this.#onVerdict(msg.id, jh.index, tau));
        }
      },
      (error: unknown) => env.onError(`journal ${jh.index} append failed`, error),
    );
  }

  /** fenced design: the crossbar's verdicts on durable records reach their journal host. */
  #onVerdicts(
    jh: JournalHost,
    verdicts: readonly { tau: number; placed: number | null }[],
    fence: number | null,
  ): void {
    for (const { tau, placed } of verdicts) {
      const id = jh.awaiting.get(tau);
      if (id === undefined) continue;
      jh.awaiting.delete(tau);
      this.#adjudicatorSend(jh, true, () => this.#onVerdict(id, jh.index, placed));
    }
    if (fence === null) return;
    // W_j as the merge has it: every verdict on a record at or below it came before this message,
    // so a record still waiting there never reached the crossbar (a broken connection lost it)
    // and never will be placed.
    jh.set?.journal(0).raiseWatermark(fence);
    for (const [tau, id] of jh.awaiting) {
      if (tau > fence) continue;
      jh.awaiting.delete(tau);
      this.#adjudicatorSend(jh, true, () => this.#onVerdict(id, jh.index, null));
    }
  }

  // ---- crossbar host ----------------------------------------------------------

  #onDurable(
    journal: number,
    entries: { tauCommit: number; txn: number; body: Uint8Array }[],
    watermark: number,
  ): void {
    const service = this.#service;
    if (service === null) return;
    const env = this.#env;
    const bump = env.bugs.crossbarWatermarkBumpUs ?? 0;
    this.#lastHeard[journal] = env.world.now;
    if (!this.#fenced) {
      try {
        service.durable(journal, entries, watermark + bump);
      } catch (error) {
        env.onError(`crossbar rejected journal ${journal}`, error);
      }
      return;
    }
    const verdicts: { tau: number; placed: number | null }[] = [];
    const accepted: typeof entries = [];
    for (const entry of entries) {
      // A copy of a commit already placed is answered with that place; one below the fence is not placed.
      const earlier =
        this.#env.bugs.crossbarPlacesEveryCopy === true ? undefined : this.#accepted.get(entry.txn);
      if (earlier !== undefined) {
        verdicts.push({ tau: entry.tauCommit, placed: earlier });
      } else if (entry.tauCommit > this.#pushed[journal]!) {
        this.#accepted.set(entry.txn, entry.tauCommit);
        accepted.push(entry);
        this.#pushed[journal] = entry.tauCommit;
        verdicts.push({ tau: entry.tauCommit, placed: entry.tauCommit });
      } else {
        verdicts.push({ tau: entry.tauCommit, placed: null });
      }
    }
    const pushedWatermark = Math.max(watermark, this.#pushed[journal]!);
    try {
      if (accepted.length > 0) {
        service.durable(journal, accepted, pushedWatermark + bump);
      } else if (pushedWatermark > this.#pushed[journal]!) {
        service.watermarks([{ journal, watermark: pushedWatermark + bump }]);
      }
    } catch (error) {
      env.onError(`crossbar rejected journal ${journal}`, error);
    }
    this.#pushed[journal] = pushedWatermark;
    const fence = this.#heard(journal, watermark);
    const jh = this.journalHosts[journal]!;
    this.#crossbarSend(jh, false, () => this.#onVerdicts(jh, verdicts, fence));
    this.#raiseFenced();
  }

  #onWatermark(journal: number, watermark: number): void {
    const service = this.#service;
    if (service === null) return;
    const env = this.#env;
    const bump = env.bugs.crossbarWatermarkBumpUs ?? 0;
    this.#lastHeard[journal] = env.world.now;
    if (watermark > this.#pushed[journal]!) {
      this.#pushed[journal] = watermark;
      try {
        service.watermarks([{ journal, watermark: watermark + bump }]);
      } catch (error) {
        env.onError("crossbar rejected a watermark", error);
      }
    }
    if (!this.#fenced) return;
    const fence = this.#heard(journal, watermark);
    if (fence !== null) {
      const jh = this.journalHosts[journal]!;
      this.#crossbarSend(jh, false, () => this.#onVerdicts(jh, [], fence));
    }
    this.#raiseFenced();
  }

  /**
   * A fenced journal that reported a watermark at or above its fence
   * rejoins; else its fence moves up to W_j as the merge has it. Either way
   * the journal is told W_j (returned), so it raises its watermark past it
   * and gives up on what it sent at or below it that was never judged.
   */
  #heard(journal: number, watermark: number): number | null {
    const fence = this.#fence[journal];
    if (fence === null) return null;
    const current = this.#pushed[journal]!;
    if (watermark >= fence) {
      this.#fence[journal] = null;
      this.#env.world.trace(`unfence ${journal}`);
      this.#env.network.send(this.crossbarHost, this.adjudicatorHost, this.#env.stream, () =>
        this.#onFenced(journal, false),
      );
    } else {
      this.#fence[journal] = current;
    }
    return current;
  }

  #checkFences(): void {
    const now = this.#env.world.now;
    for (let j = 0; j < this.journalHosts.length; j++) {
      if (this.#fence[j] === null && now - this.#lastHeard[j]! > this.#fenceAfterUs)
        this.#fenceNow(j);
    }
    this.#raiseFenced();
  }

  #fenceNow(j: number): void {
    if (this.#fence[j] !== null) return;
    this.fences += 1;
    this.#fence[j] = this.#pushed[j]!;
    this.#env.world.trace(`fence ${j}`);
    this.#env.network.send(this.crossbarHost, this.adjudicatorHost, this.#env.stream, () =>
      this.#onFenced(j, true),
    );
  }

  /**
   * The crossbar's connection to journal host `j` broke: nothing more crosses
   * it, and the crossbar fences the journal at once. It rejoins as after a
   * stall: once it reconnected and reported a watermark above its fence.
   */
  #crossbarLinkDown(j: number): void {
    const jh = this.journalHosts[j]!;
    jh.crossbarLink = false;
    jh.crossbarConn += 1;
    this.#fenceNow(j);
    this.#raiseFenced();
  }

  /** The router's connection to journal host `j` broke or came back. */
  #adjudicatorLink(j: number, up: boolean): void {
    const jh = this.journalHosts[j]!;
    jh.adjudicatorLink = up;
    if (!up) jh.adjudicatorConn += 1;
    this.#routerLink(j, up);
  }

  // ---- faults on journal hosts (fenced designs) ---------------------------------

  /** Journal host `j` loses power: its processes and unsynced writes are gone, its connections break. */
  crashJournal(j: number): void {
    simAssert(this.#fenced, "journal host crashes need a design that fences (fenced, hedged)");
    const jh = this.journalHosts[j]!;
    this.#env.world.crash(jh.host);
    jh.disk.crash();
    jh.set = null;
    jh.awaiting.clear();
    this.#crossbarLinkDown(j);
    this.#adjudicatorLink(j, false);
  }

  /** Journal host `j` boots: it reopens its journal (replay) and reconnects. */
  restartJournal(j: number): void {
    const jh = this.journalHosts[j]!;
    const world = this.#env.world;
    world.restart(jh.host);
    world.schedule(jh.host, 0, () => {
      void this.#startJournal(jh).then(
        () => {
          // Connected again: the crossbar hears its watermarks (and fences it until they pass
          // the fence); the router sends it commits.
          jh.crossbarLink = true;
          this.#adjudicatorLink(j, true);
        },
        (error: unknown) => this.#env.onError(`journal ${j} restart failed`, error),
      );
    });
  }

  /**
   * Partitions journal host `j` from the crossbar and/or the adjudicator for
   * `durationUs`: the network drops what crosses, and both ends see the
   * connection break (the crossbar fences the journal, the router sends its
   * commits elsewhere); when it heals they reconnect.
   */
  partitionJournal(
    j: number,
    fromCrossbar: boolean,
    fromAdjudicator: boolean,
    durationUs: number,
  ): void {
    simAssert(this.#fenced, "journal host partitions need a design that fences (fenced, hedged)");
    const jh = this.journalHosts[j]!;
    const world = this.#env.world;
    if (fromCrossbar) {
      this.#env.network.partition(jh.host, this.crossbarHost, durationUs);
      this.#crossbarLinkDown(j);
    }
    if (fromAdjudicator) {
      this.#env.network.partition(jh.host, this.adjudicatorHost, durationUs);
      this.#adjudicatorLink(j, false);
    }
    world.schedule(null, durationUs, () => {
      if (fromCrossbar) jh.crossbarLink = true;
      if (fromAdjudicator) this.#adjudicatorLink(j, true);
    });
  }

  /** Journal hosts that are up and fully connected (the ones a fault may pick). */
  healthyJournals(): number[] {
    const out: number[] = [];
    for (const jh of this.journalHosts)
      if (jh.host.up && jh.set !== null && jh.crossbarLink && jh.adjudicatorLink)
        out.push(jh.index);
    return out;
  }

  /** Fenced journals stop holding back the global watermark: their W_j follows the highest live one. */
  #raiseFenced(): void {
    let high = -1;
    let any = false;
    for (let j = 0; j < this.journalHosts.length; j++) {
      if (this.#fence[j] === null) {
        if (this.#pushed[j]! > high) high = this.#pushed[j]!;
      } else {
        any = true;
      }
    }
    if (!any || high < 0) return;
    const moves: { journal: number; watermark: number }[] = [];
    for (let j = 0; j < this.journalHosts.length; j++) {
      if (this.#fence[j] !== null && this.#pushed[j]! < high) {
        this.#pushed[j] = high;
        moves.push({ journal: j, watermark: high });
      }
    }
    if (moves.length === 0) return;
    try {
      this.#service?.watermarks(moves);
    } catch (error) {
      this.#env.onError("crossbar rejected a fenced journal's watermark", error);
    }
  }
}

export interface JournalHostSpec {
  adjudicator: SimHost;
  crossbar: SimHost;
  hosts: SimHost[];
}
