/**
 * The simulator's one source of randomness: sfc32 (Chris Doty-Humphrey's
 * Small Fast Counter), seeded from one 32-bit seed. Every random choice of a
 * run — latencies, losses, stalls, crashes, keys — comes from a `Prng`, so the
 * same seed and code replay a run exactly. Independent streams are forked
 * with `fork(label)` so that adding draws to one concern (say, the network)
 * does not shift the draws of another (say, the workload).
 */

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.#a = 0x9e3779b9 ^ (seed | 0);
    this.#b = 0x243f6a88 ^ Math.imul(stream | 0, 0x85ebca6b);
    this.#c = 0xb7e15162 ^ (Math.floor(seed / 0x1_0000_0000) | 0);
    this.#d = 1;
    for (let i = 0; i < 16; i++) this.nextU32();
  }

  /** A new independent stream derived from this seed and `label`. */
  fork(label: string): Prng {
    let h = 0x811c9dc5;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
    return new Prng(this.nextU32() ^ h, h >>> 0);
  }

  nextU32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0)
      throw new RangeError(`int bound must be positive, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}

/** A latency distribution in microseconds: a floor plus an exponential tail, with rare slow outliers. */
export interface LatencyDist {
  minUs: number;
  meanExtraUs: number;
  /** Probability of an outlier, which adds `outlierUs` times a uniform factor in [0.5, 1.5). */
  outlierP: number;
  outlierUs: number;
}

export function sampleLatency(prng: Prng, dist: LatencyDist): number {
  let us = dist.minUs + prng.exponential(dist.meanExtraUs);
  if (dist.outlierP > 0 && prng.chance(dist.outlierP)) us += dist.outlierUs * (0.5 + prng.next());
  return Math.max(0, Math.round(us));
}
