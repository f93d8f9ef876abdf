/**
 * IMAP through portier to real Dovecot backends: proxy-side auth and password forwarding,
 * destuser, master-user login, backend failures, big literals, IDLE, and abuse that must
 * stay on its own connection. Clients connect from 127.0.0.5 so they are not "local".
 */
import { createServer, type Server } from 'node:net';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import type { DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { proxiedUsers, startProxyBackend } from './proxy-fixtures.js';

let backend: DovecotBackend;
let px: RunningPortier;
let blackhole: Server;
let closedPort: number;

function users(b: DovecotBackend, blackholePort: number): string {
  const to = `proxy=y host=${b.host} port=${b.ports.imap}`;
  return [
    ...proxiedUsers(to),
    `down:{PLAIN}down-pw::::::proxy=y host=127.0.0.2 port=${closedPort}`,
    `silent:{PLAIN}silent-pw::::::proxy=y host=127.0.0.3 port=${blackholePort} proxy_timeout=1s`,
    `dave:{PLAIN}dave-pw::::::nologin=y`,
    `nohost:{PLAIN}nohost-pw::::::`,
    '',
  ].join('\n');
}

const config = testConfig(['imap'], { settings: { login_timeout: '3s', log_level: 'debug' } });

async function client(): Promise<LineClient> {
  const c = await greeted(px);
  expect(c.greeting).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*\] portier ready\.$/);
  return c;
}

function flow(user: string, pass: string): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: px.port('imap'),
    secure: false,
    auth: { user, pass },
    logger: false,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
  });
}

beforeAll(async () => {
  backend = await startProxyBackend();
  closedPort = await freePort('127.0.0.2');
  blackhole = createServer(() => {});
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.3', r));
  const bhPort = (blackhole.address() as { port: number }).port;
  px = await startPortier(config, { users: users(backend, bhPort) });
});

afterAll(async () => {
  await px?.stop();
  blackhole?.close();
  await backend?.stop();
});

describe('IMAP front-end before login', () => {
  test('greeting, CAPABILITY, NOOP, ID, LOGOUT and BAD for anything else', async () => {
    const c = await client();
    c.write('a1 CAPABILITY\r\n');
    const caps = await c.until('a1');
    expect(caps[0]).toMatch(/^\* CAPABILITY IMAP4rev1 .*AUTH=PLAIN/);
    expect(caps[0]).not.toMatch(/STARTTLS|LOGINDISABLED/);
    expect(caps[1]).toMatch(/^a1 OK /);
    c.write('a2 NOOP\r\na3 ID ("name" "test")\r\n');
    expect(await c.line()).toBe('a2 OK NOOP completed.');
    expect(await c.until('a3')).toEqual(['* ID ("name" "portier")', 'a3 OK ID completed.']);
    c.write('a4 SELECT INBOX\r\n');
    expect(await c.line()).toMatch(/^a4 BAD /);
    c.write('a5 LOGOUT\r\n');
    expect(await c.until('a5')).toEqual(['* BYE Logging out', 'a5 OK Logout completed.']);
    await c.waitClosed();
  });

  test('pipelined commands in one packet are answered in order', async () => {
    const c = await client();
    c.write('p1 NOOP\r\np2 CAPABILITY\r\np3 LOGIN alice alice-pw\r\np4 SELECT INBOX\r\n');
    expect(await c.line()).toBe('p1 OK NOOP completed.');
    await c.until('p2');
    const login = await c.until('p3');
    expect(login.at(-1)).toMatch(/^p3 OK \[CAPABILITY IMAP4rev1 /);
    // p4 was pipelined behind LOGIN: it must reach the backend, not portier's parser.
    const select = await c.until('p4');
    expect(select.at(-1)).toMatch(/^p4 OK \[READ-WRITE\] /);
    c.close();
  });
});

describe('login and routing', () => {
  test('proxy-side auth: right password lands in the mailbox, with the client address forwarded', async () => {
    const from = await backend.logSize();
    const seen = px.logs().length;
    const f = flow('alice', 'alice-pw');
    await f.connect();
    const box = await f.mailboxOpen('INBOX');
    expect(box.path).toBe('INBOX');
    await f.logout();
    // The address is part of the pattern: Dovecot writes its log late, so the first alice line
    // after `from` may still be an earlier test's login from another address.
    const line = await backend.waitForLog(/imap-login: Info: Login: user=<alice>.*rip=127\.0\.0\.1,/, 5000, from);
    expect(line).toMatch(/lip=/);
    const started = await px.waitForLog((l, i) => i >= seen && l.msg.startsWith('Started proxying') && l.user === 'alice');
    expect(started).toMatchObject({ destuser: 'alice', backend: `${backend.host}:${backend.ports.imap}` });
    expect(typeof started.session).toBe('string');
    // The closing line of the same session: bytes both ways and how long it lasted.
    const ended = await px.waitForLog((l) => l.session === started.session && typeof l.in === 'number');
    expect(ended.in).toBeGreaterThan(0);
    expect(ended.out).toBeGreaterThan(0);
    expect(typeof ended.duration_ms).toBe('number');
  });

  test('the Dovecot backend logs the real client address (ID from a trusted proxy)', async () => {
    const from = await backend.logSize();
    const c = await client();
    c.write('r1 LOGIN alice alice-pw\r\n');
    expect((await c.until('r1')).at(-1)).toMatch(/^r1 OK /);
    c.close();
    const line = await backend.waitForLog(/imap-login: Info: Login: user=<alice>.*rip=127\.0\.0\.5,/, 5000, from);
    expect(line).toMatch(/lip=/);
  });

  test('proxy-side auth: a wrong password never reaches the backend', async () => {
    const from = await backend.logSize();
    const c = await client();
    c.write('l1 LOGIN alice wrong-pw\r\n');
    expect(await c.line()).toBe('l1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    // The same connection may try again.
    c.write('l2 LOGIN alice alice-pw\r\n');
    expect((await c.until('l2')).at(-1)).toMatch(/^l2 OK /);
    c.close();
    const log = (await backend.readLog()).slice(from);
    expect(log).not.toMatch(/alice.*(auth failed|Password mismatch)/i);
  });

  test('password forwarding (nopassword): the backend decides, and its refusal is generic', async () => {
    const c = await client();
    c.write('f1 LOGIN fwd wrong\r\n');
    expect(await c.line()).toBe('f1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    c.write('f2 LOGIN fwd fwd-pw\r\n');
    expect((await c.until('f2')).at(-1)).toMatch(/^f2 OK /);
    c.close();
  });

  test('destuser: bob lands in robert\'s mailbox', async () => {
    await backend.deliver('robert', 'Subject: for robert\r\n\r\nhello robert\r\n');
    const f = flow('bob', 'bob-pw');
    await f.connect();
    const box = await f.mailboxOpen('INBOX');
    expect(box.exists).toBeGreaterThanOrEqual(1);
    const msg = await f.fetchOne('*', { envelope: true });
    expect(msg && msg.envelope?.subject).toBe('for robert');
    await f.logout();
  });

  test('master user: carol is logged in to her own mailbox by the master on her behalf', async () => {
    const from = await backend.logSize();
    await backend.deliver('carol', 'Subject: for carol\r\n\r\nhi\r\n');
    const f = flow('carol', 'carol-pw');
    await f.connect();
    await f.mailboxOpen('INBOX');
    const msg = await f.fetchOne('*', { envelope: true });
    expect(msg && msg.envelope?.subject).toBe('for carol');
    await f.logout();
    expect(await backend.waitForLog(/Master user logging in as carol/i, 5000, from)).toBeTruthy();
  });

  test('nologin and a result without a destination are refused clearly', async () => {
    const c = await client();
    c.write('n1 LOGIN dave dave-pw\r\n');
    expect(await c.line()).toBe('n1 NO [CONTACTADMIN] Login disabled for this user.');
    c.write('n2 LOGIN nohost nohost-pw\r\n');
    expect(await c.line()).toBe('n2 NO [UNAVAILABLE] Account is temporarily unavailable.');
    c.close();
  });

  test('backend down: NO [UNAVAILABLE] fast, not a hang or an auth failure', async () => {
    const c = await client();
    const t0 = Date.now();
    c.write('d1 LOGIN down down-pw\r\n');
    expect(await c.line()).toBe('d1 NO [UNAVAILABLE] Account is temporarily unavailable.');
    expect(Date.now() - t0).toBeLessThan(5000);
    c.close();
  });

  test('proxy_timeout bounds a backend that never greets', async () => {
    const c = await client();
    const t0 = Date.now();
    c.write('s1 LOGIN silent silent-pw\r\n');
    expect(await c.line(8000)).toBe('s1 NO [UNAVAILABLE] Account is temporarily unavailable.');
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(6000);
    c.close();
  });

  test('AUTHENTICATE PLAIN with and without SASL-IR, LOGIN, and * cancel', async () => {
    const c = await client();
    const plain = Buffer.from('\0alice\0alice-pw').toString('base64');
    c.write('x1 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.write('*\r\n');
    expect(await c.line()).toBe('x1 BAD Authentication aborted by client.');
    c.write('x2 AUTHENTICATE PLAIN\r\n');
    expect(await c.line()).toBe('+ ');
    c.write(`${plain}\r\n`);
    expect((await c.until('x2')).at(-1)).toMatch(/^x2 OK /);
    c.close();

    const d = await client();
    d.write(`y1 AUTHENTICATE PLAIN ${Buffer.from('\0alice\0nope').toString('base64')}\r\n`);
    expect(await d.line()).toBe('y1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    d.write('y2 AUTHENTICATE LOGIN\r\n');
    expect(await d.line()).toMatch(/^\+ /);
    d.write(`${Buffer.from('alice').toString('base64')}\r\n`);
    expect(await d.line()).toMatch(/^\+ /);
    d.write(`${Buffer.from('alice-pw').toString('base64')}\r\n`);
    expect((await d.until('y2')).at(-1)).toMatch(/^y2 OK /);
    d.close();
  });

  test('a password given at login never reaches the log', async () => {
    const c = await client();
    c.write('z1 LOGIN alice Sentinel-Password-42\r\n');
    await c.line();
    c.write(`z2 AUTHENTICATE PLAIN ${Buffer.from('\0alice\0Sentinel-Password-42').toString('base64')}\r\n`);
    await c.line();
    c.close();
    await px.waitForLog((l) => l.msg.startsWith('login refused'));
    const text = px.logText();
    expect(text).not.toContain('Sentinel-Password-42');
    expect(text).not.toContain(Buffer.from('\0alice\0Sentinel-Password-42').toString('base64'));
    expect(text).not.toContain('pmaster-secret');
  });
});

describe('the splice', () => {
  test('APPEND of 50 MB and FETCH back byte-identical', async () => {
    const size = 50 * 1024 * 1024;
    // IMAP literals carry no NUL (RFC 9051 CHAR8), so a big message is long text lines.
    const line = (i: number): string => `${`line ${i} `.padEnd(76, 'abcdefghijklmnopqrstuvwxyz')}\r\n`;
    const body = Buffer.alloc(size);
    for (let i = 0; i * 78 < size; i++) body.write(line(i), i * 78, 'latin1');
    body.fill(0x2e, Math.floor(size / 78) * 78);
    const message = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
    const f = flow('alice', 'alice-pw');
    await f.connect();
    const res = await f.append('INBOX', message);
    expect(res && res.uid).toBeGreaterThan(0);
    await f.mailboxOpen('INBOX');
    const { content } = await f.download(String(res && res.uid), undefined, { uid: true });
    const chunks: Buffer[] = [];
    if (content === undefined) throw new Error('no content');
    for await (const chunk of content) chunks.push(chunk as Buffer);
    const back = Buffer.concat(chunks);
    expect(back.length).toBe(message.length);
    expect(back.equals(message)).toBe(true);
    await f.logout();
  }, 120_000);

  test('IDLE sees a message delivered to the backend meanwhile', async () => {
    const f = flow('alice', 'alice-pw');
    await f.connect();
    const box = await f.mailboxOpen('INBOX');
    const before = box.exists;
    const seen = new Promise<number>((resolve) => f.on('exists', (d: { count: number }) => resolve(d.count)));
    void f.idle();
    await new Promise((r) => setTimeout(r, 300));
    await backend.deliver('alice', 'Subject: during idle\r\n\r\nping\r\n');
    const count = await Promise.race([seen, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS')), 10_000))]);
    expect(count).toBe(before + 1);
    await f.logout();
  });
});

describe('abuse stays on its own connection', () => {
  async function goodLoginMeanwhile(): Promise<void> {
    const c = await client();
    c.write('g1 LOGIN alice alice-pw\r\n');
    expect((await c.until('g1')).at(-1)).toMatch(/^g1 OK /);
    c.close();
  }

  test('a 1 MB line is cut off with BYE', async () => {
    const c = await client();
    c.write(`a1 LOGIN ${'x'.repeat(1024 * 1024)}\r\n`);
    await goodLoginMeanwhile();
    expect(await c.line()).toBe('* BYE Too long command line.');
    await c.waitClosed();
  });

  test('a huge literal is refused without buffering it', async () => {
    const c = await client();
    c.write('h1 LOGIN {999999999}\r\n');
    expect(await c.line()).toBe('h1 BAD Literal too large.');
    c.write('h2 LOGIN {4294967296+}\r\n');
    expect(await c.line()).toBe('* BYE Literal too large.');
    await c.waitClosed();
    await goodLoginMeanwhile();
  });

  test('random garbage and HTTP get no reflection and end after 3 bad commands', async () => {
    const c = await client();
    c.write('GET /<script> HTTP/1.1\r\nHost: evil\r\n\u0000\u00ff\u0001garbage\r\n');
    const lines = [await c.line(), await c.line(), await c.line()];
    expect(lines.join('\n')).not.toMatch(/script|evil|garbage/);
    expect(lines.at(-1)).toBe('* BYE Too many invalid IMAP commands.');
    await c.waitClosed();
    await goodLoginMeanwhile();
  });

  test('100 bad commands: the connection is closed at the limit', async () => {
    const c = await client();
    c.write(Array.from({ length: 100 }, (_, i) => `b${i} FOO\r\n`).join(''));
    await goodLoginMeanwhile();
    await c.waitClosed();
    expect(c.pending()).toContain('* BYE Too many invalid IMAP commands.');
  });

  test('a silent client is disconnected at login_timeout', async () => {
    const c = await client();
    const t0 = Date.now();
    await goodLoginMeanwhile();
    expect(await c.line(6000)).toBe('* BYE Disconnected for inactivity.');
    await c.waitClosed();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
    const ended = await px.waitForLog((l) => l.reason === 'login_timeout');
    expect(ended.msg).toMatch(/inactivity/);
  });
});
