/**
 * The auth cache: positive and negative TTLs apart, keyed by the password's keyed hash (never
 * the password), a size bound that evicts the least recently used, flush all / by user, and
 * expired positive entries kept for outages only.
 */
import { describe, expect, test } from 'vitest';
import { AuthCache, type CachedResult } from '../../../src/passdb/cache.js';

const ok = (user: string, extra = ''): CachedResult => ({ kind: 'ok', user, fields: new Map([['host', `10.0.0.1${extra}`]]), passdb: 'p' });
const miss: CachedResult = { kind: 'mismatch', passdb: 'p', fields: new Map() };

function cache(opts: { maxBytes?: number; ttlMs?: number; negativeTtlMs?: number } = {}) {
  let now = 0;
  const c = new AuthCache({ maxBytes: opts.maxBytes ?? 1 << 20, ttlMs: opts.ttlMs ?? 1000, negativeTtlMs: opts.negativeTtlMs ?? 100, now: () => now });
  return { c, tick: (ms: number) => (now += ms) };
}

describe('auth cache', () => {
  test('positive and negative results expire after their own TTLs; expired positives stay (stale)', () => {
    const { c, tick } = cache();
    const good = c.key('auth', 'alice', undefined, [], Buffer.from('pw'));
    const bad = c.key('auth', 'alice', undefined, [], Buffer.from('wrong'));
    c.set(good, ['alice'], ok('alice'));
    c.set(bad, ['alice'], miss);
    tick(50);
    expect(c.get(good)?.fresh).toBe(true);
    expect(c.get(bad)?.fresh).toBe(true);
    tick(100);
    expect(c.get(bad)?.fresh).toBe(false);
    expect(c.get(good)?.fresh).toBe(true);
    tick(1000);
    expect(c.get(good)).toMatchObject({ fresh: false, result: { kind: 'ok' } });
    expect(c.stats()).toMatchObject({ hits: 3 });
  });

  test('a TTL of 0 caches nothing of that kind', () => {
    const { c } = cache({ negativeTtlMs: 0 });
    const k = c.key('auth', 'a', undefined, [], Buffer.from('x'));
    c.set(k, ['a'], miss);
    expect(c.get(k)).toBeUndefined();
  });

  test('keys differ by password, mode, master and variables, and hold no password text', () => {
    const { c } = cache();
    const k = c.key('auth', 'alice', undefined, ['192.0.2.1'], Buffer.from('s3cret-password'));
    expect(k).not.toContain('s3cret');
    const others = [
      c.key('auth', 'alice', undefined, ['192.0.2.1'], Buffer.from('other')),
      c.key('master', 'alice', undefined, ['192.0.2.1'], Buffer.from('s3cret-password')),
      c.key('auth', 'alice', 'admin', ['192.0.2.1'], Buffer.from('s3cret-password')),
      c.key('auth', 'alice', undefined, ['192.0.2.2'], Buffer.from('s3cret-password')),
      c.key('auth', 'alice', undefined, ['192.0.2.1'], undefined),
    ];
    expect(new Set([k, ...others]).size).toBe(6);
  });

  test('the size bound evicts the least recently used', () => {
    const { c } = cache({ maxBytes: 2000 });
    const keys = Array.from({ length: 50 }, (_, i) => c.key('auth', `user${i}`, undefined, [], Buffer.from('pw')));
    keys.forEach((k, i) => {
      c.set(k, [`user${i}`], ok(`user${i}`));
      if (i > 0) c.get(keys[0] ?? ''); // keep the first one in use
    });
    const s = c.stats();
    expect(s.bytes).toBeLessThanOrEqual(2000);
    expect(s.entries).toBeLessThan(50);
    expect(c.get(keys[0] ?? '')).toBeDefined();
    expect(c.get(keys[1] ?? '')).toBeUndefined();
  });

  test('flush all, or one user (also entries found under a canonical name)', () => {
    const { c } = cache();
    c.set(c.key('auth', 'alice', undefined, [], Buffer.from('1')), ['alice'], ok('alice'));
    c.set(c.key('auth', 'alice', undefined, [], Buffer.from('2')), ['alice'], miss);
    c.set(c.key('auth', 'ALICE', undefined, [], Buffer.from('1')), ['ALICE'], ok('alice'));
    c.set(c.key('auth', 'bob', undefined, [], Buffer.from('1')), ['bob'], ok('bob'));
    expect(c.flush('alice')).toBe(3);
    expect(c.stats().entries).toBe(1);
    expect(c.flush()).toBe(1);
    expect(c.stats().entries).toBe(0);
  });
});
