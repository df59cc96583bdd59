/**
 * The sidecar's replication side (docs/replication.md §3, §6): subscriptions,
 * leases and WAIT_VISIBLE.
 *
 * - A connection that sends SUBSCRIBE becomes a subscription of the crossbar
 *   service: RECORDs and WATERMARKs go out on it; it may then send only
 *   APPLIED and PING.
 * - Leases: every WATERMARK carries `lease_until_us` = CLOCK_MONOTONIC now +
 *   `lease_us` (default 2 s). A QP that lags the release point by more
 *   than `fence_after_us` (default 2 s) gets lease 0 (no renewal) until it
 *   catches up.
 * - WAIT_VISIBLE tau is answered VISIBLE once every QP subscription (qp_id
 *   != 0) that counts has sent APPLIED >= tau. A QP stops counting only when
 *   it is gone (disconnected) or lagging AND the last lease sent to it has
 *   passed: until then it may be running transactions that believe they see
 *   every acknowledged commit (invariant 6). With none counting, the answer
 *   is immediate.
 * - A heartbeat (every `heartbeat_interval_us`, default 50 ms, while there are
 *   subscriptions) raises idle journals' watermarks to the clock, renews the
 *   leases of live subscriptions and re-checks waiting WAIT_VISIBLEs. Records
 *   do not wait for it: a durable group raises every idle journal at once
 *   (the on-demand heartbeat of `JournalSet`), so the heartbeat only keeps
 *   leases fresh and idle QPs' applied_tau moving.
 *
 * Sans-I/O: the tau clock, the monotonic clock and timers are injected.
 */
import { WaitStats } from "./wait-stats";
import type { Clock, TimerHandle, Timers } from "../clock";
import { CrossbarService } from "../crossbar";
import type { EngineKind, SubscriberSink } from "../crossbar";
import { JournalError, type JournalSet } from "../journal";
import { MessageType } from "../protocol";
import type { Applied, Subscribe, Visible, WaitVisible } from "../protocol";
import type { Logger } from "./log";

export const lease_us_default = 2_000_000;
export const fence_after_us_default = 2_000_000;
export const heartbeat_interval_us_default = 50_000;

/** A connection that subscribed: the sink its frames go to. */
export interface SubscriberLink extends SubscriberSink {
  /** Sends ERROR (`unavailable`) with `message` and closes the connection. */
  fail?(message: string): void;
}

export interface ReplicationOptions {
  journals: JournalSet;
  /** CLOCK_MONOTONIC microseconds (`MonotonicClock` in src/io). */
  monotonic: Clock;
  timers: Timers;
  logger: Logger;
  engine?: EngineKind;
  /** Bytes a live subscription may hold unsent before it moves to catch-up. */
  subscriptionBufferBytesMax?: number;
  leaseUs?: number;
  fenceAfterUs?: number;
  heartbeatIntervalUs?: number;
}

export class ReplicationError extends Error {
  readonly code: "invalid_option" | "protocol";

  constructor(code: ReplicationError["code"], message: string) {
    super(message);
    this.name = "ReplicationError";
    this.code = code;
  }
}

/** What the sidecar knows of one subscription of a QP's applier. */
interface Member {
  readonly subscription: number;
  readonly qpId: bigint;
  /** Every commit at or below it is visible on the QP (APPLIED, initially from_tau). */
  applied: number;
  /** The last non-zero lease sent, CLOCK_MONOTONIC µs; 0 if none. */
  leaseUntilUs: number;
  connected: boolean;
  /**
   * No lease until `applied` reaches it: the highest commit acknowledged
   * without waiting for this QP (`soleCounting`) while it did not count.
   */
  mustReach: number;
}

interface Waiter {
  readonly tau: number;
  readonly requestId: bigint;
  /** Monotonic µs when the WAIT_VISIBLE arrived. */
  readonly sinceUs: number;
  readonly reply: (message: Visible) => void;
}

function positive(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ReplicationError(
      "invalid_option",
      `${what} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

export class Replication {
  readonly service: CrossbarService;
  readonly #journals: JournalSet;
  readonly #monotonic: Clock;
  readonly #timers: Timers;
  readonly #logger: Logger;
  readonly #leaseUs: number;
  readonly #fenceAfterUs: number;
  readonly #heartbeatUs: number;
  /** By subscription id; a gone QP stays until its lease has passed. */
  readonly #members = new Map<number, Member>();
  readonly #links = new Map<SubscriberLink, number>();
  #waiters: Waiter[] = [];
  /** The highest tau acknowledged without WAIT_VISIBLE (`soleCounting`). */
  #skippedUpTo = 0;
  /** How long answered WAIT_VISIBLEs waited. */
  readonly visibleWaits = new WaitStats();
  #heartbeat: TimerHandle | null = null;
  #fenceTimer: TimerHandle | null = null;
  #fenceDue = 0;
  #closed = false;

  constructor(options: ReplicationOptions) {
    this.#journals = options.journals;
    this.#monotonic = options.monotonic;
    this.#timers = options.timers;
    this.#logger = options.logger;
    this.#leaseUs = positive(options.leaseUs ?? lease_us_default, "leaseUs");
    this.#fenceAfterUs = positive(options.fenceAfterUs ?? fence_after_us_default, "fenceAfterUs");
    this.#heartbeatUs = positive(
      options.heartbeatIntervalUs ?? heartbeat_interval_us_default,
      "heartbeatIntervalUs",
    );
    this.service = new CrossbarService({
      journals: options.journals.count,
      reader: options.journals,
      engine: options.engine,
      bufferBytesMax: options.subscriptionBufferBytesMax,
      leaseFor: (subscription) => this.#leaseFor(subscription),
      onError: (subscription, error) => {
        this.#logger.log("error", "catch_up_failed", { subscription, error });
        for (const [link, id] of this.#links) {
          if (id !== subscription) continue;
          this.disconnected(link);
          link.fail?.(
            error instanceof JournalError && error.code === "removed"
              ? `cannot catch up: ${error.message}; this QP must be rebuilt`
              : `cannot catch up: ${String(error)}`,
          );
        }
      },
    });
    options.journals.listen(this.service);
  }

  /** Live subscriptions (connected). */
  get subscriptionCount(): number {
    return this.#links.size;
  }

  /** WAIT_VISIBLEs not answered yet. */
  get waitingCount(): number {
    return this.#waiters.length;
  }

  /** The highest APPLIED of each QP the sidecar knows now (connected, or gone and not yet forgotten). */
  qpApplied(): Map<bigint, number> {
    const applied = new Map<bigint, number>();
    for (const member of this.#members.values()) {
      applied.set(member.qpId, Math.max(applied.get(member.qpId) ?? 0, member.applied));
    }
    return applied;
  }

  /** The highest APPLIED of a QP's connected subscriptions, or undefined. */
  appliedOf(qpId: bigint): number | undefined {
    let best: number | undefined;
    for (const member of this.#members.values()) {
      if (member.qpId === qpId && member.connected) best = Math.max(best ?? 0, member.applied);
    }
    return best;
  }

  /** SUBSCRIBE on `link`: it becomes a subscription (catch-up first, then live). */
  subscribe(link: SubscriberLink, message: Subscribe): void {
    if (this.#links.has(link)) throw new ReplicationError("protocol", "SUBSCRIBE sent twice");
    const subscription = this.service.subscribe({
      fromTau: message.fromTau,
      ranges: message.ranges,
      sink: link,
    });
    this.#links.set(link, subscription);
    if (message.qpId !== 0n) {
      this.#members.set(subscription, {
        subscription,
        qpId: message.qpId,
        applied: message.fromTau,
        leaseUntilUs: 0,
        connected: true,
        mustReach: this.#skippedUpTo,
      });
    }
    this.#logger.log("info", "subscribed", {
      subscription,
      qpId: message.qpId.toString(),
      fromTau: message.fromTau,
    });
    this.#armHeartbeat();
  }

  /** APPLIED from a subscription's applier. */
  applied(link: SubscriberLink, message: Applied): void {
    const subscription = this.#links.get(link);
    if (subscription === undefined)
      throw new ReplicationError("protocol", "APPLIED before SUBSCRIBE");
    const member = this.#members.get(subscription);
    if (member !== undefined && message.tau > member.applied) member.applied = message.tau;
    this.#answer();
  }

  /**
   * WAIT_VISIBLE: `reply` gets VISIBLE once every counting QP applied tau.
   * `ownQp`: the QP whose backend asks, after committing tau in its turn —
   * that QP has applied tau, whether or not its applier said so yet.
   */
  waitVisible(message: WaitVisible, reply: (message: Visible) => void, ownQp?: bigint): void {
    if (ownQp !== undefined) {
      for (const member of this.#members.values()) {
        if (member.qpId === ownQp && member.connected && message.tau > member.applied) {
          member.applied = message.tau;
        }
      }
    }
    this.#waiters.push({
      tau: message.tau,
      requestId: message.requestId,
      sinceUs: this.#monotonic.nowMicros(),
      reply,
    });
    this.#answer();
  }

  /** The link's connection closed. */
  disconnected(link: SubscriberLink): void {
    const subscription = this.#links.get(link);
    if (subscription === undefined) return;
    this.#links.delete(link);
    this.service.unsubscribe(subscription);
    const member = this.#members.get(subscription);
    if (member !== undefined) member.connected = false;
    this.#logger.log("info", "unsubscribed", { subscription });
    this.#answer();
  }

  /**
   * Whether no QP but `qpId` counts for WAIT_VISIBLE now. If so the commit
   * at `tau` of that QP needs no WAIT_VISIBLE (COMMIT_REPLY's flag
   * VisibleWhenAppliedHere): it is visible wherever it must be once its own
   * QP committed it in its turn. Every other QP, and any that subscribes
   * later, then gets no lease before it has applied `tau`, so no transaction
   * can start anywhere without seeing the commit once it is acknowledged.
   */
  soleCounting(qpId: bigint, tau: number): boolean {
    const now = this.#monotonic.nowMicros();
    for (const member of this.#members.values()) {
      if (member.qpId !== qpId && this.#counts(member, now)) return false;
    }
    if (tau > this.#skippedUpTo) this.#skippedUpTo = tau;
    for (const member of this.#members.values()) {
      if (member.qpId !== qpId && tau > member.mustReach) member.mustReach = tau;
    }
    return true;
  }

  /** One heartbeat: idle journals to the clock, leases renewed, waiters re-checked. */
  tick(): void {
    if (this.#closed) return;
    this.#journals.heartbeat();
    this.service.renewLeases();
    this.#answer();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat !== null) this.#timers.cancel(this.#heartbeat);
    if (this.#fenceTimer !== null) this.#timers.cancel(this.#fenceTimer);
    this.#heartbeat = null;
    this.#fenceTimer = null;
    this.service.close();
  }

  #lagging(member: Member): boolean {
    const point = this.service.releasePoint;
    return point >= 0 && point - member.applied > this.#fenceAfterUs;
  }

  /** Gone or lagging: it counts only until its last lease has passed. */
  #outgoing(member: Member): boolean {
    return !member.connected || this.#lagging(member);
  }

  /** Whether WAIT_VISIBLE must wait for the member: connected and current, or its lease runs. */
  #counts(member: Member, now: number): boolean {
    return !this.#outgoing(member) || now <= member.leaseUntilUs;
  }

  #leaseFor(subscription: number): number {
    const member = this.#members.get(subscription);
    if (member !== undefined && (this.#lagging(member) || member.applied < member.mustReach)) {
      return 0;
    }
    const lease = this.#monotonic.nowMicros() + this.#leaseUs;
    if (member !== undefined && lease > member.leaseUntilUs) member.leaseUntilUs = lease;
    return lease;
  }

  /** Answers every waiter no counting QP holds back; arms a timer for the next lease expiry. */
  #answer(): void {
    const now = this.#monotonic.nowMicros();
    let floor = Number.MAX_SAFE_INTEGER;
    let nextExpiry = Number.MAX_SAFE_INTEGER;
    for (const [id, member] of this.#members) {
      if (!this.#counts(member, now)) {
        // Its lease has passed: nothing on it can rely on seeing new commits.
        if (!member.connected) this.#members.delete(id);
        continue;
      }
      floor = Math.min(floor, member.applied);
      if (this.#outgoing(member)) nextExpiry = Math.min(nextExpiry, member.leaseUntilUs);
    }
    if (this.#waiters.length > 0) {
      const waiting: Waiter[] = [];
      for (const waiter of this.#waiters) {
        if (waiter.tau <= floor) {
          this.visibleWaits.record(now - waiter.sinceUs);
          waiter.reply({ type: MessageType.Visible, requestId: waiter.requestId, tau: waiter.tau });
        } else {
          waiting.push(waiter);
        }
      }
      this.#waiters = waiting;
    }
    if (this.#waiters.length > 0 && nextExpiry !== Number.MAX_SAFE_INTEGER) {
      this.#armFenceTimer(nextExpiry + 1 - now);
    }
  }

  #armFenceTimer(delayUs: number): void {
    const due = this.#monotonic.nowMicros() + delayUs;
    if (this.#fenceTimer !== null) {
      if (this.#fenceDue <= due) return;
      this.#timers.cancel(this.#fenceTimer);
    }
    this.#fenceDue = due;
    this.#fenceTimer = this.#timers.schedule(Math.max(1, delayUs), () => {
      this.#fenceTimer = null;
      if (!this.#closed) this.#answer();
    });
  }

  #armHeartbeat(): void {
    if (this.#heartbeat !== null || this.#closed) return;
    this.#heartbeat = this.#timers.schedule(this.#heartbeatUs, () => {
      this.#heartbeat = null;
      this.tick();
      if (this.#links.size > 0) this.#armHeartbeat();
    });
  }
}
