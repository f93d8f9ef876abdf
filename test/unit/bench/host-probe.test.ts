/**
 * The compare runner's host-speed probes: they do real work and return times; the summary of
 * a run's probes gives min/median/max and their spread; the report line says "Steady" on a
 * steady host and warns, with the factor, when either probe moved past the threshold.
 */
import { describe, expect, it } from 'vitest';
import { HOST_SPREAD_WARN, hostProbe, hostSpeed, hostSpeedLine } from '../../../bench/lib/host-probe.js';

describe('host probe', () => {
  it('takes positive, finite times for its fixed work', () => {
    const p = hostProbe();
    expect(Number.isFinite(p.cpuMs) && p.cpuMs > 0).toBe(true);
    expect(Number.isFinite(p.memNs) && p.memNs > 0).toBe(true);
  });

  it('summarises probes as min, median, max and spread, ignoring non-numbers', () => {
    expect(hostSpeed([20, 22, 40, Number.NaN, 0])).toEqual({ count: 3, min: 20, median: 22, max: 40, spread: 2 });
    expect(hostSpeed([20, 30])?.median).toBe(25);
    expect(hostSpeed([])).toBeUndefined();
  });

  it('calls a steady host steady and warns when either probe moved past the threshold', () => {
    const steadyCpu = hostSpeed([20, 21, 22]);
    const steadyMem = hostSpeed([200, 210]);
    const steady = hostSpeedLine(steadyCpu, steadyMem);
    expect(steady).toContain('Steady.');
    expect(steady).toContain('median 21 ms');
    expect(steady).toContain('median 205 ns per step');
    expect(steady).not.toContain('changed');
    const movedFactor = HOST_SPREAD_WARN + 0.5;
    const movedMem = hostSpeedLine(steadyCpu, hostSpeed([200, 200 * movedFactor]));
    expect(movedMem).toContain(`changed ${movedFactor}× during this run`);
    expect(movedMem).toContain('re-run');
    expect(hostSpeedLine(hostSpeed([20, 20 * movedFactor]), undefined)).toContain(`changed ${movedFactor}×`);
    expect(hostSpeedLine(undefined, undefined)).toBeUndefined();
  });
});
