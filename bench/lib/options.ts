/** The load generator's options, shared by the CLI, the worker threads and the compare runner. */
import type { Endpoint, KeyType, TlsMode } from './wire.js';

export const MODES = ['login', 'pop3-login', 'lmtp', 'throughput', 'idle', 'latency'] as const;
export type Mode = (typeof MODES)[number];

export interface UserRange {
  /** printf-like: `%d` is replaced by the number. */
  format: string;
  from: number;
  to: number;
}

export interface BenchOptions {
  mode: Mode;
  host: string;
  port: number;
  tls: TlsMode;
  source?: string;
  servername?: string;
  keyType?: KeyType;
  /** Concurrent clients (sessions for throughput, sampler sessions for latency). */
  clients: number;
  /** Worker threads the clients are spread over. */
  threads: number;
  durationMs: number;
  /** Load before the measured window, not counted (JIT warm-up of the target). */
  warmupMs: number;
  maxOps: number;
  /** Bound on one operation (connect to LOGOUT, one FETCH, ...). */
  timeoutMs: number;
  users: UserRange;
  /** Password, `%d` replaced by the user's number. */
  password: string;
  /** The user of single-user modes (throughput, latency, idle samplers); default: the range's first. */
  user?: string;
  /** LMTP DATA size, APPEND size. */
  size: number;
  rcpts: number;
  /** LMTP transactions per connection. */
  perConn: number;
  /** throughput: FETCH a stored message or APPEND one. */
  op: 'fetch' | 'append';
  mailbox: string;
  /** throughput: the FETCHed message's size, verified on every FETCH (default: the first one seen). */
  expectSize?: number;
  /** idle: sessions held, how many per holder process, NOOP samplers and their interval. */
  sessions: number;
  perProcess: number;
  /** idle: the ramp's steps, RSS sampled after each (the per-session figure is fitted over them). */
  steps: number;
  samplers: number;
  sampleIntervalMs: number;
  /** idle: the longest the sessions may take to log in. */
  rampTimeoutMs: number;
  /** PIDs of the proxy under test (their child processes are added). */
  pids: number[];
  /** PIDs of a helper of the proxy (nginx's auth_http server), accounted separately. */
  auxPids: number[];
  progress: boolean;
  label?: string;
}

export const DEFAULTS: Omit<BenchOptions, 'mode' | 'port'> = {
  host: '127.0.0.1',
  tls: 'none',
  source: '127.0.0.5',
  clients: 32,
  threads: 2,
  durationMs: 10_000,
  warmupMs: 0,
  maxOps: 10_000_000,
  timeoutMs: 10_000,
  users: { format: 'user%d', from: 1, to: 10_000 },
  password: 'pass%d',
  size: 4096,
  rcpts: 1,
  perConn: 10,
  op: 'fetch',
  mailbox: 'INBOX',
  sessions: 2000,
  perProcess: 8000,
  steps: 6,
  samplers: 4,
  sampleIntervalMs: 20,
  rampTimeoutMs: 180_000,
  pids: [],
  auxPids: [],
  progress: true,
};

/** Per-process open-file limit here is 20,000; each held session costs one fd in the holder. */
export const MAX_PER_PROCESS = 8000;

/** `10s`, `500ms`, `2m`, or a bare number of seconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/.exec(text);
  if (m?.[1] === undefined) throw new Error(`not a duration: ${JSON.stringify(text)} (use 10s, 500ms, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000));
}

/** `64k`, `10M`, `1G`, or bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG])?[bB]?\s*$/.exec(text);
  if (m?.[1] === undefined) throw new Error(`not a size: ${JSON.stringify(text)} (use 4k, 10M)`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

/** `user%d:1-10000` (or a single name, which is a range of one). */
export function parseUsers(text: string): UserRange {
  const m = /^(.*%d.*):(\d+)-(\d+)$/.exec(text);
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) {
    if (text.includes('%d') || text.includes(':')) throw new Error(`--users: expected FORMAT:FROM-TO like user%d:1-10000, got ${JSON.stringify(text)}`);
    return { format: text, from: 1, to: 1 };
  }
  const from = Number(m[2]);
  const to = Number(m[3]);
  if (to < from) throw new Error(`--users: empty range ${from}-${to}`);
  return { format: m[1], from, to };
}

export function userName(r: UserRange, n: number): string {
  return r.format.replaceAll('%d', String(n));
}

export function passwordFor(o: Pick<BenchOptions, 'password'>, n: number): string {
  return o.password.replaceAll('%d', String(n));
}

export function randomUser(o: Pick<BenchOptions, 'users' | 'password'>): { user: string; pass: string } {
  const n = o.users.from + Math.floor(Math.random() * (o.users.to - o.users.from + 1));
  return { user: userName(o.users, n), pass: passwordFor(o, n) };
}

/** The single user of session modes: --user, else the first of the range. */
export function fixedUser(o: BenchOptions): { user: string; pass: string } {
  if (o.user !== undefined) {
    const m = new RegExp(`^${o.users.format.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('%d', '(\\d+)')}$`).exec(o.user);
    return { user: o.user, pass: passwordFor(o, m?.[1] !== undefined ? Number(m[1]) : o.users.from) };
  }
  return { user: userName(o.users, o.users.from), pass: passwordFor(o, o.users.from) };
}

export function endpoint(o: BenchOptions): Endpoint {
  return {
    host: o.host,
    port: o.port,
    tls: o.tls,
    ...(o.source !== undefined && o.source !== '' ? { source: o.source } : {}),
    ...(o.servername !== undefined ? { servername: o.servername } : {}),
    ...(o.keyType !== undefined ? { keyType: o.keyType } : {}),
  };
}
