/**
 * The crossbar service (docs/crossbar.md "The service", docs/replication.md
 * §3): follows every journal of the sidecar, merges their durable records into
 * one total order with `CrossbarMerge` (the native loser tree, or its twin),
 * and fans each released record out to the subscriptions.
 *
 * - Release (invariant 3): a record leaves only when its tau is at or below
 *   `min_j W_j`, in (tau, journal id) order; the merge checks every journal's
 *   promise. The release point is the global watermark after a full release:
 *   every record at or below it has been handed to every live subscription.
 * - Live subscriptions get RECORD frames as records are released and a
 *   WATERMARK whenever the release point moves (and at each `renewLeases`).
 *   Each has a bounded buffer: the bytes its sink holds and the peer has not
 *   taken. One that goes over `subscription_buffer_bytes_default` (its socket
 *   is not draining) leaves the live stream and goes to catch-up, so it never
 *   blocks the others and nothing is dropped.
 * - Catch-up reads every journal from disk (`readAll(after, upTo)`, merged by
 *   (tau, journal id)) from what the subscription has been sent up to the
 *   release point, waiting for its sink to drain as it goes; when nothing is
 *   left between it and the release point it joins the live stream in the
 *   same turn, so it sees no gap and no duplicate.
 *
 * The service is sans-I/O: sinks, the journal reader and the lease source are
 * injected (the sidecar's server supplies sockets; tests supply their own).
 */
import { buggify_off, type Buggify } from "../buggify";
import { decodeCommitBody, encodeCommitBody, encodeMessage, MessageType } from "../protocol";
import type { SubscribeRange, Write } from "../protocol";
import { compareKeys, crossbar_buffer_bytes_max, decodeEntries, encodeBatch } from "./format";
import type { CrossbarRecord, KeyRange } from "./format";
import { CrossbarMerge } from "./merge";
import type { EngineKind } from "./merge";

/** Bytes a live subscription may hold unsent before it moves to catch-up. */
export const subscription_buffer_bytes_default = 8 * 1024 * 1024;
/** Records released per merge call; keeps the internal buffer far below its bound. */
const release_records_per_call = 32;
const empty_key = new Uint8Array(0);

/** Where a subscription's frames go: a socket in the sidecar, anything in tests. */
export interface SubscriberSink {
  /** Queues one whole frame; never drops it. */
  write(frame: Uint8Array): void;
  /** Bytes queued that the peer has not taken yet. */
  readonly bufferedBytes: number;
  /** Calls `callback` once the queue has drained (or the sink closed). */
  onDrain(callback: () => void): void;
  readonly closed: boolean;
}

/** One durable journal entry, as the reader returns it. */
export interface DurableEntry {
  tauCommit: number;
  journal: number;
  body: Uint8Array;
}

/** Reads the journals back for catch-up (the sidecar's `JournalSet.readAll`). */
export interface JournalReader {
  /** Entries with afterTau < tau <= upToTau of every journal, merged by (tau, journal). */
  readAll(afterTau: number, upToTau: number): AsyncIterable<DurableEntry>;
}

export interface CrossbarServiceOptions {
  journals: number;
  reader: JournalReader;
  engine?: EngineKind;
  bufferBytesMax?: number;
  /** lease_until_us for the next WATERMARK to a subscription (0: no lease). Default 0. */
  leaseFor?: (subscription: number) => number;
  /** A catch-up failed (a journal read error): the subscription is closed. */
  onError?: (subscription: number, error: unknown) => void;
  /** Simulation-only fault points (src/buggify). Default off. */
  buggify?: Buggify;
}

export type SubscriptionMode = "catchup" | "live" | "closed";

export interface SubscriptionOptions {
  /** Records with tau > fromTau are sent. */
  fromTau: number;
  ranges: readonly SubscribeRange[];
  sink: SubscriberSink;
}

export class CrossbarServiceError extends Error {
  readonly code: "invalid_argument" | "invariant" | "closed";

  constructor(code: CrossbarServiceError["code"], message: string) {
    super(message);
    this.name = "CrossbarServiceError";
    this.code = code;
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CrossbarServiceError("invariant", message);
}

interface Subscription {
  readonly id: number;
  readonly ranges: readonly KeyRange[];
  /** One range covering every key: bodies pass unchanged. */
  readonly all: boolean;
  readonly sink: SubscriberSink;
  mode: SubscriptionMode;
  /** Every record with tau <= sentTau has been written to the sink (or was not in its ranges). */
  sentTau: number;
  /**
   * Journal of the last record sent at `sentTau`: two journals may assign one
   * tau, and the order is (tau, journal id). MAX_SAFE_INTEGER: every journal's.
   */
  sentJournal: number;
  /** The last WATERMARK written, -1 if none. */
  watermarkTau: number;
  /** A WATERMARK went out since the last `renewLeases`. */
  renewed: boolean;
}

/** The writes of `body` inside `ranges`, re-encoded; null when none is. */
function filterBody(body: Uint8Array, ranges: readonly KeyRange[]): Uint8Array | null {
  const decoded = decodeCommitBody(body);
  const writes: Write[] = decoded.writes.filter((write) =>
    ranges.some(
      ([lo, hi]) =>
        compareKeys(write.key, lo) >= 0 && (hi.length === 0 || compareKeys(write.key, hi) < 0),
    ),
  );
  if (writes.length === 0) return null;
  return encodeCommitBody({ ...decoded, writes });
}

export class CrossbarService {
  readonly #merge: CrossbarMerge;
  readonly #reader: JournalReader;
  readonly #bufferBytesMax: number;
  readonly #leaseFor: (subscription: number) => number;
  readonly #onError: (subscription: number, error: unknown) => void;
  readonly #buggify: Buggify;
  readonly #subscriptions = new Map<number, Subscription>();
  #nextId = 1;
  /** Every record at or below it has been released and fanned out; -1 until every journal published. */
  #releasePoint = -1;
  #released = 0;
  #fellBehind = 0;
  #closed = false;

  constructor(options: CrossbarServiceOptions) {
    const bufferBytesMax = options.bufferBytesMax ?? subscription_buffer_bytes_default;
    if (!Number.isSafeInteger(bufferBytesMax) || bufferBytesMax <= 0) {
      throw new CrossbarServiceError(
        "invalid_argument",
        `bufferBytesMax must be positive, got ${bufferBytesMax}`,
      );
    }
    this.#bufferBytesMax = bufferBytesMax;
    this.#reader = options.reader;
    this.#leaseFor = options.leaseFor ?? (() => 0);
    this.#onError = options.onError ?? (() => undefined);
    this.#buggify = options.buggify ?? buggify_off;
    // One internal subscriber over every key: the merge orders, the service routes.
    this.#merge = new CrossbarMerge({
      journals: options.journals,
      subscribers: [
        { ranges: [[empty_key, empty_key]], bufferBytesMax: crossbar_buffer_bytes_max },
      ],
      engine: options.engine,
    });
  }

  get engine(): EngineKind {
    return this.#merge.engine;
  }

  /** Every record at or below it has been released; -1 until every journal published a watermark. */
  get releasePoint(): number {
    return this.#releasePoint;
  }

  /** Records released since start. */
  get releasedCount(): number {
    return this.#released;
  }

  /** Times a live subscription went over its buffer and moved back to catch-up. */
  get fellBehindCount(): number {
    return this.#fellBehind;
  }

  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  mode(subscription: number): SubscriptionMode {
    return this.#subscriptions.get(subscription)?.mode ?? "closed";
  }

  // ---- the journals' side (JournalSetListener) ------------------------------

  /** Durable entries of one journal, in tau order, with its watermark after them. */
  durable(
    journal: number,
    entries: readonly { tauCommit: number; body: Uint8Array }[],
    watermark: number,
  ): void {
    if (this.#closed) return;
    const records: CrossbarRecord[] = entries.map((entry) => ({
      tau: entry.tauCommit,
      txn: 0,
      writes: [{ key: empty_key, payload: entry.body }],
    }));
    this.#merge.pushBatch(journal, encodeBatch(records), watermark);
    this.pump();
  }

  /** Watermarks that moved without new entries. */
  watermarks(moves: readonly { journal: number; watermark: number }[]): void {
    if (this.#closed) return;
    for (const { journal, watermark } of moves) this.#merge.advanceWatermark(journal, watermark);
    this.pump();
  }

  /** Releases everything at or below the global watermark and fans it out. */
  pump(): void {
    if (this.#closed) return;
    for (;;) {
      const summary = this.#merge.release(release_records_per_call);
      const released = summary.released;
      if (released > 0) {
        const bytes = this.#merge.drain(0);
        for (const entry of decodeEntries(bytes)) {
          assert(entry.tau > this.#releasePoint, "released a record at or below the release point");
          assert(entry.writes.length === 1, "one payload per record");
          this.#fanOut(entry.tau, entry.journal, entry.writes[0]!.payload);
          this.#released += 1;
        }
      }
      if (released < release_records_per_call) break;
    }
    assert(
      this.#merge.subscriberState(0).overflowed === false,
      "internal crossbar buffer overflowed",
    );
    const point = this.#merge.globalWatermark;
    if (point > this.#releasePoint) {
      this.#releasePoint = point;
      for (const subscription of this.#subscriptions.values()) {
        if (subscription.mode === "live") this.#sendWatermark(subscription);
      }
    }
  }

  /** Sends a WATERMARK (with a fresh lease) to every live subscription that got none since the last call. */
  renewLeases(): void {
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.mode === "live" && !subscription.renewed && this.#releasePoint >= 0) {
        this.#sendWatermark(subscription);
      }
      subscription.renewed = false;
    }
  }

  // ---- subscriptions --------------------------------------------------------

  /** Starts a subscription in catch-up; returns its id. */
  subscribe(options: SubscriptionOptions): number {
    if (this.#closed) throw new CrossbarServiceError("closed", "crossbar service is closed");
    if (!Number.isSafeInteger(options.fromTau) || options.fromTau < 0) {
      throw new CrossbarServiceError(
        "invalid_argument",
        `fromTau must be a non-negative integer, got ${options.fromTau}`,
      );
    }
    if (options.ranges.length === 0) {
      throw new CrossbarServiceError("invalid_argument", "a subscription needs at least one range");
    }
    for (const { lo, hi } of options.ranges) {
      if (hi.length > 0 && compareKeys(lo, hi) >= 0) {
        throw new CrossbarServiceError(
          "invalid_argument",
          "a range needs lo < hi (or an empty hi)",
        );
      }
    }
    const id = this.#nextId++;
    const ranges = options.ranges.map((r): KeyRange => [r.lo, r.hi]);
    const subscription: Subscription = {
      id,
      ranges,
      all: ranges.some(([lo, hi]) => lo.length === 0 && hi.length === 0),
      sink: options.sink,
      mode: "catchup",
      sentTau: options.fromTau,
      sentJournal: Number.MAX_SAFE_INTEGER,
      watermarkTau: -1,
      renewed: false,
    };
    this.#subscriptions.set(id, subscription);
    void this.#catchUp(subscription);
    return id;
  }

  /** The lowest tau every subscription has been sent (records above it may still be read back); undefined with none. */
  get lowestSentTau(): number | undefined {
    let lowest: number | undefined;
    for (const subscription of this.#subscriptions.values()) {
      if (lowest === undefined || subscription.sentTau < lowest) lowest = subscription.sentTau;
    }
    return lowest;
  }

  /** Ends a subscription (its connection closed). */
  unsubscribe(subscription: number): void {
    const found = this.#subscriptions.get(subscription);
    if (found === undefined) return;
    found.mode = "closed";
    this.#subscriptions.delete(subscription);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const subscription of this.#subscriptions.values()) subscription.mode = "closed";
    this.#subscriptions.clear();
    this.#merge.close();
  }

  // ---- internals ------------------------------------------------------------

  #fanOut(tau: number, journal: number, body: Uint8Array): void {
    let shared: Uint8Array | null = null;
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.mode !== "live") continue;
      if (tau < subscription.sentTau) continue;
      if (tau === subscription.sentTau && journal <= subscription.sentJournal) continue;
      if (subscription.sink.closed) {
        this.unsubscribe(subscription.id);
        continue;
      }
      let frame: Uint8Array | null;
      if (subscription.all) {
        frame = shared ??= encodeMessage({
          type: MessageType.Record,
          tauCommit: tau,
          journalId: journal,
          body,
        });
      } else {
        const filtered = filterBody(body, subscription.ranges);
        frame =
          filtered === null
            ? null
            : encodeMessage({
                type: MessageType.Record,
                tauCommit: tau,
                journalId: journal,
                body: filtered,
              });
      }
      if (frame !== null) subscription.sink.write(frame);
      subscription.sentTau = tau;
      subscription.sentJournal = journal;
      if (
        subscription.sink.bufferedBytes > this.#bufferBytesMax ||
        this.#buggify.fires("crossbar.fall-behind")
      ) {
        // Not draining: off the live stream, back to the journals on disk.
        subscription.mode = "catchup";
        this.#fellBehind += 1;
        void this.#catchUp(subscription);
      }
    }
  }

  #sendWatermark(subscription: Subscription): void {
    const tau = Math.max(this.#releasePoint, subscription.watermarkTau);
    const leaseUntilUs = this.#leaseFor(subscription.id);
    subscription.sink.write(encodeMessage({ type: MessageType.Watermark, tau, leaseUntilUs }));
    subscription.watermarkTau = tau;
    subscription.renewed = true;
  }

  async #catchUp(subscription: Subscription): Promise<void> {
    try {
      for (;;) {
        await this.#drained(subscription);
        if (subscription.mode !== "catchup") return;
        const target = this.#releasePoint;
        if (subscription.sentTau >= target) {
          // Nothing between it and the release point: live from this turn on.
          subscription.mode = "live";
          if (target >= 0) this.#sendWatermark(subscription);
          return;
        }
        // From one below what was sent: a live subscription that fell behind
        // after (T, j) may still be owed (T, k) of a later journal k.
        const [afterTau, afterJournal] = [subscription.sentTau, subscription.sentJournal];
        for await (const entry of this.#reader.readAll(Math.max(0, afterTau - 1), target)) {
          if (subscription.mode !== "catchup") return;
          if (entry.tauCommit === afterTau && entry.journal <= afterJournal) continue;
          assert(
            (entry.tauCommit > subscription.sentTau ||
              (entry.tauCommit === subscription.sentTau &&
                entry.journal > subscription.sentJournal)) &&
              entry.tauCommit <= target,
            "catch-up out of order",
          );
          const body = subscription.all ? entry.body : filterBody(entry.body, subscription.ranges);
          if (body !== null) {
            subscription.sink.write(
              encodeMessage({
                type: MessageType.Record,
                tauCommit: entry.tauCommit,
                journalId: entry.journal,
                body,
              }),
            );
          }
          subscription.sentTau = entry.tauCommit;
          subscription.sentJournal = entry.journal;
          if (subscription.sink.bufferedBytes > this.#bufferBytesMax)
            await this.#drained(subscription);
        }
        if (subscription.mode !== "catchup") return;
        subscription.sentTau = target;
        subscription.sentJournal = Number.MAX_SAFE_INTEGER;
      }
    } catch (error) {
      this.unsubscribe(subscription.id);
      this.#onError(subscription.id, error);
    }
  }

  /** Resolves once the subscription's sink has drained (at once when it holds nothing). */
  #drained(subscription: Subscription): Promise<void> {
    if (subscription.sink.bufferedBytes === 0 || subscription.sink.closed) return Promise.resolve();
    return new Promise((resolve) => subscription.sink.onDrain(resolve));
  }
}
