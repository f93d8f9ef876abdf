/**
 * The redis passdb against a real redis-server: keys with hostile user names are only keys;
 * a malformed value or a wrong key type is a temporary failure, not a wrong password; Redis
 * stopped (and killed) mid-run gives IMAP `NO [UNAVAILABLE]` / POP3 `-ERR [SYS/TEMP]` within
 * query_timeout, and logins work again on their own when it is back (on the same port).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { passdbEntry, testConfig, type Settings } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';
import { imapLogin, imapLoginReply, retry } from './passdb-fixtures.js';

let backend: DovecotBackend;
let redis: RedisServer;
let px: RunningPortier;

const config = (fields: Settings = {}): string =>
  testConfig(['imap', 'pop3'], {
    settings: { auth_username_chars: "''", log_level: 'debug' },
    passdb: passdbEntry('redis', { connect: `${redis.url}/3`, key: "'mail:%s:%u'", query_timeout: '1s', ...fields }),
  });

async function seed(): Promise<void> {
  const r = new Redis(`${redis.url}/3`);
  const hash = doveadmHash('ARGON2ID', Buffer.from('alice-pw'));
  for (const svc of ['imap', 'pop3']) {
    const port = svc === 'imap' ? backend.ports.imap : backend.ports.pop3;
    await r.hset(`mail:${svc}:alice`, { password: hash, proxy: 'y', host: backend.host, port: String(port) });
    await r.hset(`mail:${svc}:* ' "\\%`, { password: hash, proxy: 'y', host: backend.host, port: String(port), destuser: 'alice' });
  }
  await r.set('mail:imap:broken', '{"password": ');
  await r.rpush('mail:imap:listy', 'a');
  r.disconnect();
}

const imapReply = (user: string, password: string, sasl = false): Promise<string> => imapLoginReply(px.port('imap'), user, password, sasl);

async function pop3Reply(user: string, password: string): Promise<string> {
  const c = await greeted(px, 'pop3');
  try {
    c.write(`USER ${user}\r\nPASS ${password}\r\n`);
    expect(await c.line()).toMatch(/^\+OK/);
    return await c.line(15_000);
  } finally {
    c.close();
  }
}

function untilOk(): Promise<string> {
  return retry(() => imapReply('alice', 'alice-pw'), (reply) => reply.startsWith('a OK '), 15_000, 200);
}

beforeAll(async () => {
  [backend, redis] = await Promise.all([
    startDovecot({ address: '127.0.0.2', protocols: ['imap', 'pop3'], users: [{ user: 'alice', password: 'alice-pw' }], trustedNetworks: ['127.0.0.0/8'] }),
    startRedis(),
  ]);
  await seed();
  px = await startPortier(config());
});

afterAll(async () => {
  await px?.stop();
  await Promise.all([backend?.stop(), redis?.stop()]);
});

describe('redis passdb', () => {
  test('%s and %u pick the key; a name full of quotes, spaces and % is just a key', async () => {
    expect(await imapReply('alice', 'alice-pw')).toMatch(/^a OK \[CAPABILITY /);
    expect(await pop3Reply('alice', 'alice-pw')).toMatch(/^\+OK /);
    expect(await imapReply(`* ' "\\%`, 'alice-pw')).toMatch(/^a OK \[CAPABILITY /);
    for (const evil of ['*', 'al*', 'alice\r\nFLUSHALL', "' OR 1=1 --", '%u', '%']) {
      expect(await imapReply(evil, 'alice-pw', true), evil).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    }
    const r = new Redis(`${redis.url}/3`);
    expect(await r.dbsize()).toBe(6);
    r.disconnect();
  });

  test('a malformed JSON value or a key of the wrong type is a temporary failure, logged', async () => {
    const json = await startPortier(config({ value_format: 'json' }));
    try {
      const { reply, client } = await imapLogin(json.port('imap'), 'broken', 'x');
      client.close();
      expect(reply).toMatch(/^a NO \[UNAVAILABLE\] /);
      await json.waitForLog((l) => l.msg === 'redis passdb: the value is not a JSON object');
    } finally {
      await json.stop();
    }
    expect(await imapReply('listy', 'x')).toMatch(/^a NO \[UNAVAILABLE\] /);
    await px.waitForLog((l) => l.msg === 'redis passdb: lookup failed' && /WRONGTYPE/.test(String(l['err'])));
  });

  test('Redis stopped mid-run: temporary failure within query_timeout, then recovery on its own', async () => {
    expect(await imapReply('alice', 'alice-pw')).toMatch(/^a OK /);
    await redis.stop();
    try {
      const t0 = performance.now();
      expect(await imapReply('alice', 'alice-pw')).toMatch(/^a NO \[UNAVAILABLE\] Temporary authentication failure\. \[session [^\]]+\]$/);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(await imapReply('alice', 'wrong')).toMatch(/^a NO \[UNAVAILABLE\] /);
      expect(await pop3Reply('alice', 'alice-pw')).toMatch(/^-ERR \[SYS\/TEMP\] Temporary authentication failure\./);
    } finally {
      await redis.start();
    }
    await seed(); // nothing is persisted: the restarted server is empty
    expect(await untilOk()).toMatch(/^a OK \[CAPABILITY /);
    expect(await imapReply('alice', 'wrong')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    await px.waitForLog((l) => l.msg === 'redis connection restored');
  });

  test('Redis killed (SIGKILL) likewise', async () => {
    await redis.kill();
    try {
      expect(await imapReply('alice', 'alice-pw')).toMatch(/^a NO \[UNAVAILABLE\] /);
    } finally {
      await redis.start();
    }
    await seed();
    expect(await untilOk()).toMatch(/^a OK \[CAPABILITY /);
  });
});
