/**
 * What the compare run measures: scenarios (a load-generator mode against one backend, with
 * its parameters), the targets each runs against, and the goal for each scenario.
 */
import type { Mode } from '../lib/options.js';
import type { KeyType, TlsMode } from '../lib/wire.js';
import { ADDR, DOVECOT_USERS, INSTANT_USERS, PORTS, USERS } from './setup.js';

/** `floor` (bench/floor-proxy.ts, the Node floor) only runs with `--with-floor`. */
export const TARGETS = ['direct', 'portier', 'dovecot', 'nginx', 'floor'] as const;
export type Target = (typeof TARGETS)[number];

export type Backend = 'dovecot' | 'instant';

/** The number a scenario is judged by; `higherBetter` says which way wins. */
export type Metric = 'rate' | 'mbPerS' | 'cpuUsPerOp' | 'p50AddedUs' | 'rssKiBPerSession';

export interface Goal {
  /** What the issue asks, in words. */
  text: string;
  /** portier's value must satisfy this against the scenario's numbers. */
  check: (v: ScenarioValues) => boolean | undefined;
}

export type ScenarioValues = Partial<Record<Target, number>>;

export interface Scenario {
  id: string;
  title: string;
  mode: Mode;
  backend: Backend;
  tls: TlsMode;
  keyType?: KeyType;
  args: string[];
  targets: Target[];
  metric: Metric;
  /** Only in the full profile. */
  full?: boolean;
  goal?: Goal;
  /** idle: restart the proxy first, so RSS is measured from a fresh process. */
  fresh?: boolean;
  /** The Node floor means something here (it runs with `--with-floor`). */
  floor?: boolean;
}

const ALL: Target[] = ['direct', 'portier', 'dovecot', 'nginx'];
const PROXIES: Target[] = ['portier', 'dovecot', 'nginx'];

const ratio = (min: number) => (v: ScenarioValues): boolean | undefined =>
  v.portier === undefined || v.direct === undefined ? undefined : v.portier >= min * v.direct;
/** A figure at or below zero (memory returned to the system during the ramp) is no measurement. */
const atMost = (max: number) => (v: ScenarioValues): boolean | undefined => (v.portier === undefined || v.portier <= 0 ? undefined : v.portier <= max);
const beatsPeers = (higher: boolean) => (v: ScenarioValues): boolean | undefined => {
  if (v.portier === undefined) return undefined;
  const p = v.portier;
  return [v.dovecot, v.nginx].every((x) => x === undefined || (higher ? p >= x : p <= x));
};

export function scenarios(o: { clients: number; lmtpSize: string; idleSmall: number; idleLarge: number; floor?: boolean }): Scenario[] {
  const c = String(o.clients);
  const list: Scenario[] = [
    { id: 'login-imap', floor: true, title: `IMAP logins, ${c} clients`, mode: 'login', backend: 'dovecot', tls: 'none', args: ['-c', c], targets: ALL, metric: 'rate', goal: { text: '≥ 0.8× direct', check: ratio(0.8) } },
    { id: 'login-imap-instant', floor: true, title: `CPU per IMAP login (instant backend, ${c} clients)`, mode: 'login', backend: 'instant', tls: 'none', args: ['-c', c], targets: ALL, metric: 'cpuUsPerOp',
      goal: { text: '< nginx workers alone, < 0.4× Dovecot', check: (v) => (v.portier === undefined ? undefined : (v.nginx === undefined || v.portier < v.nginx) && (v.dovecot === undefined || v.portier < 0.4 * v.dovecot)) } },
    { id: 'login-imaps', title: `IMAPS logins, ${c} clients (ECDSA)`, mode: 'login', backend: 'dovecot', tls: 'implicit', keyType: 'ecdsa', args: ['-c', c], targets: ALL, metric: 'rate', goal: { text: '≥ 1.0× direct', check: ratio(1.0) } },
    { id: 'login-imaps-instant', floor: true, title: `IMAPS logins (ECDSA), direct = bare node:tls`, mode: 'login', backend: 'instant', tls: 'implicit', keyType: 'ecdsa', args: ['-c', c], targets: ALL, metric: 'rate', goal: { text: '≥ 0.8× bare node:tls', check: ratio(0.8) } },
    { id: 'login-imaps-rsa', title: `IMAPS logins, ${c} clients (RSA-2048)`, mode: 'login', backend: 'dovecot', tls: 'implicit', keyType: 'rsa', args: ['-c', c], targets: ALL, metric: 'rate', full: true, goal: { text: '≥ 1.0× direct', check: ratio(1.0) } },
    { id: 'login-imaps-rsa-instant', floor: true, title: `IMAPS logins (RSA-2048), direct = bare node:tls`, mode: 'login', backend: 'instant', tls: 'implicit', keyType: 'rsa', args: ['-c', c], targets: ALL, metric: 'rate', full: true, goal: { text: '≥ 0.8× bare node:tls', check: ratio(0.8) } },
    { id: 'login-pop3', floor: true, title: `POP3 logins, ${c} clients`, mode: 'pop3-login', backend: 'dovecot', tls: 'none', args: ['-c', c], targets: ALL, metric: 'rate', goal: { text: '≥ 0.8× direct', check: ratio(0.8) } },
    { id: 'login-pop3-instant', floor: true, title: `CPU per POP3 login (instant backend)`, mode: 'pop3-login', backend: 'instant', tls: 'none', args: ['-c', c], targets: ALL, metric: 'cpuUsPerOp', full: true, goal: { text: 'below the peers', check: beatsPeers(false) } },
    { id: 'lmtp', title: `LMTP deliveries of ${o.lmtpSize}, 16 clients`, mode: 'lmtp', backend: 'dovecot', tls: 'none', args: ['-c', '16', '--size', o.lmtpSize], targets: ['direct', 'portier', 'dovecot'], metric: 'rate', goal: { text: '≥ 0.75× direct', check: ratio(0.75) } },
    { id: 'fetch-1', floor: true, title: 'FETCH of 10 MB, one stream', mode: 'throughput', backend: 'dovecot', tls: 'none', args: ['-c', '1'], targets: ALL, metric: 'mbPerS', goal: { text: '≥ 0.85× direct', check: ratio(0.85) } },
    { id: 'fetch-8', floor: true, title: 'FETCH of 10 MB, eight streams', mode: 'throughput', backend: 'dovecot', tls: 'none', args: ['-c', '8'], targets: ALL, metric: 'mbPerS', goal: { text: '≥ 0.7× direct', check: ratio(0.7) } },
    { id: 'fetch-1-tls', title: 'FETCH of 10 MB, one stream, client TLS', mode: 'throughput', backend: 'dovecot', tls: 'implicit', keyType: 'ecdsa', args: ['-c', '1'], targets: ALL, metric: 'mbPerS', goal: { text: 'ahead of nginx and Dovecot', check: beatsPeers(true) } },
    { id: 'fetch-8-tls', title: 'FETCH of 10 MB, eight streams, client TLS', mode: 'throughput', backend: 'dovecot', tls: 'implicit', keyType: 'ecdsa', args: ['-c', '8'], targets: ALL, metric: 'mbPerS', full: true, goal: { text: 'ahead of nginx and Dovecot', check: beatsPeers(true) } },
    { id: 'fetch-1-instant', floor: true, title: 'FETCH of 10 MB, one stream, instant backend', mode: 'throughput', backend: 'instant', tls: 'none', args: ['-c', '1'], targets: ALL, metric: 'mbPerS', full: true },
    { id: 'noop-instant', floor: true, title: 'NOOP p50 added (instant backend)', mode: 'latency', backend: 'instant', tls: 'none', args: [], targets: ALL, metric: 'p50AddedUs', goal: { text: 'p50 ≤ +25 µs (p99 ≤ +150 µs)', check: atMost(25) } },
    { id: 'noop-dovecot', floor: true, title: 'NOOP p50 added (Dovecot backend)', mode: 'latency', backend: 'dovecot', tls: 'none', args: [], targets: ALL, metric: 'p50AddedUs', goal: { text: 'p50 ≤ +25 µs', check: atMost(25) } },
    { id: `idle-${o.idleSmall}`, floor: true, title: `Memory per idle session, ${o.idleSmall} sessions`, mode: 'idle', backend: 'instant', tls: 'none', args: ['--sessions', String(o.idleSmall)], targets: PROXIES, metric: 'rssKiBPerSession', fresh: true, goal: { text: '≤ 9.5 KiB', check: atMost(9.5) } },
    { id: `idle-${o.idleSmall}-tls`, floor: true, title: `Memory per idle TLS session, ${o.idleSmall} sessions`, mode: 'idle', backend: 'instant', tls: 'implicit', keyType: 'ecdsa', args: ['--sessions', String(o.idleSmall)], targets: PROXIES, metric: 'rssKiBPerSession', fresh: true, goal: { text: '≤ 16 KiB', check: atMost(16) } },
    { id: `idle-${o.idleLarge}`, floor: true, title: `Memory per idle session, ${o.idleLarge} sessions`, mode: 'idle', backend: 'instant', tls: 'none', args: ['--sessions', String(o.idleLarge)], targets: PROXIES, metric: 'rssKiBPerSession', fresh: true, full: true, goal: { text: '≤ 9.5 KiB', check: atMost(9.5) } },
    { id: `idle-${o.idleLarge}-tls`, floor: true, title: `Memory per idle TLS session, ${o.idleLarge} sessions`, mode: 'idle', backend: 'instant', tls: 'implicit', keyType: 'ecdsa', args: ['--sessions', String(o.idleLarge)], targets: PROXIES, metric: 'rssKiBPerSession', fresh: true, full: true, goal: { text: '≤ 16 KiB', check: atMost(16) } },
  ];
  return o.floor === true ? list.map((s) => (s.floor === true ? { ...s, targets: [...s.targets, 'floor'] } : s)) : list;
}

export const HIGHER_BETTER: Record<Metric, boolean> = { rate: true, mbPerS: true, cpuUsPerOp: false, p50AddedUs: false, rssKiBPerSession: false };

const PROXY_ADDR: Record<Exclude<Target, 'direct'>, string> = { portier: ADDR.portier, dovecot: ADDR.dovecotProxy, nginx: ADDR.nginx, floor: ADDR.floor };

/** Address, port and user range of one scenario against one target. */
export function endpointFor(s: Scenario, t: Target): { host: string; port: number; users: string; user: string } {
  // user1 holds the large message FETCH reads; LMTP delivers to the others, so it stays message 1.
  const first = s.mode === 'lmtp' ? 2 : 1;
  const host = t === 'direct' ? (s.backend === 'dovecot' ? ADDR.dovecotBackend : ADDR.instant) : PROXY_ADDR[t];
  const secure = s.tls === 'implicit';
  const port = s.mode === 'lmtp' ? PORTS.lmtp : s.mode === 'pop3-login' ? (secure ? PORTS.pop3s : PORTS.pop3) : secure ? PORTS.imaps : PORTS.imap;
  const format = s.backend === 'dovecot' ? DOVECOT_USERS : INSTANT_USERS;
  return { host, port, users: `${format}:${first}-${USERS}`, user: format.replace('%d', '1') };
}
