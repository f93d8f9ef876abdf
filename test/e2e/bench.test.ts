/**
 * bench/ must not rot: the load generator and the instant backend, built from bench/, run for
 * about a second each mode through a real portier (in-process here), and the counts, verified
 * byte totals and accounting come out right. Nothing here asserts a speed.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { BenchResult } from '../../bench/lib/result.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { makeCert } from '../../bench/compare/setup.js';
import { runCommand, startProcess, waitFor, waitForPort, type ManagedProcess } from '../support/procs.js';
import { makeTempDir } from '../support/tmp.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BACKEND = '127.0.0.3';
const MESSAGE = 256 * 1024;
let backend: ManagedProcess;
let px: RunningPortier;
let floor: ManagedProcess;
let dir: string;
const ports = { imap: 0, pop3: 0, lmtp: 0 };
/** bench/floor-proxy.ts on 127.0.0.1, in front of the same instant backend. */
const floorPorts = { imap: 0, imaps: 0, pop3: 0, pop3s: 0 };

async function bench(mode: string, port: number, args: string[]): Promise<BenchResult> {
  const out = join(dir, `${mode}-${port}.json`);
  try {
    await runCommand(process.execPath, [join(ROOT, 'dist-bench', 'bench', 'cli.js'), mode, '--host', '127.0.0.1', '--port', String(port), '-q', '-o', out, ...args], { timeoutMs: 60_000 });
  } catch (err) {
    // Exit code 2 means "no operation succeeded": the result is still written.
    if (!/exited 2:/.test(String(err))) throw err;
  }
  return JSON.parse(await readFile(out, 'utf8')) as BenchResult;
}

beforeAll(async () => {
  dir = await makeTempDir('bench-e2e');
  await runCommand(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, 'tsconfig.bench.json')], { timeoutMs: 120_000 });
  ports.imap = await freePort(BACKEND);
  ports.pop3 = await freePort(BACKEND);
  ports.lmtp = await freePort(BACKEND);
  backend = await startProcess({
    name: 'instant-backend',
    command: process.execPath,
    args: [join(ROOT, 'dist-bench', 'bench', 'instant-backend.js'), '--host', BACKEND, '--imap', String(ports.imap), '--pop3', String(ports.pop3),
      '--lmtp', String(ports.lmtp), '--message-size', String(MESSAGE)],
  });
  await waitForPort(BACKEND, ports.imap, 10_000, backend);
  // Each protocol's users point at the instant backend's port for that protocol.
  const users = [1, 2, 3, 4].flatMap((i) => [
    `user${i}:::::::proxy=y host=${BACKEND} port=${ports.imap} nopassword=y`,
    `puser${i}:::::::proxy=y host=${BACKEND} port=${ports.pop3} nopassword=y`,
  ]).join('\n');
  px = await startPortier(
    testConfig(['imap', 'pop3'], {
      settings: { auth_penalty_max_delay: 0, login_max_preauth_per_ip: 0, mail_max_userip_connections: 0, log_level: 'warn' },
      passdb: passdbEntry('passwd-file', { args: '{{dir}}/users' }),
    }),
    { users: `${users}\n` },
  );
  // The Node floor, two workers (node:cluster, shared listeners), userN routed to the instant backend.
  const ecdsa = await makeCert(dir, 'ecdsa', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const rsa = await makeCert(dir, 'rsa', ['-newkey', 'rsa:2048']);
  for (const k of ['imap', 'imaps', 'pop3', 'pop3s'] as const) floorPorts[k] = await freePort('127.0.0.1');
  floor = await startProcess({
    name: 'floor-proxy',
    command: process.execPath,
    args: [join(ROOT, 'dist-bench', 'bench', 'floor-proxy.js'), '--host', '127.0.0.1', '--imap', String(floorPorts.imap), '--imaps', String(floorPorts.imaps),
      '--pop3', String(floorPorts.pop3), '--pop3s', String(floorPorts.pop3s), '--cert', ecdsa.cert, '--key', ecdsa.key, '--cert', rsa.cert, '--key', rsa.key,
      '--dovecot', BACKEND, '--instant', BACKEND, '--backend-imap', String(ports.imap), '--backend-pop3', String(ports.pop3), '--workers', '2'],
  });
  await waitFor('the floor proxy\'s workers', () => floor.output().includes('"ready":true'), 20_000, { proc: floor });
}, 180_000);

afterAll(async () => {
  await floor?.stop();
  await px?.stop();
  await backend?.stop();
});

describe('bench load generator through portier to the instant backend', () => {
  test('login: every cycle logs in and out, counted, with latency and CPU accounting', async () => {
    const r = await bench('login', px.port('imap'), ['-c', '4', '-t', '2', '-d', '1s', '--users', 'user%d:1-4', '--pids', String(process.pid)]);
    expect(r.mode).toBe('login');
    expect(r.errorCount).toBe(0);
    expect(r.ops).toBeGreaterThan(10);
    expect(r.latencyUs.count).toBe(r.ops);
    expect(r.latencyUs.p50).toBeGreaterThan(0);
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(r.latencyUs.p99);
    expect(r.accounting?.cpuSeconds).toBeGreaterThan(0);
    // The proxy (in this process) made system calls for every login: some of its time is the kernel's, never more than all of it.
    expect(r.accounting?.systemSeconds).toBeGreaterThan(0);
    expect(r.accounting?.systemSeconds).toBeLessThanOrEqual(r.accounting?.cpuSeconds ?? 0);
    expect(r.accounting?.pids).toContain(process.pid);
  }, 60_000);

  test('login stops at --max-ops exactly', async () => {
    const r = await bench('login', px.port('imap'), ['-c', '3', '-d', '20s', '-n', '25', '--users', 'user%d:1-4']);
    expect(r.ops).toBe(25);
    expect(r.errorCount).toBe(0);
    expect(r.elapsedS).toBeLessThan(20);
  }, 60_000);

  test('a refused login is counted by kind, not as an operation', async () => {
    const r = await bench('login', px.port('imap'), ['-c', '2', '-d', '1s', '--users', 'nobody%d:1-2']);
    expect(r.ops).toBe(0);
    expect(r.errors['auth']).toBeGreaterThan(0);
  }, 60_000);

  test('throughput: every FETCH brings the whole message, bytes verified', async () => {
    const r = await bench('throughput', px.port('imap'), ['-c', '2', '-d', '1s', '--users', 'user%d:1-4', '--expect-size', String(MESSAGE)]);
    expect(r.errorCount).toBe(0);
    expect(r.ops).toBeGreaterThan(0);
    expect(r.bytes).toBe(r.ops * MESSAGE);
  }, 60_000);

  test('throughput --append: every APPEND is acknowledged', async () => {
    const r = await bench('throughput', px.port('imap'), ['-c', '1', '-d', '1s', '--append', '--size', '64k', '--users', 'user%d:1-4']);
    expect(r.errorCount).toBe(0);
    expect(r.bytes).toBe(r.ops * 65_536);
  }, 60_000);

  test('latency: NOOP round trips on one session', async () => {
    const r = await bench('latency', px.port('imap'), ['-d', '1s', '--users', 'user%d:1-4']);
    expect(r.errorCount).toBe(0);
    expect(r.params.clients).toBe(1);
    expect(r.ops).toBeGreaterThan(50);
    expect(r.latencyUs.count).toBe(r.ops);
  }, 60_000);

  test('idle: sessions held by a holder process, RSS per session from /proc', async () => {
    const r = await bench('idle', px.port('imap'), ['--sessions', '40', '--per-process', '25', '--steps', '4', '--samplers', '2', '-d', '1s', '--users', 'user%d:1-4', '--pids', String(process.pid)]);
    expect(r.idle?.processes).toBe(2);
    expect(r.idle?.opened).toBe(40);
    expect(r.errorCount).toBe(0);
    expect(r.ops).toBeGreaterThan(0);
    // Never a negative figure: a fitted figure, or none when it was below GC noise; RSS sampled after each of 4 steps.
    const method = r.accounting?.rssPerSessionMethod;
    expect(['fit', 'noise']).toContain(method);
    if (method === 'noise') expect(r.accounting?.rssPerSessionKiB).toBeUndefined();
    else expect(r.accounting?.rssPerSessionKiB).toBeGreaterThan(0);
    expect(r.accounting?.rssFit?.points.map((p) => p.sessions)).toEqual([10, 20, 30, 40]);
    expect(r.accounting?.rssFit?.segmentsKiB).toHaveLength(3);
    expect(r.accounting?.rssFit?.spreadKiB).toBeGreaterThanOrEqual(0);
  }, 90_000);

  test('pop3-login through portier', async () => {
    const r = await bench('pop3-login', px.port('pop3'), ['-c', '2', '-d', '1s', '--users', 'puser%d:1-4']);
    expect(r.errorCount).toBe(0);
    expect(r.ops).toBeGreaterThan(5);
  }, 60_000);

  test('lmtp against the instant backend: one 250 per recipient, bytes counted per recipient', async () => {
    const r = await bench('lmtp', ports.lmtp, ['--host', BACKEND, '-c', '2', '-d', '1s', '--rcpts', '3', '--size', '4k', '--users', 'user%d:1-4']);
    expect(r.errorCount).toBe(0);
    expect(r.ops).toBeGreaterThan(5);
    expect(r.bytes).toBe(r.ops * 3 * (4096 + 3));
  }, 60_000);
});

describe('floor', () => {
  test('bare node:net and node:tls servers hold idle sessions and report their memory per session', async () => {
    const stdout = await runCommand(process.execPath, [join(ROOT, 'dist-bench', 'bench', 'floor.js'), '--sessions', '100', '--warm', '20'], { timeoutMs: 120_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; sessions: number; rssKiBPerSession: number; heapKiBPerSession: number });
    expect(lines.map((l) => l.kind)).toEqual(['plain', 'tls']);
    for (const l of lines) {
      expect(l.sessions).toBe(100);
      expect(Number.isFinite(l.rssKiBPerSession)).toBe(true);
      // Every held session keeps at least its socket object on the server's heap.
      expect(l.heapKiBPerSession).toBeGreaterThan(0);
    }
  }, 150_000);

  test('refuses more sessions than a process may hold here', async () => {
    await expect(runCommand(process.execPath, [join(ROOT, 'dist-bench', 'bench', 'floor.js'), '--sessions', '9000'], { timeoutMs: 30_000 })).rejects.toThrow(/exited 2:[\s\S]*--sessions 1\.\.8000/);
  }, 60_000);
});

describe('Node floor proxy (bench/floor-proxy.ts) in front of the instant backend', () => {
  test('logins, FETCH (bytes verified) and NOOP pass through, with CPU accounted over its workers', async () => {
    const login = await bench('login', floorPorts.imap, ['-c', '2', '-d', '1s', '--users', 'user%d:1-4', '--pids', String(floor.pid)]);
    expect(login.errorCount).toBe(0);
    expect(login.ops).toBeGreaterThan(5);
    expect(login.accounting?.pids.length).toBe(3); // the primary and its two workers
    const fetch = await bench('throughput', floorPorts.imap, ['-c', '2', '-d', '1s', '--users', 'user%d:1-4', '--expect-size', String(MESSAGE)]);
    expect(fetch.errorCount).toBe(0);
    expect(fetch.ops).toBeGreaterThan(0);
    expect(fetch.bytes).toBe(fetch.ops * MESSAGE);
    const noop = await bench('latency', floorPorts.imap, ['-d', '1s', '--users', 'iuser%d:1-4']);
    expect(noop.errorCount).toBe(0);
    expect(noop.ops).toBeGreaterThan(50);
  }, 60_000);

  test('implicit TLS with the ECDSA and the RSA certificate, and POP3 plain and TLS', async () => {
    for (const keyType of ['ecdsa', 'rsa']) {
      const r = await bench('login', floorPorts.imaps, ['-c', '2', '-d', '1s', '--tls', '--key-type', keyType, '--users', 'user%d:1-4']);
      expect(r.errorCount, keyType).toBe(0);
      expect(r.ops, keyType).toBeGreaterThan(2);
    }
    for (const [port, tls] of [[floorPorts.pop3, []], [floorPorts.pop3s, ['--tls']]] as const) {
      const r = await bench('pop3-login', port, ['-c', '2', '-d', '1s', '--users', 'iuser%d:1-4', ...tls]);
      expect(r.errorCount).toBe(0);
      expect(r.ops).toBeGreaterThan(2);
    }
  }, 60_000);

  test('a user outside the fixed rule is refused; a command pipelined after LOGIN reaches the backend', async () => {
    const refused = await bench('login', floorPorts.imap, ['-c', '1', '-d', '1s', '--users', 'nobody%d:1-2']);
    expect(refused.ops).toBe(0);
    expect(refused.errors['auth']).toBeGreaterThan(0);
    const s = connect({ host: '127.0.0.1', port: floorPorts.imap });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await waitFor('the greeting', () => got.startsWith('* OK'), 5000);
    s.write('a1 LOGIN "user1" pass1\r\na2 NOOP\r\na3 LOGOUT\r\n');
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    expect(got).toMatch(/\r\na1 OK [^\r]*\r\n/);
    expect(got).toMatch(/\r\na2 OK NOOP completed\.\r\n/);
    expect(got).toMatch(/\r\na3 OK Logout completed\.\r\n$/);
    expect(got).not.toMatch(/F[12] /); // the floor's own tags stay between it and the backend
  }, 30_000);
});

describe('compare --render', () => {
  test('the Reproduce line names every option a stored run was made with that is not a default', async () => {
    const out = await makeTempDir('portier-render-');
    const results = join(ROOT, 'bench', 'results');
    // A partial run (--only, 3 rounds, 6 s windows, the floor) and a full one with the defaults and the floor.
    for (const name of ['2026-12-03-kernel', '2026-12-03']) await copyFile(join(results, `${name}.json`), join(out, `${name}.json`));
    const reproduce = async (name: string): Promise<string> => {
      await runCommand(process.execPath, [join(ROOT, 'dist-bench', 'bench', 'compare.js'), '--render', join(out, `${name}.json`)], { timeoutMs: 60_000 });
      return /^Reproduce: `([^`]*)`/m.exec(await readFile(join(out, `${name}.md`), 'utf8'))?.[1] ?? '';
    };
    expect(await reproduce('2026-12-03-kernel')).toBe('npm run bench:compare -- --only login-imap,login-imap-instant,login-pop3-instant --rounds 3 --duration 6s --with-floor');
    expect(await reproduce('2026-12-03')).toBe('npm run bench:compare -- --with-floor');
  }, 120_000);
});
