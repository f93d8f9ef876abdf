/**
 * The operator's auth verbs through the real `portier` command: `auth test` / `auth lookup`
 * print the passdb result with every secret masked (stored hashes, `pass`, DSN passwords)
 * and exit 0 / 1 / 2; `auth cache flush` reaches a running `portier serve` — one process, and
 * every worker of a multi-worker one (through the primary) — so a changed password takes
 * effect at once.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminRequest } from '../../src/admin/socket.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, type PortierProcess } from '../support/portier.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { makeTempDir } from '../support/tmp.js';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';
import { imapLoginReply } from './passdb-fixtures.js';

let backend: DovecotBackend;
let db: PgServer;
let dir: string;
const HASH = doveadmHash('SHA512-CRYPT', Buffer.from('alice-pw'));

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = runPortierBin(args);
  const code = await p.exited;
  return { code, out: p.stdout(), err: p.stderr() };
}

function users(alicePassword: string): string {
  const to = `proxy=y host=${backend.host} port=${backend.ports.imap}`;
  return [
    `alice:${alicePassword}::::::${to}`,
    `carol:{PLAIN}carol-pw::::::${to} master=pmaster pass=pmaster-secret`,
    '',
  ].join('\n');
}

/** Replace the users file the way a deploy does (a new inode), and wait out the 1 s recheck. */
async function replaceUsers(text: string): Promise<void> {
  writeFileSync(join(dir, 'users.new'), text);
  renameSync(join(dir, 'users.new'), join(dir, 'users'));
  await new Promise((r) => setTimeout(r, 1100));
}

/** `extra`: more top-level settings (YAML lines). */
function configText(port: number, extra: string): string {
  return testConfig(['imap'], {
    settings: { auth_penalty_max_delay: 0, auth_master_user_separator: "'*'", admin_socket: `${dir}/admin-${port}.sock`, log_level: 'info' },
    extra: `${extra}\n`,
    ports: { imap: port },
    passdb: passdbEntry('passwd-file', { args: `scheme=PLAIN ${dir}/users` }) + passdbEntry('passwd-file', { master: 'yes', args: `scheme=PLAIN ${dir}/masters` }),
  });
}

async function serve(extra: string): Promise<{ proc: PortierProcess; port: number; file: string; socket: string }> {
  const port = await freePort('127.0.0.1');
  const file = join(dir, `serve-${port}.yaml`);
  writeFileSync(file, configText(port, extra));
  const proc = runPortierBin(['serve', '-c', file]);
  const until = Date.now() + 20_000;
  // Multi-worker: each worker logs "listening"; the primary logs "portier started" after all are up.
  while (!/"msg":"portier started"/.test(proc.stdout())) {
    if (Date.now() > until || proc.child.exitCode !== null) throw new Error(`serve did not start:\n${proc.stderr()}${proc.stdout()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, port, file, socket: `${dir}/admin-${port}.sock` };
}

async function stop(p: PortierProcess): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

beforeAll(async () => {
  [backend, db] = await Promise.all([
    startDovecot({ address: '127.0.0.2', protocols: ['imap'], users: [{ user: 'alice', password: 'alice-pw' }, { user: 'alice2', password: 'x' }] }),
    startPostgres(),
  ]);
  dir = await makeTempDir('portier-auth-cli-');
  writeFileSync(join(dir, 'users'), users(`{SHA512-CRYPT}${HASH.replace(/^\{SHA512-CRYPT\}/, '')}`));
  writeFileSync(join(dir, 'masters'), 'pmaster:pmaster-secret\n');
  writeFileSync(join(dir, 'portier.yaml'), configText(10143, ''));
});

afterAll(async () => {
  await Promise.all([backend?.stop(), db?.stop()]);
});

describe('portier auth test / auth lookup', () => {
  test('a right password: exit 0, the fields and the route, secrets masked', async () => {
    const r = await run(['auth', 'test', '-c', join(dir, 'portier.yaml'), 'carol', 'carol-pw']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('passdb: carol auth succeeded');
    expect(r.out).toContain('  pass=********');
    expect(r.out).toContain('  master=pmaster');
    expect(r.out).toMatch(new RegExp(`route: proxy to ${backend.host}:${backend.ports.imap} \\(tls none\\) as the user via master pmaster`));
    expect(r.out + r.err).not.toMatch(/pmaster-secret|carol-pw/);
  });

  test('a wrong password exits 1; an unknown user exits 1; auth lookup shows the stored password masked', async () => {
    const wrong = await run(['auth', 'test', '-c', join(dir, 'portier.yaml'), 'alice', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('passdb: alice auth failed');
    expect(wrong.out).toContain('why: password mismatch');
    const unknown = await run(['auth', 'test', '-c', join(dir, 'portier.yaml'), 'nobody', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('why: unknown user');
    const lookup = await run(['auth', 'lookup', '-c', join(dir, 'portier.yaml'), 'alice']);
    expect(lookup.code).toBe(0);
    expect(lookup.out).toContain('passdb: alice lookup succeeded');
    expect(lookup.out).toContain('  password=********');
    expect(lookup.out + lookup.err).not.toContain(HASH.slice(16, 40));
  });

  test('master logins: user*master with the master password', async () => {
    const ok = await run(['auth', 'test', '-c', join(dir, 'portier.yaml'), 'alice*pmaster', 'pmaster-secret']);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('auth succeeded');
    const bad = await run(['auth', 'test', '-c', join(dir, 'portier.yaml'), 'alice*pmaster', 'alice-pw']);
    expect(bad.code).toBe(1);
  });

  test('sql: the DSN password never shows; the database away exits 2 (temporary failure)', async () => {
    const file = join(dir, 'sql.yaml');
    const closed = await freePort('127.0.0.1');
    const sqlConf = (port: number) => `protocols: imap
ssl: no
service: { imap-login: { inet_listener: { imap: { port: 10143 }, imaps: { port: 0 } } } }
passdb:
  - driver: sql
    connect: host=127.0.0.1 port=${port} dbname=${db.database} user=${db.user} password=db-Secret-42
    query_timeout: 2s
    password_query: SELECT 'alice' AS user, '{PLAIN}alice-pw' AS password, 'y' AS proxy, '192.0.2.10' AS host WHERE '%u' = 'alice'
`;
    writeFileSync(file, sqlConf(db.port));
    const ok = await run(['auth', 'test', '-c', file, 'alice', 'alice-pw']);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('route: proxy to 192.0.2.10');
    writeFileSync(file, sqlConf(closed));
    const down = await run(['auth', 'test', '-c', file, 'alice', 'alice-pw']);
    expect(down.code).toBe(2);
    expect(down.out).toContain('auth failed: temporary failure');
    for (const r of [ok, down]) expect(r.out + r.err).not.toMatch(/db-Secret-42|alice-pw/);
    const check = await run(['check-config', '-c', file]);
    expect(check.out + check.err).not.toContain('db-Secret-42');
  });
});

describe('portier auth cache flush', () => {
  test('reaches a running portier: a changed password takes effect at once', async () => {
    const s = await serve('auth_cache_size: 1M\nauth_cache_ttl: 1h\nworkers: 1');
    try {
      expect(await imapLoginReply(s.port, 'alice', 'alice-pw')).toMatch(/^a OK /);
      await replaceUsers(users('{PLAIN}new-pw'));
      // Cached: the old password still works (that is what the cache is for) ...
      expect(await imapLoginReply(s.port, 'alice', 'alice-pw')).toMatch(/^a OK /);
      const r = await run(['auth', 'cache', 'flush', '-c', s.file]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^[1-9]\d* cache entries flushed$/m);
      // ... until flushed.
      expect(await imapLoginReply(s.port, 'alice', 'alice-pw')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
      const byUser = await run(['auth', 'cache', 'flush', '-c', s.file, 'alice']);
      expect(byUser.out).toMatch(/cache entries flushed for alice/);
    } finally {
      await stop(s.proc);
      await replaceUsers(users(HASH));
    }
  });

  test('with workers: 2 the primary relays the flush to every worker', async () => {
    const s = await serve('auth_cache_size: 1M\nauth_cache_ttl: 1h\nworkers: 2');
    try {
      // Log in until both workers hold alice's entry (connections are spread by the kernel).
      let entries = 0;
      for (let i = 0; i < 200 && entries < 2; i++) {
        expect(await imapLoginReply(s.port, 'alice', 'alice-pw')).toMatch(/^a OK /);
        const stats = await adminRequest(s.socket, 'AUTH-CACHE-STATS');
        entries = Number(/entries=(\d+)/.exec(stats)?.[1] ?? '0');
      }
      expect(entries).toBe(2);
      await replaceUsers(users('{PLAIN}new-pw'));
      const r = await run(['auth', 'cache', 'flush', '-s', s.socket]);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe('2 cache entries flushed');
      expect(await adminRequest(s.socket, 'AUTH-CACHE-STATS')).toMatch(/^OK entries=0 /);
      for (let i = 0; i < 10; i++) expect(await imapLoginReply(s.port, 'alice', 'alice-pw')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    } finally {
      await stop(s.proc);
      await replaceUsers(users(HASH));
    }
  });

  test('nothing running: a clear error, exit 1', async () => {
    const r = await run(['auth', 'cache', 'flush', '-s', join(dir, 'nobody.sock')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot reach the running portier/);
  });
});
