/**
 * POP3 through portier to a real Dovecot backend, with real clients (python3 poplib, raw
 * sockets): pre-login commands and limits, USER/PASS, AUTH, STLS (and its injection
 * defence), password forwarding, destuser, master users, RETR byte for byte, backend STLS,
 * XCLIENT, backend down. Clients connect from 127.0.0.5 so they are not "local".
 */
import { readFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import type { DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { poplib as runPoplib, type PoplibResult } from '../support/python-clients.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';
import { proxiedUsers, startProxyBackend } from './proxy-fixtures.js';

const DOVECOT_PRELOGIN_CAPA = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'USER', 'SASL PLAIN LOGIN'];
let backend: DovecotBackend;
let px: RunningPortier;
let strict: RunningPortier;
let cert: IssuedCert;
let closedPort: number;

function users(b: DovecotBackend): string {
  const to = `proxy=y host=${b.host} port=${b.ports.pop3}`;
  return [
    ...proxiedUsers(to),
    `secure:{PLAIN}alice-pw::::::${to} destuser=alice starttls=y`,
    `hidden:{PLAIN}alice-pw::::::${to} destuser=alice proxy_not_trusted=y`,
    `down:{PLAIN}down-pw::::::proxy=y host=127.0.0.2 port=${closedPort}`,
    // passwd-file extra fields are space-separated (as in Dovecot): a reason is one word here.
    `dave:{PLAIN}dave-pw::::::nologin=y reason=Moved.`,
    `nohost:{PLAIN}nohost-pw::::::`,
    '',
  ].join('\n');
}

function config(strictMode: boolean): string {
  return testConfig(['pop3'], {
    settings: {
      ssl: 'yes',
      ssl_cert: cert.certFile,
      ssl_key: cert.keyFile,
      ssl_client_ca_file: cert.caFile,
      disable_plaintext_auth: strictMode ? 'yes' : 'no',
      login_timeout: '3s',
      log_level: 'debug',
    },
    ports: { pop3s: '{{port}}' },
  });
}

async function client(p: RunningPortier = px): Promise<LineClient> {
  const c = await greeted(p, 'pop3');
  expect(c.greeting).toBe('+OK portier ready.');
  return c;
}

/** A multi-line reply (RFC 1939 §3): the status line, then lines up to the lone dot. */
async function multiline(c: LineClient): Promise<{ status: string; lines: string[] }> {
  const status = await c.line();
  const lines: string[] = [];
  if (!status.startsWith('+OK')) return { status, lines };
  for (let l = await c.line(); l !== '.'; l = await c.line()) lines.push(l);
  return { status, lines };
}

async function login(c: LineClient, user: string, pass: string): Promise<string> {
  c.write(`USER ${user}\r\n`);
  expect(await c.line()).toBe('+OK');
  c.write(`PASS ${pass}\r\n`);
  return c.line();
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** python3 poplib, from 127.0.0.5: log in (after STLS with `stls`), list and fetch everything, quit. */
function poplib(user: string, pass: string, opts: { stls?: boolean; portier?: RunningPortier } = {}): Promise<PoplibResult> {
  const p = opts.portier ?? px;
  return runPoplib({ port: p.port('pop3'), user, password: pass, mode: opts.stls === true ? 'stls' : 'user-pass', caFile: cert.caFile });
}

/** The raw bytes of a RETR reply, status line to the terminating dot. */
async function retrRaw(c: LineClient, n: number): Promise<Buffer> {
  c.write(`RETR ${n}\r\n`);
  const parts: Buffer[] = [];
  for (;;) {
    const line = await c.line();
    parts.push(Buffer.from(`${line}\r\n`, 'utf8'));
    if (line === '.') return Buffer.concat(parts);
  }
}

beforeAll(async () => {
  const ca = await sharedTestCa();
  cert = await ca.issue('portier-pop3', { sans: ['127.0.0.1', 'localhost'] });
  const backendCert = await ca.issue('pop3-backend', { sans: ['127.0.0.2'] });
  backend = await startProxyBackend({ ssl: 'yes', cert: backendCert });
  closedPort = await freePort('127.0.0.2');
  px = await startPortier(config(false), { users: users(backend) });
  strict = await startPortier(config(true), { users: users(backend) });
});

afterAll(async () => {
  await px?.stop();
  await strict?.stop();
  await backend?.stop();
});

describe('POP3 front-end before login', () => {
  test("CAPA is Dovecot's pre-login list (compared with the real backend)", async () => {
    const direct = await greeted(backend.ports.pop3, 'pop3', { host: backend.host });
    direct.write('CAPA\r\n');
    const dovecot = await multiline(direct);
    direct.close();
    expect(dovecot.lines).toEqual(DOVECOT_PRELOGIN_CAPA);
    const c = await client();
    c.write('CAPA\r\n');
    const ours = await multiline(c);
    expect(ours.status).toMatch(/^\+OK/);
    expect(ours.lines).toEqual(dovecot.lines);
    c.close();
  });

  test('NOOP and transaction commands are -ERR; AUTH lists mechanisms; APOP is off; QUIT', async () => {
    const c = await client();
    c.write('NOOP\r\n');
    expect(await c.line()).toBe('-ERR Unknown command.');
    c.write('AUTH\r\n');
    expect(await multiline(c)).toEqual({ status: '+OK Mechanisms follow', lines: ['PLAIN', 'LOGIN'] });
    c.write('APOP alice 0123456789abcdef0123456789abcdef\r\n');
    expect(await c.line()).toBe('-ERR APOP not enabled.');
    c.write('PASS nobody-asked\r\n');
    expect(await c.line()).toBe('-ERR No username given.');
    c.write('quit\r\n');
    expect(await c.line()).toBe('+OK Logging out.');
    await c.waitClosed();
  });

  test('bad-command limit: the third invalid command closes the connection', async () => {
    const c = await client();
    c.write('LIST\r\nRETR 1\r\n');
    expect(await c.line()).toBe('-ERR Unknown command.');
    expect(await c.line()).toBe('-ERR Unknown command.');
    c.write('GET / HTTP/1.1\r\n');
    expect(await c.line()).toBe('-ERR Too many invalid commands.');
    await c.waitClosed();
    await px.waitForLog((l) => l.reason === 'too_many_bad_commands');
  });

  test('login timeout: an idle client is told and disconnected', async () => {
    const started = Date.now();
    const c = await client();
    expect(await c.line(15_000)).toBe('-ERR Disconnected for inactivity.');
    await c.waitClosed();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(2500);
    expect(took).toBeLessThan(12_000);
  });

  test('a command line over login_max_line_length closes the connection; a long AUTH line does not', async () => {
    const c = await client();
    c.write(`USER ${'x'.repeat(9000)}\r\n`);
    expect(await c.line()).toBe('-ERR Too long command line.');
    await c.waitClosed();
    const d = await client();
    d.write(`AUTH PLAIN ${b64(`\0alice\0${'p'.repeat(7000)}`)}\r\n`);
    expect(await d.line()).toBe('-ERR [AUTH] Authentication failed.');
    d.write('QUIT\r\n');
    expect(await d.line()).toBe('+OK Logging out.');
  });
});

describe('login and proxying', () => {
  test('python poplib: USER/PASS, STAT, RETR and QUIT through portier', async () => {
    const r = await poplib('alice', 'alice-pw');
    expect(r.error).toBeUndefined();
    expect(r.welcome).toBe('+OK portier ready.');
    expect(r.pass).toBe('+OK Logged in.');
    // After login CAPA comes from the backend (its post-login list).
    expect(r.quit).toMatch(/^\+OK/);
    expect(r.stat?.length).toBe(2);
  });

  test('wrong password: refused by portier, the backend never sees the attempt', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'alice', 'wrong')).toBe('-ERR [AUTH] Authentication failed.');
    expect(await login(c, 'nosuchuser', 'wrong')).toBe('-ERR [AUTH] Authentication failed.');
    // Same connection: a correct login still works, and it is the first thing the backend sees.
    expect(await login(c, 'bob', 'bob-pw')).toBe('+OK Logged in.');
    await backend.waitForLog(/Login: user=<robert>/, 5000, from);
    const seen = Buffer.from(await backend.readLog()).subarray(from).toString();
    expect(seen).not.toMatch(/alice|nosuchuser|Password mismatch|unknown user/);
    c.close();
  });

  test('destuser: bob logs in as robert on the backend', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'bob', 'bob-pw')).toBe('+OK Logged in.');
    expect(await backend.waitForLog(/pop3-login: Info: Login: user=<robert>/, 5000, from)).toMatch(/rip=127\.0\.0\.5/);
    c.close();
  });

  test('password forwarding (nopassword): the backend decides, and its refusal is generic', async () => {
    const c = await client();
    expect(await login(c, 'fwd', 'not-the-backend-pw')).toBe('-ERR [AUTH] Authentication failed.');
    expect(await login(c, 'fwd', 'fwd-pw')).toBe('+OK Logged in.');
    c.close();
  });

  test('master user upstream: AUTH PLAIN as pmaster on behalf of carol', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'carol', 'carol-pw')).toBe('+OK Logged in.');
    await backend.waitForLog(/Master user logging in as carol/, 5000, from);
    expect(await backend.waitForLog(/Login: user=<carol>/, 5000, from)).toMatch(/method=PLAIN/);
    c.close();
  });

  test('nologin with a reason, and a passdb result without a destination', async () => {
    const c = await client();
    expect(await login(c, 'dave', 'dave-pw')).toBe('-ERR [AUTH] Moved.');
    expect(await login(c, 'nohost', 'nohost-pw')).toBe('-ERR [SYS/TEMP] Account is temporarily unavailable.');
    c.close();
  });

  test('AUTH PLAIN with and without initial response, AUTH LOGIN, and * cancel', async () => {
    const c = await client();
    c.write(`AUTH PLAIN ${b64('\0alice\0alice-pw')}\r\n`);
    expect(await c.line()).toBe('+OK Logged in.');
    c.close();

    const d = await client();
    d.write('AUTH PLAIN\r\n');
    expect(await d.line()).toBe('+ ');
    d.write('*\r\n');
    expect(await d.line()).toBe('-ERR Authentication aborted by client.');
    d.write('AUTH plain\r\n');
    expect(await d.line()).toBe('+ ');
    d.write(`${b64('\0alice\0alice-pw')}\r\n`);
    expect(await d.line()).toBe('+OK Logged in.');
    d.close();

    const e = await client();
    e.write('AUTH LOGIN\r\n');
    expect(await e.line()).toBe(`+ ${b64('Username:')}`);
    e.write(`${b64('alice')}\r\n`);
    expect(await e.line()).toBe(`+ ${b64('Password:')}`);
    e.write(`${b64('alice-pw')}\r\n`);
    expect(await e.line()).toBe('+OK Logged in.');
    e.close();

    const f = await client();
    f.write('AUTH CRAM-SHA9\r\n');
    expect(await f.line()).toBe('-ERR [AUTH] Unsupported authentication mechanism.');
    f.write('AUTH PLAIN !!!\r\n');
    expect(await f.line()).toBe('-ERR [AUTH] Invalid base64 data.');
    f.close();
  });

  test('pipelined USER, PASS and STAT in one packet: STAT reaches the backend', async () => {
    const c = await client();
    c.write('USER alice\r\nPASS alice-pw\r\nSTAT\r\nQUIT\r\n');
    expect(await c.line()).toBe('+OK');
    expect(await c.line()).toBe('+OK Logged in.');
    expect(await c.line()).toMatch(/^\+OK \d+ \d+$/);
    expect(await c.line()).toMatch(/^\+OK Logging out/);
    await c.waitClosed();
  });

  test('RETR is byte-identical to the backend, dot-stuffing included', async () => {
    const message =
      'From: a@example.org\r\nTo: alice@example.org\r\nSubject: dots\r\n\r\n' +
      '.starts with a dot\r\n..two dots\r\n.\r\nmiddle . line\r\n\xe4 8-bit\r\n';
    await backend.deliver('alice', Buffer.from(message, 'latin1'));
    const direct = await greeted(backend.ports.pop3, 'pop3', { host: backend.host });
    expect(await login(direct, 'alice', 'alice-pw')).toMatch(/^\+OK/);
    direct.write('STAT\r\n');
    const count = Number(/^\+OK (\d+)/.exec(await direct.line())?.[1]);
    const fromBackend = await retrRaw(direct, count);
    direct.write('QUIT\r\n');
    await direct.line();
    direct.close();

    const c = await client();
    expect(await login(c, 'alice', 'alice-pw')).toBe('+OK Logged in.');
    const throughPortier = await retrRaw(c, count);
    expect(throughPortier.equals(fromBackend)).toBe(true);
    // The stuffed lines are on the wire as RFC 1939 §3 wants them.
    expect(throughPortier.toString('latin1')).toContain('\r\n..starts with a dot\r\n...two dots\r\n..\r\n');
    c.close();

    const r = await poplib('alice', 'alice-pw');
    // poplib sees the message as stored: LMTP's Return-Path line first.
    expect(r.messages?.at(-1)?.replace(/^Return-Path: [^\n]*\n/, '')).toBe(message.replace(/\r\n$/, ''));
  });
});

describe('TLS', () => {
  test('STLS from the client, then login over TLS (python poplib)', async () => {
    const r = await poplib('alice', 'alice-pw', { stls: true });
    expect(r.error).toBeUndefined();
    expect(r.stls).toBe('+OK Begin TLS negotiation now.');
    expect(r.pass).toBe('+OK Logged in.');
  });

  test('disable_plaintext_auth: no USER or PLAIN before STLS, both after', async () => {
    const c = await client(strict);
    c.write('CAPA\r\n');
    expect((await multiline(c)).lines).toEqual(['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS']);
    c.write('USER alice\r\n');
    expect(await c.line()).toBe('-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    c.write(`AUTH PLAIN ${b64('\0alice\0alice-pw')}\r\n`);
    expect(await c.line()).toBe('-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    c.write('STLS\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation now.');
    await c.starttls({ ca: [await readFile(cert.caFile, 'utf8')], servername: 'localhost' });
    c.write('CAPA\r\n');
    expect((await multiline(c)).lines).toEqual(['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN']);
    c.write('STLS\r\n');
    expect(await c.line()).toBe('-ERR TLS is already active.');
    expect(await login(c, 'alice', 'alice-pw')).toBe('+OK Logged in.');
    c.close();
  });

  test('STLS injection: commands pipelined after STLS in the same packet never run', async () => {
    const c = await client(strict);
    c.write('STLS\r\nUSER alice\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation now.');
    await c.starttls({ ca: [await readFile(cert.caFile, 'utf8')], servername: 'localhost' });
    c.write('PASS alice-pw\r\n');
    expect(await c.line()).toBe('-ERR No username given.');
    c.close();
    await strict.waitForLog((l) => l.msg.startsWith('discarded input pipelined after STLS'));
  });

  test('implicit TLS on the pop3s listener, with ALPN pop3', async () => {
    const c = await greeted(px.port('pop3s'), 'pop3', { tls: { ca: [await readFile(cert.caFile, 'utf8')], servername: 'localhost', ALPNProtocols: ['pop3'] } });
    expect(c.greeting).toBe('+OK portier ready.');
    expect((c.socket as TLSSocket).alpnProtocol).toBe('pop3');
    c.write('CAPA\r\n');
    expect((await multiline(c)).lines).not.toContain('STLS');
    expect(await login(c, 'alice', 'alice-pw')).toBe('+OK Logged in.');
    c.close();
  });

  test('backend STLS (starttls=y): verified against ssl_client_ca_file, login over TLS', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'secure', 'alice-pw')).toBe('+OK Logged in.');
    // Dovecot writes its log lines late: the line is found by portier's session id, not by
    // being the first alice login after `from` (an earlier test's could land after it).
    const started = await px.waitForLog((l) => l.msg.startsWith('Started proxying') && l.user === 'secure');
    const line = await backend.waitForLog(new RegExp(`pop3-login: Info: Login: user=<alice>.*session=<${String(started.session)}>`), 5000, from);
    expect(line).toMatch(/, TLS,/);
    c.close();
  });
});

describe('client address and backend failures', () => {
  test('XCLIENT: the backend logs the real client address and portier\'s session id', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'alice', 'alice-pw')).toBe('+OK Logged in.');
    const line = await backend.waitForLog(/pop3-login: Info: Login: user=<alice>/, 5000, from);
    expect(line).toMatch(/rip=127\.0\.0\.5/);
    const started = await px.waitForLog((l) => l.msg.startsWith('Started proxying') && l.user === 'alice' && line.includes(`session=<${String(l.session)}>`));
    expect(started.destuser).toBe('alice');
    c.close();
  });

  test('proxy_not_trusted: no XCLIENT, the backend sees portier', async () => {
    const from = await backend.logSize();
    const c = await client();
    expect(await login(c, 'hidden', 'alice-pw')).toBe('+OK Logged in.');
    // A login without the client's address: an earlier test's late line (rip=127.0.0.5) cannot match.
    const line = await backend.waitForLog(/pop3-login: Info: Login: user=<alice>, .*rip=(?!127\.0\.0\.5,)/, 5000, from);
    expect(line).not.toMatch(/rip=127\.0\.0\.5,/);
    c.close();
  });

  test('backend down: -ERR [SYS/TEMP] quickly, and the client may go on', async () => {
    const c = await client();
    const started = Date.now();
    expect(await login(c, 'down', 'down-pw')).toBe('-ERR [SYS/TEMP] Account is temporarily unavailable.');
    expect(Date.now() - started).toBeLessThan(8000);
    expect(await login(c, 'alice', 'alice-pw')).toBe('+OK Logged in.');
    c.close();
  });
});
