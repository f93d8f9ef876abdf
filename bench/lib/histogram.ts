/**
 * An HDR-style log-linear latency histogram in nanoseconds: 64 linear sub-buckets per power
 * of two (under 1.6 % error), mergeable by adding the count arrays, so worker threads can
 * record locally and hand their counts to the main thread at the end.
 */

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64 sub-buckets per octave
const LINEAR = SUB * 2; // values below 128 ns are exact
const MAX_EXP = 44; // about 4.9 hours in ns: anything longer is clamped
export const HISTOGRAM_BUCKETS = LINEAR + (MAX_EXP - SUB_BITS) * SUB;

function indexOf(ns: number): number {
  const v = Math.max(0, Math.floor(ns));
  if (v < LINEAR) return v;
  const exp = Math.min(Math.floor(Math.log2(v)), MAX_EXP);
  const shift = exp - SUB_BITS;
  const mant = Math.min(Math.floor(v / 2 ** shift), LINEAR - 1); // in [64, 127]
  return LINEAR + (shift - 1) * SUB + (mant - SUB);
}

/** The middle of bucket i, in ns. */
function valueOf(i: number): number {
  if (i < LINEAR) return i;
  const shift = Math.floor((i - LINEAR) / SUB) + 1;
  const mant = ((i - LINEAR) % SUB) + SUB;
  return (mant + 0.5) * 2 ** shift;
}

export interface LatencySummary {
  count: number;
  /** Microseconds. */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class Histogram {
  readonly counts: Float64Array;
  #count = 0;
  #sum = 0;
  #max = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(HISTOGRAM_BUCKETS);
    if (counts !== undefined) this.add(counts);
  }

  record(ns: number): void {
    const i = indexOf(ns);
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.#count++;
    this.#sum += ns;
    if (ns > this.#max) this.#max = ns;
  }

  /** Add another histogram's counts (from a worker); sum and max come from the buckets. */
  add(counts: ArrayLike<number>, sum?: number, max?: number): void {
    for (let i = 0; i < counts.length && i < HISTOGRAM_BUCKETS; i++) {
      const c = counts[i] ?? 0;
      if (c === 0) continue;
      this.counts[i] = (this.counts[i] ?? 0) + c;
      this.#count += c;
      if (sum === undefined) this.#sum += c * valueOf(i);
      if (max === undefined && valueOf(i) > this.#max) this.#max = valueOf(i);
    }
    if (sum !== undefined) this.#sum += sum;
    if (max !== undefined && max > this.#max) this.#max = max;
  }

  reset(): void {
    this.counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#max = 0;
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  get max(): number {
    return this.#max;
  }

  /** The value (ns) at quantile q in [0, 1]. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) return Math.min(valueOf(i), this.#max);
    }
    return this.#max;
  }

  summary(): LatencySummary {
    const us = (ns: number): number => Math.round(ns / 100) / 10;
    return {
      count: this.#count,
      mean: us(this.#count === 0 ? 0 : this.#sum / this.#count),
      p50: us(this.quantile(0.5)),
      p90: us(this.quantile(0.9)),
      p99: us(this.quantile(0.99)),
      max: us(this.#max),
    };
  }
}
