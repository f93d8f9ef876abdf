import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { KeptConnections, LMTP_KEPT_IDLE_TIMEOUT, LMTP_MAX_KEPT_CONNECTIONS } from '../../../src/lmtp/pool.js';
import { StubConnection as Stub } from '../../support/stub-connection.js';

describe('KeptConnections', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('a kept connection is taken once, for its key and the same client facts only', () => {
    const pool = new KeptConnections<Stub>();
    const a = new Stub('a');
    pool.put(a, 'facts');
    expect(pool.take('b', 'facts')).toBeUndefined();
    expect(pool.take('a', 'facts')).toBe(a);
    expect(pool.take('a', 'facts')).toBeUndefined();
    expect(a.quits).toBe(0);
    pool.put(a, 'facts');
    expect(pool.take('a', 'other facts')).toBeUndefined();
    expect(a.quits).toBe(1);
    expect(pool.size).toBe(0);
  });

  test('a connection that is not reusable is QUIT, not kept', () => {
    const pool = new KeptConnections<Stub>();
    const a = new Stub('a');
    a.reusable = false;
    pool.put(a, 'f');
    expect(a.quits).toBe(1);
    expect(pool.size).toBe(0);
  });

  test(`at most LMTP_MAX_KEPT_CONNECTIONS (${LMTP_MAX_KEPT_CONNECTIONS}): the least recently used gets QUIT`, () => {
    const pool = new KeptConnections<Stub>();
    const conns = Array.from({ length: LMTP_MAX_KEPT_CONNECTIONS + 1 }, (_, i) => new Stub(`k${i}`));
    for (const c of conns.slice(0, LMTP_MAX_KEPT_CONNECTIONS)) pool.put(c, 'f');
    // Using k0 again makes k1 the least recently used.
    const first = pool.take('k0', 'f');
    expect(first).toBe(conns[0]);
    pool.put(conns[0] as Stub, 'f');
    pool.put(conns[LMTP_MAX_KEPT_CONNECTIONS] as Stub, 'f');
    expect(pool.size).toBe(LMTP_MAX_KEPT_CONNECTIONS);
    expect(conns.map((c) => c.quits)).toEqual(conns.map((c) => (c.route.key === 'k1' ? 1 : 0)));
    expect(pool.take('k1', 'f')).toBeUndefined();
  });

  test(`QUIT after LMTP_KEPT_IDLE_TIMEOUT (${LMTP_KEPT_IDLE_TIMEOUT} ms) unused; taking it stops the timer`, () => {
    const pool = new KeptConnections<Stub>();
    const a = new Stub('a');
    const b = new Stub('b');
    pool.put(a, 'f');
    pool.put(b, 'f');
    vi.advanceTimersByTime(LMTP_KEPT_IDLE_TIMEOUT - 1);
    expect(pool.take('b', 'f')).toBe(b);
    vi.advanceTimersByTime(1);
    expect(a.quits).toBe(1);
    expect(b.quits).toBe(0);
    expect(pool.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a connection the backend closes while kept is forgotten at once', () => {
    const dropped: string[] = [];
    const pool = new KeptConnections<Stub>({ onDrop: (c, why) => dropped.push(`${c.route.key}: ${why}`) });
    const a = new Stub('a');
    pool.put(a, 'f');
    a.lose();
    expect(pool.size).toBe(0);
    expect(dropped).toEqual(['a: lost']);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('clear and close QUIT everything; after close nothing is kept', () => {
    const pool = new KeptConnections<Stub>();
    const a = new Stub('a');
    const b = new Stub('b');
    pool.put(a, 'f');
    pool.clear('xclient');
    expect(a.quits).toBe(1);
    pool.put(b, 'f');
    pool.close();
    expect(b.quits).toBe(1);
    const c = new Stub('c');
    pool.put(c, 'f');
    expect(c.quits).toBe(1);
    expect(pool.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
