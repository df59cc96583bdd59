/**
 * Time for ordo's components. Every component takes a `Clock` in its
 * constructor instead of reading `Date.now()`, so the simulator can run the
 * same code in virtual time (DESIGN §2, §5).
 *
 * Timestamps are integer microseconds since the Unix epoch, held in a
 * `bigint`-free `number` (2^53 µs is about 285 years, enough).
 */

/** Microseconds since the Unix epoch. */
export type Micros = number;

export interface Clock {
  /** Current time in whole microseconds. Not guaranteed monotonic. */
  nowMicros(): Micros;
}

/** Timers, injected like the clock so that virtual time can drive them. */
export interface Timers {
  /** Calls `fn` once after `delayMicros`; returns a handle for `cancel`. */
  schedule(delayMicros: Micros, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

/** A manually driven clock for tests and the simulator. */
export class ManualClock implements Clock {
  #now: Micros;

  constructor(startMicros: Micros = 1_700_000_000_000_000) {
    if (!Number.isSafeInteger(startMicros) || startMicros < 0) {
      throw new RangeError(`clock start must be a non-negative safe integer, got ${startMicros}`);
    }
    this.#now = startMicros;
  }

  nowMicros(): Micros {
    return this.#now;
  }

  advance(deltaMicros: Micros): void {
    if (!Number.isSafeInteger(deltaMicros) || deltaMicros < 0) {
      throw new RangeError(`clock can only advance by a non-negative integer, got ${deltaMicros}`);
    }
    this.#now += deltaMicros;
  }

  set(nowMicros: Micros): void {
    if (!Number.isSafeInteger(nowMicros) || nowMicros < 0) {
      throw new RangeError(`clock time must be a non-negative safe integer, got ${nowMicros}`);
    }
    this.#now = nowMicros;
  }
}
