/**
 * Node's own floor for an idle session's memory: a bare `node:net` or `node:tls` server (in a
 * child process, so only its RSS counts) holding silent sessions that did one round trip.
 * What a portier session costs above this is portier's; below it no Node proxy can go.
 *
 *   node dist-bench/bench/floor.js [--sessions 4000] [--warm 500]
 *
 * Prints one JSON line per kind: {"kind":"tls","sessions":4000,"rssKiBPerSession":28.2,...}.
 * Uses an ECDSA P-256 certificate made with openssl in a temp dir (compare/setup.ts makeCert); binds 127.0.4.1 (server)
 * and 127.0.0.5 (clients).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer as netServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeCert } from './compare/setup.js';

type Kind = 'plain' | 'tls';
type ToParent = { port: number } | { rssKiB: number; heapKiB: number };

const HOST = '127.0.4.1';
const SOURCE = '127.0.0.5';
const BATCH = 50;

/** The child: a server that greets, echoes, and reports its memory when asked. */
function serve(kind: Kind, cert: { cert: string; key: string }): void {
  const onConn = (s: Socket): void => {
    s.on('error', () => s.destroy());
    s.write('* OK ready\r\n');
    s.on('data', (d: Buffer) => s.write(d));
  };
  const srv = kind === 'tls'
    ? tlsServer({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) }, onConn)
    : netServer(onConn);
  srv.listen(0, HOST, () => process.send?.({ port: (srv.address() as AddressInfo).port } satisfies ToParent));
  process.on('message', () => {
    const m = process.memoryUsage();
    process.send?.({ rssKiB: m.rss / 1024, heapKiB: m.heapUsed / 1024 } satisfies ToParent);
  });
  process.on('disconnect', () => process.exit(0));
}

function next(child: ChildProcess): Promise<ToParent> {
  return new Promise((resolve) => child.once('message', (m: ToParent) => resolve(m)));
}

function openOne(kind: Kind, port: number, held: Socket[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = kind === 'tls'
      ? tlsConnect({ socket: netConnect({ host: HOST, port, localAddress: SOURCE }), rejectUnauthorized: false })
      : netConnect({ host: HOST, port, localAddress: SOURCE });
    held.push(s);
    s.once('error', reject);
    s.once('data', () => {
      s.write('a NOOP\r\n');
      s.once('data', () => resolve());
    });
  });
}

async function open(kind: Kind, port: number, n: number, held: Socket[]): Promise<void> {
  for (let i = 0; i < n; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => openOne(kind, port, held)));
  }
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(kind: Kind, sessions: number, warm: number, cert: { cert: string; key: string }): Promise<Record<string, unknown>> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind, '--cert', cert.cert, '--key', cert.key], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const held: Socket[] = [];
  try {
    const { port } = (await next(child)) as { port: number };
    // Warm first (JIT, heap growth, OpenSSL's caches), then the marginal cost of `sessions` more.
    await open(kind, port, warm, held);
    await settle(1500);
    child.send('sample');
    const a = (await next(child)) as { rssKiB: number; heapKiB: number };
    await open(kind, port, sessions, held);
    await settle(2500);
    child.send('sample');
    const b = (await next(child)) as { rssKiB: number; heapKiB: number };
    const per = (x: number, y: number): number => Math.round(((y - x) / sessions) * 10) / 10;
    return { kind, sessions, rssKiBPerSession: per(a.rssKiB, b.rssKiB), heapKiBPerSession: per(a.heapKiB, b.heapKiB), node: process.version };
  } finally {
    for (const s of held) s.destroy();
    child.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      sessions: { type: 'string', default: '4000' },
      warm: { type: 'string', default: '500' },
    },
  });
  if (values.serve === 'plain' || values.serve === 'tls') {
    serve(values.serve, { cert: values.cert ?? '', key: values.key ?? '' });
    return;
  }
  const sessions = Number(values.sessions);
  const warm = Number(values.warm);
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > 8000 || !Number.isInteger(warm) || warm < 0 || warm > 2000) {
    process.stderr.write('floor: --sessions 1..8000 and --warm 0..2000 (a process may hold 20,000 files here)\n');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'portier-floor-'));
  try {
    const cert = await makeCert(dir, 'ecdsa', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    for (const kind of ['plain', 'tls'] as const) process.stdout.write(`${JSON.stringify(await measure(kind, sessions, warm, cert))}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
