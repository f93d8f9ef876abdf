import { expect, test } from 'vitest';
import { Deadline } from '../../../src/backend/deadline.js';

test('the time running out calls every listener once; a removed one is not called', async () => {
  const d = new Deadline(20);
  const calls: string[] = [];
  const a = (): void => void calls.push('a');
  const b = (): void => void calls.push('b');
  d.addEventListener('abort', a);
  d.addEventListener('abort', b);
  d.removeEventListener('abort', a);
  expect(d.aborted).toBe(false);
  await new Promise((r) => setTimeout(r, 60));
  expect(d.aborted).toBe(true);
  expect(calls).toEqual(['b']);
  d.expire();
  expect(calls).toEqual(['b']);
  // Too late to listen: nothing is kept, nothing runs.
  d.addEventListener('abort', a);
  d.expire();
  expect(calls).toEqual(['b']);
});

test('clear(): the timer is gone and no listener runs', async () => {
  const d = new Deadline(20);
  let called = false;
  d.addEventListener('abort', () => (called = true));
  d.clear();
  await new Promise((r) => setTimeout(r, 60));
  expect(d.aborted).toBe(false);
  expect(called).toBe(false);
});

test('sleep() resolves after its time, or rejects with the reason when the deadline comes first', async () => {
  const d = new Deadline(10_000);
  const t0 = Date.now();
  await d.sleep(30, () => new Error('late'));
  expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
  const slept = d.sleep(5_000, () => new Error('proxy_timeout'));
  d.expire();
  await expect(slept).rejects.toThrow('proxy_timeout');
  await expect(d.sleep(1, () => new Error('already'))).rejects.toThrow('already');
  d.clear();
});
