import { expect, test } from 'vitest';
import { DisconnectSpreader } from '../../../src/splice/spread.js';

test('a single backend close is immediate; a storm is spread within the limit', () => {
  let r = 0;
  const s = new DisconnectSpreader(() => 10_000, () => (r = (r + 0.37) % 1));
  expect(s.delayFor('b:143', 0)).toBe(0);
  const delays = Array.from({ length: 50 }, (_, i) => s.delayFor('b:143', 10 + i));
  expect(delays.every((d) => d >= 0 && d < 10_000)).toBe(true);
  expect(new Set(delays).size).toBeGreaterThan(1);
  // Another backend, or the same one after the storm, starts afresh.
  expect(s.delayFor('c:143', 20)).toBe(0);
  expect(s.delayFor('b:143', 5000)).toBe(0);
});

test('0 (the default) never delays', () => {
  const s = new DisconnectSpreader(() => 0);
  expect([s.delayFor('b', 0), s.delayFor('b', 1), s.delayFor('b', 2)]).toEqual([0, 0, 0]);
});
