import { describe, expect, test } from 'vitest';
import { decideRoute, type RouteInput } from '../../../src/backend/route.js';
import type { ProxyTarget } from '../../../src/passdb/fields.js';

const target = (over: Partial<ProxyTarget> = {}): ProxyTarget => ({
  mode: 'proxy', always: false, host: 'mail.example.org', tls: 'none', anyCert: false, nopipelining: false, notTrusted: false, forward: new Map(), ...over,
});

const input = (over: Partial<RouteInput> = {}): RouteInput => ({
  target: target(),
  addresses: ['10.0.0.7'],
  port: 143,
  user: 'alice',
  destuser: 'alice',
  selfAddresses: new Set(['10.0.0.1', '192.0.2.1']),
  selfPort: 143,
  ttl: 4,
  ...over,
});

const LOCAL = { host: '127.0.0.1', port: 10143 };
const kindOf = (i: RouteInput): string => {
  const r = decideRoute(i);
  return r.kind === 'refuse' ? `refuse:${r.failure.kind}` : r.kind;
};

describe('route decision', () => {
  // [name, input overrides, expected]
  const cases: [string, Partial<RouteInput>, string][] = [
    ['proxy to another host', {}, 'remote'],
    ['proxy to our address on another port', { addresses: ['10.0.0.1'], port: 1143, target: target({ port: 1143 }) }, 'remote'],
    ['proxy to our address and port, same user: loop', { addresses: ['10.0.0.1'], target: target({ port: 143 }) }, 'refuse:loop'],
    ['proxy to our address and default port, same user: loop', { addresses: ['10.0.0.1'] }, 'refuse:loop'],
    ['proxy to our address and port, other destuser: allowed', { addresses: ['10.0.0.1'], destuser: 'bob' }, 'remote'],
    ['proxy to an auth_proxy_self address: loop', { addresses: ['192.0.2.1'] }, 'refuse:loop'],
    ['any resolved address counts', { addresses: ['10.0.0.9', '10.0.0.1'] }, 'refuse:loop'],
    ['proxy with TTL used up', { ttl: 0 }, 'refuse:loop'],
    ['proxy_maybe to another host', { target: target({ mode: 'proxy_maybe' }) }, 'remote'],
    ['proxy_maybe to self without port, local backend', { target: target({ mode: 'proxy_maybe' }), addresses: ['10.0.0.1'], port: 143, localBackend: LOCAL }, 'local'],
    ['proxy_maybe to self with our port, local backend', { target: target({ mode: 'proxy_maybe', port: 143 }), addresses: ['10.0.0.1'], localBackend: LOCAL }, 'local'],
    ['proxy_maybe to our address on another port is remote', { target: target({ mode: 'proxy_maybe', port: 2143 }), addresses: ['10.0.0.1'], port: 2143, localBackend: LOCAL }, 'remote'],
    ['proxy_maybe to self, no local backend', { target: target({ mode: 'proxy_maybe' }), addresses: ['10.0.0.1'] }, 'refuse:config'],
    ['proxy_maybe to self goes local even with TTL 0', { target: target({ mode: 'proxy_maybe' }), addresses: ['10.0.0.1'], ttl: 0, localBackend: LOCAL }, 'local'],
    ['proxy_maybe + proxy_always to self: placement seam', { target: target({ mode: 'proxy_maybe', always: true }), addresses: ['10.0.0.1'], localBackend: LOCAL }, 'refuse:config'],
    ['proxy_maybe + proxy_always elsewhere: remote', { target: target({ mode: 'proxy_maybe', always: true }) }, 'remote'],
    ['no address at all', { addresses: [] }, 'refuse:connect'],
  ];
  for (const [name, over, expected] of cases) {
    test(name, () => expect(kindOf(input(over))).toBe(expected));
  }

  test('remote uses the first resolved address and the effective port', () => {
    expect(decideRoute(input({ addresses: ['10.0.0.7', '10.0.0.8'], port: 993 }))).toEqual({ kind: 'remote', address: '10.0.0.7', port: 993 });
  });

  test('refusals explain themselves for the log', () => {
    const r = decideRoute(input({ addresses: ['10.0.0.1'] }));
    expect(r.kind === 'refuse' && r.failure.detail).toBe('Proxying loops to itself: mail.example.org:143');
  });
});
