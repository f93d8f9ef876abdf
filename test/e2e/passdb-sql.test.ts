/**
 * The sql passdb against a real PostgreSQL: user names built to inject SQL are only ever
 * values (proven by the table, the server log and an exact-match login of a hostile name);
 * the database stopped mid-run gives IMAP `NO [UNAVAILABLE]` and POP3 `-ERR [SYS/TEMP]`, never
 * "wrong password", and logins work again on their own once it is back; with the auth cache,
 * users seen before still get in during the outage.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { PassdbChain } from '../../src/passdb/chain.js';
import { silentLogger } from '../../src/telemetry/log.js';
import { pop3Lines } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';
import { imapLogin, imapLoginReply, retry } from './passdb-fixtures.js';

let backend: DovecotBackend;
let db: PgServer;
let px: RunningPortier;

/** A name every injection trick would love to be: it must match exactly itself and nothing else. */
const HOSTILE = `o'brien\\%_"; --x`;

const EVIL = [
  "' OR 1=1 --",
  "' OR '1'='1",
  "alice' --",
  "alice'--",
  '%',
  '%u',
  '_',
  '\\',
  "\\'",
  '"',
  "'; DROP TABLE users; --",
  "' UNION SELECT 'alice', '{PLAIN}x', 'Y', '127.0.0.2', 143, 110 --",
  "x' UNION SELECT userid, '{PLAIN}x', proxy, host, imap_port, pop3_port FROM users --",
];

function query(table = 'users'): string {
  return `SELECT userid AS user, password, proxy, host,
        CASE WHEN '%s' = 'pop3' THEN pop3_port ELSE imap_port END AS port, destuser
      FROM ${table} WHERE userid = '%u'`;
}

/** `extra`: more top-level settings (YAML lines). */
function config(extra = ''): string {
  return testConfig(['imap', 'pop3'], {
    settings: { auth_username_chars: "''", log_level: 'debug' },
    extra,
    passdb: passdbEntry('sql', {
      connect: `host=${db.host} port=${db.port} dbname=${db.database} user=${db.user} connect_timeout=2`,
      query_timeout: '2s',
      password_query: `"${query().replace(/\s+/g, ' ')}"`,
    }),
  });
}

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<T>> {
  const c = new pg.Client({ connectionString: db.connectionString });
  await c.connect();
  try {
    return await c.query<T>(text, values);
  } finally {
    await c.end();
  }
}

async function pop3Login(port: number, user: string, password: string): Promise<string> {
  const { c, replies } = await pop3Lines(port, [`USER ${user}`, `PASS ${password}`], { timeoutMs: 15_000 });
  c.close();
  expect(c.greeting).toMatch(/^\+OK/);
  expect(replies[0]).toMatch(/^\+OK/);
  return replies[1] ?? '';
}

const imapReply = (p: RunningPortier, user: string, password: string): Promise<string> => imapLoginReply(p.port('imap'), user, password);

beforeAll(async () => {
  [backend, db] = await Promise.all([
    startDovecot({ address: '127.0.0.2', protocols: ['imap', 'pop3'], users: [{ user: 'alice', password: 'alice-pw' }, { user: 'bob', password: 'bob-pw' }], trustedNetworks: ['127.0.0.0/8'] }),
    startPostgres(),
  ]);
  await sql('CREATE TABLE users (userid text PRIMARY KEY, password text, proxy text, host text, imap_port int, pop3_port int, destuser text)');
  const row = (user: string, pw: string, destuser: string | null) =>
    sql('INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7)', [user, doveadmHash('SHA512-CRYPT', Buffer.from(pw)), 'Y', backend.host, backend.ports.imap, backend.ports.pop3, destuser]);
  await row('alice', 'alice-pw', null);
  await row('bob', 'bob-pw', null);
  await row(HOSTILE, 'alice-pw', 'alice');
  px = await startPortier(config());
});

afterAll(async () => {
  await px?.stop();
  await Promise.all([backend?.stop(), db?.stop()]);
});

describe('SQL injection in user names', () => {
  test('every attempt is an unknown user; the table and the server log show no SQL was made of it', async () => {
    const before = await sql<{ n: string }>('SELECT count(*) AS n FROM users');
    for (const evil of EVIL) {
      for (const password of ['x', 'alice-pw']) {
        expect(await imapReply(px, evil, password), evil).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
      }
    }
    expect(await pop3Login(px.port('pop3'), "' OR 1=1 --", 'x')).toMatch(/^-ERR \[AUTH\] /);
    const after = await sql<{ n: string }>('SELECT count(*) AS n FROM users');
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
    // A syntax error or a type error would mean user text reached the SQL parser.
    expect(db.output()).not.toMatch(/ERROR:/);
    expect(px.logs().filter((l) => l.level === 'error')).toEqual([]);
  });

  test('a hostile name that does exist matches exactly itself (quotes, backslash, %, _ are data)', async () => {
    const from = await backend.logSize();
    const { reply, client } = await imapLogin(px.port('imap'), HOSTILE, 'alice-pw');
    client.close();
    expect(reply).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/imap-login: Info: Login: user=<alice>/, 5000, from);
    // Near misses do not match: no LIKE, no escape processing, no trimming.
    for (const near of [HOSTILE.slice(0, -1), `${HOSTILE} `, HOSTILE.replace('\\', ''), HOSTILE.replace('%', 'x')]) {
      expect(await imapReply(px, near, 'alice-pw'), near).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    }
  });

  test('NUL in a name never reaches PostgreSQL: unknown user, not an error (chain against the real server)', async () => {
    const loaded = parseConfig(config().replace('{{port}}', '10143').replace('{{port}}', '10110'), '/dev/null');
    const chain = new PassdbChain(loaded.config, silentLogger());
    const base = { protocol: 'imap' as const, mech: 'PLAIN', sessionId: 't', remoteIp: '192.0.2.1', remotePort: 1, localIp: '192.0.2.2', localPort: 143, realRemoteIp: '192.0.2.1', realLocalIp: '192.0.2.2', secured: true };
    try {
      for (const user of ['alice\0', "alice\0' OR 1=1 --", '\0']) {
        expect(await chain.authenticate({ ...base, user, origUser: user, password: Buffer.from('alice-pw') }), JSON.stringify(user)).toEqual({ kind: 'unknown' });
      }
      expect((await chain.authenticate({ ...base, user: 'alice', origUser: 'alice', password: Buffer.from('alice-pw') })).kind).toBe('ok');
    } finally {
      await chain.close();
    }
    expect(db.output()).not.toMatch(/ERROR:/);
  });
});

describe('database outage', () => {
  test('stopped mid-run: temporary failure on IMAP and POP3 (also for a wrong password), then recovery on its own', async () => {
    expect(await imapReply(px, 'alice', 'alice-pw')).toMatch(/^a OK /);
    expect(await pop3Login(px.port('pop3'), 'alice', 'alice-pw')).toMatch(/^\+OK /);

    await db.stop();
    try {
      expect(await imapReply(px, 'alice', 'alice-pw')).toMatch(/^a NO \[UNAVAILABLE\] Temporary authentication failure\. \[session [^\]]+\]$/);
      expect(await imapReply(px, 'alice', 'wrong')).toMatch(/^a NO \[UNAVAILABLE\] /);
      expect(await pop3Login(px.port('pop3'), 'alice', 'alice-pw')).toMatch(/^-ERR \[SYS\/TEMP\] Temporary authentication failure\. \[session [^\]]+\]$/);
      const refused = px.logs().filter((l) => l.msg === 'login refused: tempfail');
      expect(refused.length).toBeGreaterThanOrEqual(3);
      expect(px.logText()).not.toMatch(/alice-pw/);
    } finally {
      await db.start();
    }
    const reply = await retry(() => imapReply(px, 'alice', 'alice-pw'), (r) => r.startsWith('a OK '), 15_000, 250);
    expect(reply).toMatch(/^a OK \[CAPABILITY /);
    expect(await pop3Login(px.port('pop3'), 'bob', 'bob-pw')).toMatch(/^\+OK /);
    expect(await imapReply(px, 'alice', 'wrong')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    await px.waitForLog((l) => l.msg === 'sql passdb: database reachable again');
  });

  test('auth cache TTLs: an unknown user stays refused until the negative TTL passes; a positive entry outlives a row change', async () => {
    const cached = await startPortier(config('auth_cache_size: 1M\nauth_cache_ttl: 1h\nauth_cache_negative_ttl: 1s\n'));
    try {
      expect(await imapReply(cached, 'newbie', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
      await sql('INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7)', ['newbie', '{PLAIN}alice-pw', 'Y', backend.host, backend.ports.imap, backend.ports.pop3, 'alice']);
      expect(await imapReply(cached, 'newbie', 'alice-pw')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/); // negative entry
      await new Promise((r) => setTimeout(r, 1100));
      expect(await imapReply(cached, 'newbie', 'alice-pw')).toMatch(/^a OK /);
      await sql("UPDATE users SET password = '{PLAIN}changed' WHERE userid = 'newbie'");
      expect(await imapReply(cached, 'newbie', 'alice-pw')).toMatch(/^a OK /); // positive entry, 1 h
    } finally {
      await sql("DELETE FROM users WHERE userid = 'newbie'");
      await cached.stop();
    }
  });

  test('with the auth cache: a user seen before logs in during the outage, others fail temporarily', async () => {
    const cached = await startPortier(config('auth_cache_size: 1M\nauth_cache_ttl: 1s\nauth_cache_negative_ttl: 1s\n'));
    try {
      expect(await imapReply(cached, 'alice', 'alice-pw')).toMatch(/^a OK /);
      await new Promise((r) => setTimeout(r, 1200)); // the entry is now expired: only an outage may use it
      await db.stop();
      expect(await imapReply(cached, 'alice', 'alice-pw')).toMatch(/^a OK \[CAPABILITY /);
      expect(await imapReply(cached, 'alice', 'other-password')).toMatch(/^a NO \[UNAVAILABLE\] /);
      expect(await imapReply(cached, 'bob', 'bob-pw')).toMatch(/^a NO \[UNAVAILABLE\] /);
      await cached.waitForLog((l) => l.msg === 'passdb failing; answered from an expired auth cache entry');
    } finally {
      await db.start();
      await cached.stop();
    }
  });
});
