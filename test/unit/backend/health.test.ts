import { expect, test } from 'vitest';
import { BackendHealth } from '../../../src/backend/health.js';

test('a backend failing for longer than the threshold fails at once, one probe at a time', () => {
  const h = new BackendHealth(() => 30_000);
  const k = '10.0.0.7:143';
  expect(h.admit(k, 0)).toEqual({ go: true, probe: false });
  h.failed(k, false, 0);
  h.failed(k, false, 20_000);
  expect(h.admit(k, 20_001)).toEqual({ go: true, probe: false });
  h.failed(k, false, 30_000);
  expect(h.isDown(k, 30_001)).toBe(true);
  expect(h.admit(k, 30_001)).toEqual({ go: true, probe: true });
  expect(h.admit(k, 30_002)).toEqual({ go: false, failingForMs: 30_002 });
  h.failed(k, true, 31_000);
  expect(h.admit(k, 31_001)).toEqual({ go: true, probe: true });
  h.succeeded(k);
  expect(h.admit(k, 31_002)).toEqual({ go: true, probe: false });
});

test('an old verdict expires when nobody tried for a threshold; 0 disables', () => {
  const h = new BackendHealth(() => 1000);
  h.failed('k', false, 0);
  h.failed('k', false, 1000);
  expect(h.isDown('k', 1500)).toBe(true);
  expect(h.admit('k', 2501)).toEqual({ go: true, probe: false });
  const off = new BackendHealth(() => 0);
  off.failed('k', false, 0);
  off.failed('k', false, 100_000);
  expect(off.admit('k', 100_001)).toEqual({ go: true, probe: false });
});

test('a probe released without a verdict lets the next one through', () => {
  const h = new BackendHealth(() => 1000);
  h.failed('k', false, 0);
  h.failed('k', false, 1000);
  expect(h.admit('k', 1001)).toEqual({ go: true, probe: true });
  h.released('k', true);
  expect(h.admit('k', 1002)).toEqual({ go: true, probe: true });
});

import { SourceIps } from '../../../src/backend/source-ips.js';

test('login_source_ips: round-robin, and ?-entries only when local', () => {
  const s = new SourceIps(['10.0.0.1', '?10.0.0.2', '?127.0.0.1'], new Set(['127.0.0.1']));
  expect(s.size).toBe(2);
  const seen = [s.next(), s.next(), s.next(), s.next()];
  expect(new Set(seen)).toEqual(new Set(['10.0.0.1', '127.0.0.1']));
  expect(seen[0]).toBe(seen[2]);
  expect(new SourceIps([]).next()).toBeUndefined();
});
