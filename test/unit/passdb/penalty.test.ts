/**
 * The in-memory failure penalty (no Redis configured, or Redis unreachable): Dovecot's delays
 * (initial × 2^penalty, capped), repeat detection, decay after quiet time, reset on success,
 * IPv6 per /64.
 */
import { describe, expect, test } from 'vitest';
import { AuthPenalty } from '../../../src/passdb/penalty.js';
import { silentLogger } from '../../../src/telemetry/log.js';

function penalty(extra: { redis?: string } = {}) {
  let now = 1_000_000;
  const p = new AuthPenalty({ initialDelayMs: 2000, maxDelayMs: 15_000, ipv6Prefix: 64, log: silentLogger(), now: () => now, ...extra });
  return { p, advance: (ms: number) => (now += ms) };
}

describe('auth penalty in memory', () => {
  test("Dovecot's schedule: nothing, then 4 s, 8 s, 15 s, 15 s", async () => {
    const { p } = penalty();
    const seenDelays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const seen = await p.lookup('192.0.2.1');
      seenDelays.push(seen.delayMs);
      await p.failed(seen, 'alice', Buffer.from(`wrong-${i}`));
    }
    expect(seenDelays).toEqual([0, 4000, 8000, 15_000, 15_000]);
    expect((await p.lookup('192.0.2.2')).delayMs).toBe(0);
  });

  test('a repeated user+password does not raise it; a success resets it', async () => {
    const { p } = penalty();
    await p.failed(await p.lookup('192.0.2.1'), 'alice', Buffer.from('stale'));
    await p.failed(await p.lookup('192.0.2.1'), 'alice', Buffer.from('stale'));
    expect((await p.lookup('192.0.2.1')).penalty).toBe(1);
    await p.succeeded(await p.lookup('192.0.2.1'));
    expect((await p.lookup('192.0.2.1')).delayMs).toBe(0);
  });

  test('it decays after a quiet time', async () => {
    const { p, advance } = penalty();
    for (let i = 0; i < 4; i++) await p.failed(await p.lookup('192.0.2.1'), 'a', Buffer.from(String(i)));
    expect((await p.lookup('192.0.2.1')).penalty).toBe(4);
    advance(16_000);
    expect((await p.lookup('192.0.2.1')).penalty).toBeLessThan(4);
    advance(60_000);
    expect((await p.lookup('192.0.2.1')).penalty).toBe(0);
  });

  test('IPv6 clients share one penalty per /64', async () => {
    const { p } = penalty();
    await p.failed(await p.lookup('2001:db8:1:2::1'), 'a', Buffer.from('x'));
    expect((await p.lookup('2001:db8:1:2:ffff::9')).penalty).toBe(1);
    expect((await p.lookup('2001:db8:1:3::1')).penalty).toBe(0);
  });

  test('Redis configured but unreachable: the process falls back to memory', async () => {
    const { p } = penalty({ redis: 'redis://127.0.0.1:1' });
    try {
      await p.failed(await p.lookup('192.0.2.1'), 'a', Buffer.from('x'));
      expect((await p.lookup('192.0.2.1')).delayMs).toBe(4000);
    } finally {
      await p.close();
    }
  });
});
