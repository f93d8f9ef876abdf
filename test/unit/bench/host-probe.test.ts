/**
 * The compare runner's host-speed probe: the probe does real work and returns a time; the
 * summary of a run's probes gives min/median/max and their spread; the report line says
 * "steady" on a steady host and warns, with the factor, when the host's speed moved.
 */
import { describe, expect, it } from 'vitest';
import { HOST_SPREAD_WARN, hostProbeMs, hostSpeed, hostSpeedLine } from '../../../bench/lib/host-probe.js';

describe('host probe', () => {
  it('takes a positive, finite time for its fixed work', () => {
    const ms = hostProbeMs();
    expect(Number.isFinite(ms)).toBe(true);
    expect(ms).toBeGreaterThan(0);
  });

  it('summarises probes as min, median, max and spread, ignoring non-numbers', () => {
    expect(hostSpeed([20, 22, 40, Number.NaN, 0])).toEqual({ count: 3, minMs: 20, medianMs: 22, maxMs: 40, spread: 2 });
    expect(hostSpeed([20, 30])?.medianMs).toBe(25);
    expect(hostSpeed([])).toBeUndefined();
  });

  it('calls a steady host steady and warns when the speed moved past the threshold', () => {
    const steady = hostSpeedLine(hostSpeed([20, 21, 22]));
    expect(steady).toContain('steady: 1.1×');
    expect(steady).not.toContain('changed');
    const moved = hostSpeedLine(hostSpeed([20, 25, 20 * (HOST_SPREAD_WARN + 0.5)]));
    expect(moved).toContain(`changed ${HOST_SPREAD_WARN + 0.5}× during this run`);
    expect(moved).toContain('re-run');
    expect(hostSpeedLine(undefined)).toBeUndefined();
  });
});
