/**
 * Memory per idle session fitted over a ramp's RSS samples: robust to a collection that frees
 * memory in one step and a young generation that grows in another; noise is called noise.
 */
import { describe, expect, test } from 'vitest';
import { estimatePerSession, stepSizes, type RampPoint } from '../../../bench/lib/idle-estimate.js';

const line = (perSession: number, fixed: number, steps: number[]): RampPoint[] => {
  let n = 0;
  return steps.map((k) => {
    n += k;
    return { sessions: n, rssKiB: fixed + perSession * n };
  });
};

describe('estimatePerSession', () => {
  test('a clean line: its slope, no spread, the intercept over the base as the fixed part', () => {
    const e = estimatePerSession(line(9, 60_000, [400, 400, 400, 400, 400]), 50_000);
    expect(e?.kib).toBe(9);
    expect(e?.leastSquaresKiB).toBe(9);
    expect(e?.segmentsKiB).toEqual([9, 9, 9, 9]);
    expect(e?.burnIn).toBe(1);
    expect(e?.spreadKiB).toBe(0);
    expect(e?.fixedKiB).toBe(10_000);
    expect(e?.noisy).toBe(false);
  });

  test('one step where a collection freed memory and one where the young generation grew barely move it', () => {
    const p = line(10, 80_000, [500, 500, 500, 500, 500, 500, 500, 500]);
    // Step 3: 8 MiB returned; step 6: 16 MiB of semi-space committed.
    const bent = p.map((q, i) => ({ sessions: q.sessions, rssKiB: q.rssKiB - (i >= 2 ? 8192 : 0) + (i >= 5 ? 16_384 : 0) }));
    const e = estimatePerSession(bent);
    expect(e).toBeDefined();
    expect(e?.kib).toBe(10);
    // A least-squares fit is pulled by the same two steps.
    expect(Math.abs((e?.leastSquaresKiB ?? 0) - 10)).toBeGreaterThan(Math.abs((e?.kib ?? 0) - 10));
    expect(e?.noisy).toBe(false);
    // Two differences alone (the old halves) would have said anything from -6 to 43 KiB.
    expect(Math.min(...(e?.segmentsKiB ?? []))).toBeLessThan(0);
    expect(Math.max(...(e?.segmentsKiB ?? []))).toBeGreaterThan(40);
  });

  test('with four segments or more, the first (the warm-up\'s young generation shrinking) is left out', () => {
    // portier, 2,000 sessions, round 1 of the 2026-12-02 quick run: the first segment was -39 KiB.
    const p = [1_000_000, 986_900, 987_970, 992_180, 993_530, 997_490].map((rssKiB, i) => ({ sessions: (i + 1) * 333, rssKiB }));
    const e = estimatePerSession(p);
    expect(e?.burnIn).toBe(1);
    expect(e?.segmentsKiB[0]).toBeLessThan(-30);
    expect(e?.kib).toBeGreaterThan(7);
    expect(e?.kib).toBeLessThan(9);
    // Its segments alternate between about 3 and 12 KiB: more spread than figure, so noisy.
    expect(e?.noisy).toBe(true);
    // Three segments: none is left out.
    expect(estimatePerSession(p.slice(0, 4))?.burnIn).toBe(0);
  });

  test('samples without a trend, only jitter: noisy, whatever the slope says', () => {
    const jitter = [0, 9000, -4000, 7000, -6000, 3000];
    const p = jitter.map((j, i) => ({ sessions: (i + 1) * 1000, rssKiB: 100_000 + j }));
    const e = estimatePerSession(p);
    expect(e?.noisy).toBe(true);
    expect(e?.spreadKiB).toBeGreaterThan(Math.abs(e?.kib ?? 0));
  });

  test('a ramp during which the process shrank: a slope at or below zero, noisy', () => {
    const e = estimatePerSession(line(-2, 90_000, [300, 300, 300]));
    expect(e?.kib).toBeLessThanOrEqual(0);
    expect(e?.noisy).toBe(true);
  });

  test('the points may come in any order; fewer than two session counts give no estimate', () => {
    const p = line(7, 1000, [100, 100, 100, 100]);
    expect(estimatePerSession([...p].reverse())?.kib).toBe(7);
    expect(estimatePerSession([{ sessions: 10, rssKiB: 5 }])).toBeUndefined();
    expect(estimatePerSession([{ sessions: 10, rssKiB: 5 }, { sessions: 10, rssKiB: 9 }])).toBeUndefined();
  });
});

describe('stepSizes', () => {
  test.each([[2000, 6], [40, 6], [5, 6], [10_000, 8], [1, 3]])('%i sessions in %i steps: all of them, no step empty, sizes within one', (n, k) => {
    const s = stepSizes(n, k);
    expect(s.reduce((a, b) => a + b, 0)).toBe(n);
    expect(s.length).toBe(Math.min(n, k));
    expect(Math.min(...s)).toBeGreaterThan(0);
    expect(Math.max(...s) - Math.min(...s)).toBeLessThanOrEqual(1);
  });
});
