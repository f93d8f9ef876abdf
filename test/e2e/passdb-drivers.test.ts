/**
 * The same users in passwd-file, PostgreSQL, Redis (hash and JSON) and a checkpassword
 * script, and a static tier: each portier, one per driver, must make the same decisions for
 * the same IMAP logins (proxied to the right mailbox on a real Dovecot, wrong password,
 * destuser, nologin + reason, nopassword forwarding, unknown user, a non-ASCII password).
 * Stored passwords come from `doveadm pw` in a different scheme per store.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { makeTempDir } from '../support/tmp.js';
import {
  BACKEND_USERS, checkDecisions, passwdFile, STATIC_DECISIONS, storedPassword, storedUsers, writeCheckpasswordScript,
} from './passdb-fixtures.js';

let backend: DovecotBackend;
let pgServer: PgServer;
let redis: RedisServer;
const running: RunningPortier[] = [];

async function portier(passdb: string, files: Record<string, string> = {}): Promise<RunningPortier> {
  const p = await startPortier(testConfig(['imap'], { settings: { log_level: 'debug' }, passdb }), files);
  running.push(p);
  return p;
}

beforeAll(async () => {
  [backend, pgServer, redis] = await Promise.all([
    startDovecot({ address: '127.0.0.2', protocols: ['imap'], users: BACKEND_USERS, trustedNetworks: ['127.0.0.0/8'] }),
    startPostgres(),
    startRedis(),
  ]);
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await Promise.all([backend?.stop(), pgServer?.stop(), redis?.stop()]);
});

describe('the same decisions from every driver', () => {
  test('passwd-file (SSHA256, SHA512-CRYPT, ARGON2ID, PBKDF2)', async () => {
    const users = storedUsers(backend, ['SSHA256', 'SHA512-CRYPT', 'ARGON2ID', 'PBKDF2']);
    const p = await portier(passdbEntry('passwd-file', { args: '{{dir}}/users' }), { users: passwdFile(users) });
    await checkDecisions(p.port('imap'), backend);
  });

  test('sql on PostgreSQL (SHA512-CRYPT, BLF-CRYPT, SSHA512, MD5-CRYPT; NULL columns are absent fields)', async () => {
    const users = storedUsers(backend, ['SHA512-CRYPT', 'BLF-CRYPT', 'SSHA512', 'MD5-CRYPT']);
    const db = new pg.Client({ connectionString: pgServer.connectionString });
    await db.connect();
    await db.query(
      'CREATE TABLE drivers_users (userid text PRIMARY KEY, password text, proxy char(1), host text, port int, destuser text, nologin char(1), reason text, nopassword char(1))',
    );
    for (const u of users) {
      const f = u.fields;
      await db.query('INSERT INTO drivers_users VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        u.user, u.password === undefined ? null : storedPassword(u), f['proxy'] === undefined ? null : 'Y', f['host'] ?? null,
        f['port'] === undefined ? null : Number(f['port']), f['destuser'] ?? null, f['nologin'] === undefined ? null : 'Y', f['reason'] ?? null,
        f['nopassword'] === undefined ? null : 'Y',
      ]);
    }
    await db.end();
    const p = await portier(`  - driver: sql
    connect: host=${pgServer.host} port=${pgServer.port} dbname=${pgServer.database} user=${pgServer.user}
    password_query: >-
      SELECT userid AS user, password, proxy, host, port, destuser, nologin, reason, nopassword
      FROM drivers_users WHERE userid = '%u'
`);
    await checkDecisions(p.port('imap'), backend);
  });

  test('redis hashes (BLF-CRYPT, ARGON2I, SHA256-CRYPT, SSHA) and JSON values give the same answers', async () => {
    const users = storedUsers(backend, ['BLF-CRYPT', 'ARGON2I', 'SHA256-CRYPT', 'SSHA']);
    const r = new Redis(redis.url);
    for (const u of users) {
      const record: Record<string, string> = { ...u.fields };
      if (u.password !== undefined) record['password'] = storedPassword(u);
      await r.hset(`drv:hash:${u.user}`, record);
      const json: Record<string, unknown> = { ...record, ...(record['proxy'] ? { proxy: true } : {}), ...(record['port'] ? { port: Number(record['port']) } : {}) };
      await r.set(`drv:json:${u.user}`, JSON.stringify(json));
    }
    r.disconnect();
    const hash = await portier(passdbEntry('redis', { connect: redis.url, key: "'drv:hash:%u'" }));
    await checkDecisions(hash.port('imap'), backend);
    const json = await portier(passdbEntry('redis', { connect: `redis:host=${redis.host}:port=${redis.port}`, key: "'drv:json:%u'", value_format: 'json' }));
    await checkDecisions(json.port('imap'), backend);
  });

  test('checkpassword: an existing-style script with checkpassword-reply', async () => {
    const dir = await makeTempDir('portier-ckpw-');
    const script = writeCheckpasswordScript(dir, storedUsers(backend, ['PLAIN']));
    const p = await portier(passdbEntry('checkpassword', { args: script }));
    await checkDecisions(p.port('imap'), backend);
  });

  test('static: one tier for everybody (proxy + nopassword), the backend checks passwords', async () => {
    const p = await portier(passdbEntry('static', { args: `proxy=y host=${backend.host} port=${backend.ports.imap} nopassword=y` }));
    await checkDecisions(p.port('imap'), backend, STATIC_DECISIONS);
  });
});
