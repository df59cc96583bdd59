/**
 * The simulated world: one virtual clock, one event queue, hosts that can
 * stall and crash. Everything a component sees of time and timers comes from
 * here, so a run is a pure function of its seed (DESIGN §5).
 *
 * - Events are ordered by (time, seq): a binary heap, ties broken by the
 *   order in which they were scheduled, so nothing depends on the host's
 *   scheduler.
 * - Promises: the components are async. After each event the loop lets every
 *   promise continuation run (it waits for a next-tick, which Node runs only
 *   once the microtask queue is empty) before it takes the next event.
 *   No real I/O is ever pending, so the interleaving is fixed by the seed.
 * - A stalled host processes nothing: its events (timers, disk completions,
 *   messages) that fall inside the stall are put back at the stall's end, in
 *   their order. A crashed host loses every event scheduled for it; a
 *   restarted host is a new incarnation.
 * - `trace(text)` folds what happened into a hash; two runs of one seed must
 *   end with the same hash (test/sim/determinism.test.ts).
 */
import type { Clock, Micros, TimerHandle, Timers } from "../clock";

/** Wall-clock microseconds at virtual time 0 (a fixed date, so runs replay exactly). */
export const sim_epoch_us = 1_700_000_000_000_000;

interface SimEvent {
  /** The handle's id; stays when a stall moves the event. */
  readonly id: number;
  time: number;
  seq: number;
  host: SimHost | null;
  /** The host's incarnation when the event was scheduled. */
  incarnation: number;
  fn: () => void;
  cancelled: boolean;
}

/** Binary min-heap of events by (time, seq). */
class EventHeap {
  readonly #items: SimEvent[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(event: SimEvent): void {
    const items = this.#items;
    items.push(event);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.#items[0];
  }

  pop(): SimEvent | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l]!, items[m]!)) m = l;
      if (r < items.length && before(items[r]!, items[m]!)) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

export class SimError extends Error {
  readonly code: "invariant" | "invalid_argument";

  constructor(code: SimError["code"], message: string) {
    super(message);
    this.name = "SimError";
    this.code = code;
  }
}

export function simAssert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new SimError("invariant", message);
}

/** One simulated machine: its own skewed clock, timers, stalls and incarnations. */
export class SimHost {
  readonly id: number;
  readonly name: string;
  readonly world: World;
  /** Offset of this host's clock from true virtual time. */
  skewUs: number;
  stalledUntil = 0;
  incarnation = 0;
  up = true;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Virtual microseconds this host spent stalled. */
  stalledUs = 0;

  constructor(world: World, id: number, name: string, skewUs: number) {
    this.world = world;
    this.id = id;
    this.name = name;
    this.skewUs = skewUs;
    this.clock = { nowMicros: () => sim_epoch_us + world.now + this.skewUs };
    this.timers = {
      schedule: (delay: Micros, fn: () => void): TimerHandle => world.schedule(this, delay, fn),
      cancel: (handle: TimerHandle): void => world.cancel(handle),
    };
  }

  get stalled(): boolean {
    return this.world.now < this.stalledUntil;
  }
}

export class World {
  #now = 0;
  #seq = 0;
  readonly #heap = new EventHeap();
  readonly #handles = new Map<number, SimEvent>();
  readonly hosts: SimHost[] = [];
  #h1 = 0x811c9dc5;
  #h2 = 0x01000193;
  #traced = 0;
  #events = 0;
  #stopped = false;

  /** Virtual microseconds since the start of the run. */
  get now(): number {
    return this.#now;
  }

  get eventCount(): number {
    return this.#events;
  }

  addHost(name: string, skewUs = 0): SimHost {
    const host = new SimHost(this, this.hosts.length, name, skewUs);
    this.hosts.push(host);
    return host;
  }

  /** Runs `fn` on `host` (null: the world itself) after `delayUs`. */
  schedule(host: SimHost | null, delayUs: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(delayUs) || delayUs < 0) {
      throw new SimError("invalid_argument", `delay must be >= 0, got ${delayUs}`);
    }
    const event: SimEvent = {
      id: this.#seq,
      time: this.#now + Math.round(delayUs),
      seq: this.#seq++,
      host,
      incarnation: host?.incarnation ?? 0,
      fn,
      cancelled: false,
    };
    this.#heap.push(event);
    this.#handles.set(event.id, event);
    return { id: event.id };
  }

  cancel(handle: TimerHandle): void {
    const event = this.#handles.get(handle.id);
    if (event !== undefined) {
      event.cancelled = true;
      this.#handles.delete(handle.id);
    }
  }

  /** The host processes nothing for `durationUs` from now (a longer running stall is kept). */
  stall(host: SimHost, durationUs: number): void {
    const until = this.#now + durationUs;
    if (until <= host.stalledUntil) return;
    host.stalledUs += until - Math.max(this.#now, host.stalledUntil);
    host.stalledUntil = until;
    this.trace(`stall ${host.name} ${durationUs}`);
  }

  /** The host dies: every event scheduled for it is lost. */
  crash(host: SimHost): void {
    host.up = false;
    host.incarnation += 1;
    host.stalledUntil = 0;
    this.trace(`crash ${host.name}`);
  }

  /** The host is back as a new incarnation; the caller starts its processes again. */
  restart(host: SimHost): void {
    simAssert(!host.up, `restart of ${host.name}, which is up`);
    host.up = true;
    this.trace(`restart ${host.name}`);
  }

  /** Folds `text` into the run's trace hash. */
  trace(text: string): void {
    let h1 = this.#h1;
    let h2 = this.#h2;
    const stamp = `${this.#now}|${text}`;
    for (let i = 0; i < stamp.length; i++) {
      const c = stamp.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    this.#h1 = h1;
    this.#h2 = h2;
    this.#traced += 1;
  }

  get traceHash(): string {
    return `${(this.#h1 >>> 0).toString(16).padStart(8, "0")}${(this.#h2 >>> 0).toString(16).padStart(8, "0")}:${this.#traced}`;
  }

  /** Stops `run` after the current event. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Runs events until virtual time `untilUs` (or the queue empties). After
   * each event every promise continuation runs before the next event.
   * `onTick` is called about every `tickUs` of virtual time.
   */
  async run(untilUs: number, tickUs = 0, onTick?: (now: number) => void): Promise<void> {
    let nextTick = tickUs > 0 ? this.#now + tickUs : Number.POSITIVE_INFINITY;
    this.#stopped = false;
    await drainMicrotasks();
    while (!this.#stopped) {
      const event = this.#heap.peek();
      if (event === undefined || event.time > untilUs) break;
      this.#heap.pop();
      if (event.cancelled) continue;
      const host = event.host;
      if (host !== null) {
        if (event.incarnation !== host.incarnation || !host.up) {
          this.#handles.delete(event.id);
          continue;
        }
        if (event.time < host.stalledUntil) {
          // A stalled host runs nothing: the event waits for the stall's end, in order.
          event.time = host.stalledUntil;
          event.seq = this.#seq++;
          this.#heap.push(event);
          continue;
        }
      }
      simAssert(event.time >= this.#now, "virtual time going backwards");
      this.#now = event.time;
      this.#handles.delete(event.id);
      this.#events += 1;
      event.fn();
      await drainMicrotasks();
      if (this.#now >= nextTick) {
        onTick?.(this.#now);
        while (nextTick <= this.#now) nextTick += tickUs;
      }
    }
    if (!this.#stopped && this.#now < untilUs) this.#now = untilUs;
  }
}

/**
 * Resolves once every queued promise continuation (and those they queue) has
 * run. Node drains the whole microtask queue before it runs the next-tick
 * queue again (processTicksAndRejections), so a next-tick resolution comes
 * after all of them — without a turn of the event loop, which a
 * `setImmediate` costs (the simulator ran at half the speed with it, same
 * traces). The simulated components queue no next-ticks of their own.
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}
