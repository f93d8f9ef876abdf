import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { IDLE_BACKEND_TIMEOUT, IdleBackends } from '../../../src/backend/idle.js';
import { KeptConnections } from '../../../src/lmtp/pool.js';
import { StubConnection as Stub } from '../../support/stub-connection.js';

describe('IdleBackends', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('per backend, the most recently released first; each taken once', () => {
    const idle = new IdleBackends<Stub>();
    const [a1, a2, b1] = [new Stub('a'), new Stub('a'), new Stub('b')];
    idle.put(a1, 8);
    idle.put(a2, 8);
    idle.put(b1, 8);
    expect(idle.size).toBe(3);
    expect(idle.take('c')).toBeUndefined();
    expect(idle.take('a')).toBe(a2);
    expect(idle.take('a')).toBe(a1);
    expect(idle.take('a')).toBeUndefined();
    expect(idle.take('b')).toBe(b1);
    expect(idle.size).toBe(0);
    expect([a1, a2, b1].map((c) => c.quits)).toEqual([0, 0, 0]);
  });

  test('what cannot carry another session is QUIT, not kept: not shareable, max 0, after close', () => {
    const idle = new IdleBackends<Stub>();
    const spent = new Stub('a');
    spent.shareable = false;
    idle.put(spent, 8);
    const off = new Stub('a');
    idle.put(off, 0);
    expect(idle.size).toBe(0);
    expect([spent.quits, off.quits]).toEqual([1, 1]);
    const kept = new Stub('a');
    idle.put(kept, 8);
    idle.close();
    expect(kept.quits).toBe(1);
    const late = new Stub('a');
    idle.put(late, 8);
    expect(late.quits).toBe(1);
    expect(idle.size).toBe(0);
  });

  test('past max per backend the oldest gets QUIT; other backends are not counted', () => {
    const dropped: string[] = [];
    const idle = new IdleBackends<Stub>({ onDrop: (c, why) => dropped.push(`${c.route.name}: ${why}`) });
    const a = [new Stub('a'), new Stub('a'), new Stub('a')];
    const b = new Stub('b');
    idle.put(b, 2);
    for (const c of a) idle.put(c, 2);
    expect(a.map((c) => c.quits)).toEqual([1, 0, 0]);
    expect(b.quits).toBe(0);
    expect(idle.size).toBe(3);
    expect(dropped).toEqual(['a: too many idle']);
  });

  test(`unused for IDLE_BACKEND_TIMEOUT (${IDLE_BACKEND_TIMEOUT} ms): QUIT`, () => {
    const idle = new IdleBackends<Stub>();
    const a = new Stub('a');
    idle.put(a, 8);
    vi.advanceTimersByTime(IDLE_BACKEND_TIMEOUT - 1);
    expect(a.quits).toBe(0);
    vi.advanceTimersByTime(1);
    expect(a.quits).toBe(1);
    expect(idle.take('a')).toBeUndefined();
    // A taken one's timer is stopped.
    const b = new Stub('b');
    idle.put(b, 8);
    expect(idle.take('b')).toBe(b);
    vi.advanceTimersByTime(IDLE_BACKEND_TIMEOUT * 2);
    expect(b.quits).toBe(0);
  });

  test('closed by the backend while idle: forgotten, and never handed out', () => {
    const idle = new IdleBackends<Stub>();
    const [a1, a2] = [new Stub('a'), new Stub('a')];
    idle.put(a1, 8);
    idle.put(a2, 8);
    a2.lose();
    expect(idle.size).toBe(1);
    expect(idle.take('a')).toBe(a1);
    // One that stopped being shareable without telling (its socket went): skipped and QUIT.
    const [b1, b2] = [new Stub('b'), new Stub('b')];
    idle.put(b1, 8);
    idle.put(b2, 8);
    b2.shareable = false;
    expect(idle.take('b')).toBe(b1);
    expect(b2.quits).toBe(1);
  });

  test('a backend that refused a second XCLIENT: its idle connections go, and none is kept again', () => {
    const idle = new IdleBackends<Stub>();
    const [a1, a2, b1] = [new Stub('a'), new Stub('a'), new Stub('b')];
    idle.put(a1, 8);
    idle.put(b1, 8);
    idle.refusedBy('a');
    expect(a1.quits).toBe(1);
    idle.put(a2, 8);
    expect(a2.quits).toBe(1);
    expect(idle.take('a')).toBeUndefined();
    expect(idle.take('b')).toBe(b1);
  });
});

describe('KeptConnections.close with a release', () => {
  test('each kept connection goes to the release instead of QUIT, and nothing is kept after', () => {
    const kept = new KeptConnections<Stub>();
    const [a, b] = [new Stub('a'), new Stub('b')];
    kept.put(a, 'facts');
    kept.put(b, 'facts');
    const released: Stub[] = [];
    kept.close((c) => released.push(c));
    expect(released).toEqual([a, b]);
    expect([a.quits, b.quits]).toEqual([0, 0]);
    const late = new Stub('c');
    kept.put(late, 'facts');
    expect(late.quits).toBe(1);
  });
});
