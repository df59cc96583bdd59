/**
 * Timers driven by a ManualClock for tests: nothing fires until the test
 * advances time with `advance`, which runs every timer that came due, in
 * order of due time.
 */
import type { ManualClock, Micros, TimerHandle, Timers } from "../../src/clock";

interface Pending {
  handle: TimerHandle;
  due: Micros;
  fn: () => void;
}

export class ManualTimers implements Timers {
  readonly #clock: ManualClock;
  #pending: Pending[] = [];
  #next = 1;

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  schedule(delayMicros: Micros, fn: () => void): TimerHandle {
    const handle = { id: this.#next++ };
    this.#pending.push({ handle, due: this.#clock.nowMicros() + delayMicros, fn });
    return handle;
  }

  cancel(handle: TimerHandle): void {
    this.#pending = this.#pending.filter((p) => p.handle.id !== handle.id);
  }

  /** Moves the clock forward, firing due timers at their due times. */
  advance(deltaMicros: Micros): void {
    const end = this.#clock.nowMicros() + deltaMicros;
    for (;;) {
      const due = this.#pending.filter((p) => p.due <= end).sort((a, b) => a.due - b.due)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((p) => p !== due);
      if (due.due > this.#clock.nowMicros()) this.#clock.set(due.due);
      due.fn();
    }
    this.#clock.set(end);
  }
}
