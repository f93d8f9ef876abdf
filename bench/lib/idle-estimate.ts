/**
 * Memory per idle session from RSS sampled at several points of a ramp (after each step of
 * logins, once settled). One difference between two samples can be anything from a collection
 * that freed more than the step added (below zero, or a fraction of the cost) to a young
 * generation that grew in that step (a multiple of it); a fit over many points is not:
 *
 * - the figure is the median of the consecutive segments' slopes: a collection or a young
 *   generation's growth lands in one step, so it bends one segment, which the median ignores
 *   (a least-squares fit, or the median of the slopes between every two points, Theil–Sen,
 *   is pulled by every pair that spans the step);
 * - with five or more points the first segment is left out of the figure and the spread (it
 *   is still listed): the first step absorbs the change from the warm-up's state, e.g. a young
 *   generation grown by the warm-up's login burst that shrinks during it (portier, 2,000
 *   sessions: -39 and -32 KiB per session in that segment, 3 to 14 in the others);
 * - the spread is the interquartile range of the consecutive segments' slopes: when it is
 *   larger than the figure, the samples do not agree on a cost and the figure is noise;
 * - the intercept (RSS at zero sessions on the fitted line, over the sample before the ramp)
 *   is the fixed growth the ramp caused: heap and JIT warm-up, a young generation grown by
 *   the login storm. It is not a per-session cost and is reported apart.
 */

export interface RampPoint {
  /** Sessions held when the sample was taken. */
  sessions: number;
  rssKiB: number;
}

export interface PerSessionEstimate {
  /** KiB per session: the median of the segment slopes. */
  kib: number;
  /** The least-squares slope, for comparison. */
  leastSquaresKiB: number;
  /** Each consecutive segment's slope, in ramp order (the first too, when left out). */
  segmentsKiB: number[];
  /** Leading segments left out of the figure and the spread (the burn-in). */
  burnIn: number;
  /** Interquartile range of the segment slopes. */
  spreadKiB: number;
  /** RSS at zero sessions on the fitted line, minus `baseKiB` when given: fixed, not per session. */
  fixedKiB: number;
  /** The spread is larger than the figure, or the figure is at or below zero. */
  noisy: boolean;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? 0;
  const b = sorted[hi] ?? 0;
  return a + (b - a) * (pos - lo);
}

export function median(xs: readonly number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

/** From this many segments on, the first is the burn-in. */
const BURN_IN_FROM = 4;

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The estimate over at least two points with distinct session counts (sorted here), or
 * undefined when there are fewer. `baseKiB`: RSS before the ramp, for the fixed part.
 */
export function estimatePerSession(points: readonly RampPoint[], baseKiB?: number): PerSessionEstimate | undefined {
  const p = [...points].sort((a, b) => a.sessions - b.sessions);
  const segments: number[] = [];
  for (let i = 1; i < p.length; i++) {
    const a = p[i - 1];
    const b = p[i];
    if (a === undefined || b === undefined || b.sessions === a.sessions) continue;
    segments.push((b.rssKiB - a.rssKiB) / (b.sessions - a.sessions));
  }
  if (segments.length === 0) return undefined;
  const burnIn = segments.length >= BURN_IN_FROM ? 1 : 0;
  const used = segments.slice(burnIn);
  const fit = p.slice(burnIn);
  const kib = median(used);
  const n = fit.length;
  const mx = fit.reduce((s, q) => s + q.sessions, 0) / n;
  const my = fit.reduce((s, q) => s + q.rssKiB, 0) / n;
  const sxx = fit.reduce((s, q) => s + (q.sessions - mx) ** 2, 0);
  const sxy = fit.reduce((s, q) => s + (q.sessions - mx) * (q.rssKiB - my), 0);
  const leastSquares = sxx > 0 ? sxy / sxx : kib;
  // The line of that slope through the median offset: intercept = median(y - slope x).
  const intercept = median(fit.map((q) => q.rssKiB - kib * q.sessions));
  const sorted = [...used].sort((a, b) => a - b);
  const spread = used.length >= 2 ? quantile(sorted, 0.75) - quantile(sorted, 0.25) : 0;
  return {
    kib: round2(kib),
    leastSquaresKiB: round2(leastSquares),
    segmentsKiB: segments.map(round2),
    burnIn,
    spreadKiB: round2(spread),
    fixedKiB: Math.round(intercept - (baseKiB ?? 0)),
    noisy: kib <= 0 || spread > kib,
  };
}

/** How many sessions each of `steps` ramp steps adds (the first steps take the remainder). */
export function stepSizes(sessions: number, steps: number): number[] {
  const k = Math.max(1, Math.min(steps, sessions));
  return Array.from({ length: k }, (_, i) => Math.floor(sessions / k) + (i < sessions % k ? 1 : 0));
}
