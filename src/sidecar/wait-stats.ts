/**
 * Durations of one kind: how long commits wait for visibility everywhere
 * (WAIT_VISIBLE → VISIBLE, the price ordo pays for strong reads,
 * docs/replication.md §6), or how long the sidecar takes to answer a
 * commit. Keeps the
 * most recent `samples_max` waits in a ring, so memory is bounded however
 * long the sidecar runs, and answers percentiles over them.
 */

export const wait_samples_max = 65_536;

export interface WaitSummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
}

export class WaitStats {
  readonly #samples = new Float64Array(wait_samples_max);
  #count = 0;

  record(waitUs: number): void {
    if (!(waitUs >= 0)) throw new RangeError(`a wait is a non-negative duration, got ${waitUs}`);
    this.#samples[this.#count % wait_samples_max] = waitUs;
    this.#count++;
  }

  /** Forgets every wait (a measurement window starts). */
  reset(): void {
    this.#count = 0;
  }

  /** Percentiles over the most recent waits; zeros when there were none. */
  summary(): WaitSummary {
    const n = Math.min(this.#count, wait_samples_max);
    if (n === 0) return { count: 0, p50Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 };
    const sorted = this.#samples.slice(0, n).sort();
    const at = (p: number): number => sorted[Math.min(n - 1, Math.floor(p * n))]!;
    return {
      count: this.#count,
      p50Us: at(0.5),
      p99Us: at(0.99),
      p999Us: at(0.999),
      maxUs: sorted[n - 1]!,
    };
  }
}
