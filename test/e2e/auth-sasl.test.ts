/**
 * SASL on the client side through portier to a real Dovecot, IMAP and POP3 alike:
 * `auth_mechanisms` decides what is offered; PLAIN and LOGIN (plaintext) obey
 * disable_plaintext_auth, CRAM-MD5 does not; CRAM-MD5 is checked against the stored
 * password (PLAIN or the CRAM-MD5 HMAC state) and reaches the backend with the stored
 * cleartext or the passdb's master/pass; a stored hash that cannot answer CRAM-MD5 fails.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { greeted, type Greeted } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import type { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { doveadmHash } from '../unit/passdb/schemes/doveadm.js';

const UNTRUSTED = '127.0.0.5';
const TRUSTED = '127.0.0.6';
let backend: DovecotBackend;
let px: RunningPortier;

const config = testConfig(['imap', 'pop3'], {
  settings: { disable_plaintext_auth: 'yes', login_trusted_networks: TRUSTED, auth_mechanisms: 'plain cram-md5', log_level: 'debug' },
  passdb: passdbEntry('passwd-file', { path: "'{{dir}}/users-%s'" }),
});

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const cramResponse = (user: string, password: string, challengeB64: string): string =>
  b64(`${user} ${createHmac('md5', password).update(Buffer.from(challengeB64, 'base64')).digest('hex')}`);

function imap(from = UNTRUSTED): Promise<Greeted> {
  return greeted(px, 'imap', { from });
}

async function imapCram(user: string, password: string): Promise<string> {
  const c = await imap();
  try {
    c.write('a AUTHENTICATE CRAM-MD5\r\n');
    const challenge = await c.line();
    expect(challenge).toMatch(/^\+ /);
    c.write(`${cramResponse(user, password, challenge.slice(2))}\r\n`);
    const last = (await c.until('a', 10_000)).at(-1) ?? '';
    if (last.startsWith('a OK')) {
      c.write('b SELECT INBOX\r\n');
      expect((await c.until('b')).at(-1)).toMatch(/^b OK \[READ-WRITE\]/);
    }
    return last;
  } finally {
    c.close();
  }
}

async function pop3(from = UNTRUSTED): Promise<LineClient> {
  const c = await greeted(px, 'pop3', { from });
  expect(c.greeting).toMatch(/^\+OK/);
  return c;
}

async function pop3Capa(c: LineClient): Promise<string[]> {
  c.write('CAPA\r\n');
  const lines: string[] = [];
  for (let l = await c.line(); l !== '.'; l = await c.line()) lines.push(l);
  return lines;
}

beforeAll(async () => {
  backend = await startDovecot({
    address: '127.0.0.2',
    protocols: ['imap', 'pop3'],
    users: [{ user: 'plainuser', password: 'plain-pw' }, { user: 'cramuser', password: 'backend-only' }, { user: 'hashed', password: 'hashed-pw' }],
    masterUsers: [{ user: 'pmaster', password: 'pmaster-secret' }],
  });
  const cram = doveadmHash('CRAM-MD5', Buffer.from('cram-pw'));
  const sha = doveadmHash('SHA512-CRYPT', Buffer.from('hashed-pw'));
  const files: Record<string, string> = {};
  for (const svc of ['imap', 'pop3'] as const) {
    const to = `proxy=y host=${backend.host} port=${backend.ports[svc]}`;
    files[`users-${svc}`] = [
      `plainuser:{PLAIN}plain-pw::::::${to}`,
      `cramuser:${cram}::::::${to} master=pmaster pass=pmaster-secret`,
      `hashed:${sha}::::::${to}`,
      '',
    ].join('\n');
  }
  px = await startPortier(config, files);
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

describe('mechanisms offered', () => {
  test('IMAP without TLS from an untrusted address: LOGINDISABLED, CRAM-MD5 only; plaintext refused', async () => {
    const c = await imap();
    expect(c.greeting).toMatch(/LOGINDISABLED/);
    expect(c.greeting).toMatch(/AUTH=CRAM-MD5/);
    expect(c.greeting).not.toMatch(/AUTH=PLAIN|AUTH=LOGIN/);
    c.write('a LOGIN plainuser plain-pw\r\n');
    expect(await c.line()).toMatch(/^a NO \[PRIVACYREQUIRED\] /);
    c.write(`b AUTHENTICATE PLAIN ${b64('\0plainuser\0plain-pw')}\r\n`);
    expect(await c.line()).toMatch(/^b NO \[PRIVACYREQUIRED\] /);
    c.write('c AUTHENTICATE LOGIN\r\n');
    expect(await c.line()).toBe('c NO Unsupported authentication mechanism.');
    c.close();
  });

  test('IMAP from a trusted network: PLAIN offered and working; LOGIN (not in auth_mechanisms) still unsupported', async () => {
    const c = await imap(TRUSTED);
    expect(c.greeting).toMatch(/AUTH=PLAIN AUTH=CRAM-MD5/);
    expect(c.greeting).not.toMatch(/LOGINDISABLED|AUTH=LOGIN/);
    c.write('a AUTHENTICATE LOGIN\r\n');
    expect(await c.line()).toBe('a NO Unsupported authentication mechanism.');
    c.write(`b AUTHENTICATE PLAIN ${b64('\0plainuser\0plain-pw')}\r\n`);
    expect((await c.until('b')).at(-1)).toMatch(/^b OK \[CAPABILITY /);
    c.close();
  });

  test('POP3: SASL lists CRAM-MD5 only and USER is gone without TLS; plaintext refused', async () => {
    const c = await pop3();
    const capa = await pop3Capa(c);
    expect(capa).toContain('SASL CRAM-MD5');
    expect(capa).not.toContain('USER');
    c.write('USER plainuser\r\n');
    expect(await c.line()).toMatch(/^-ERR \[AUTH\] Plaintext authentication disallowed/);
    c.write(`AUTH PLAIN ${b64('\0plainuser\0plain-pw')}\r\n`);
    expect(await c.line()).toMatch(/^-ERR \[AUTH\] Plaintext authentication disallowed/);
    c.close();
    const t = await pop3(TRUSTED);
    expect(await pop3Capa(t)).toEqual(expect.arrayContaining(['USER', 'SASL PLAIN CRAM-MD5']));
    t.close();
  });
});

describe('CRAM-MD5 against stored credentials', () => {
  test('IMAP: stored PLAIN → the backend gets the stored cleartext', async () => {
    const from = await backend.logSize();
    expect(await imapCram('plainuser', 'plain-pw')).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/imap-login: Info: Login: user=<plainuser>/, 5000, from);
  });

  test('IMAP: stored CRAM-MD5 HMAC state → the backend gets the passdb master login', async () => {
    const from = await backend.logSize();
    expect(await imapCram('cramuser', 'cram-pw')).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/Master user logging in as cramuser/i, 5000, from);
  });

  test('wrong responses and hashes that cannot answer CRAM-MD5 fail as authentication failures', async () => {
    expect(await imapCram('plainuser', 'wrong')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(await imapCram('cramuser', 'wrong')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(await imapCram('hashed', 'hashed-pw')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(await imapCram('nobody', 'x')).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
  });

  test('POP3 AUTH CRAM-MD5 logs in through the same core', async () => {
    const from = await backend.logSize();
    const c = await pop3();
    c.write('AUTH CRAM-MD5\r\n');
    const challenge = await c.line();
    expect(challenge).toMatch(/^\+ /);
    c.write(`${cramResponse('plainuser', 'plain-pw', challenge.slice(2))}\r\n`);
    expect(await c.line(10_000)).toMatch(/^\+OK/);
    c.write('STAT\r\n');
    expect(await c.line()).toMatch(/^\+OK \d+ \d+/);
    c.close();
    await backend.waitForLog(/pop3-login: Info: Login: user=<plainuser>/, 5000, from);
    const bad = await pop3();
    bad.write('AUTH CRAM-MD5\r\n');
    const ch2 = await bad.line();
    bad.write(`${cramResponse('plainuser', 'nope', ch2.slice(2))}\r\n`);
    expect(await bad.line(10_000)).toMatch(/^-ERR \[AUTH\] /);
    bad.close();
  });
});
