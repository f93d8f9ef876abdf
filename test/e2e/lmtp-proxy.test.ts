/**
 * LMTP through portier to real Dovecot LMTP backends, with real clients (python3
 * smtplib.LMTP, swaks, raw sockets): recipients on two backends plus an unknown one, one
 * backend down, a 20 MB message byte for byte, pipelining, dot-stuffing, SIZE, loops (TTL
 * and self), XCLIENT both ways, STARTTLS from the client (and its injection defence) and to a
 * backend, destuser with ORCPT, local_backend for unknown users, shutdown.
 * Clients connect from 127.0.0.5 (untrusted) or 127.0.0.6 (an MTA in login_trusted_networks).
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLIENT_IP, greeted } from '../support/clients.js';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { readReply, reply, smtplib, swaks } from '../support/lmtp-peers.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';
import { makeTempDir } from '../support/tmp.js';

const MTA_IP = '127.0.0.6';
let a: DovecotBackend;
let b: DovecotBackend;
let c: DovecotBackend;
let px: RunningPortier;
let local: RunningPortier;
let cert: IssuedCert;
let lmtpPort: number;
let spoolDir: string;

function users(): string {
  const at = (d: DovecotBackend, extra = ''): string => `proxy=y host=${d.host} port=${d.ports.lmtp}${extra}`;
  return [
    `alice@a.example:::::::${at(a)}`,
    `carol@a.example:::::::${at(a)}`,
    `bob@b.example:::::::${at(b)}`,
    `robert@b.example:::::::${at(b, ' destuser=dave@b.example')}`,
    `secure@b.example:::::::${at(b, ' starttls=y destuser=bob@b.example')}`,
    `plainonly@a.example:::::::${at(a, ' starttls=y destuser=alice@a.example')}`,
    `eve@c.example:::::::${at(c)}`,
    `frank@c.example:::::::${at(c)}`,
    `fwd@a.example:::::::${at(a, ' destuser=alice@a.example forward_origin=portier-test')}`,
    `self@x.example:::::::proxy=y host=127.0.0.1 port=${lmtpPort}`,
    `noproxy@x.example:::::::`,
    '',
  ].join('\n');
}

/** `extra`: more top-level settings (YAML); `service`: the listeners, else lmtp on a fresh port. */
/** `idle`: lmtp_proxy_idle_connections (default: portier's). */
function config(opts: { ssl?: 'yes' | 'required'; extra?: string; service?: string; idle?: number } = {}): string {
  return testConfig(['lmtp'], {
    base: LOOPBACK_SETTINGS,
    settings: {
      ssl: opts.ssl ?? 'yes',
      ssl_cert: cert.certFile,
      ssl_key: cert.keyFile,
      ssl_client_ca_file: cert.caFile,
      login_trusted_networks: MTA_IP,
      lmtp_max_mail_size: '25M',
      mail_temp_dir: spoolDir,
      log_level: 'debug',
      ...(opts.idle !== undefined ? { lmtp_proxy_idle_connections: opts.idle } : {}),
    },
    ...(opts.extra !== undefined ? { extra: opts.extra } : {}),
    ...(opts.service !== undefined ? { service: opts.service } : {}),
  });
}

/** A message with CRLF lines, some of them starting with dots. */
function message(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: you@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@test>\r\n\r\n${body}`);
}

async function client(p: RunningPortier = px, from = CLIENT_IP): Promise<LineClient> {
  const l = await greeted(p, 'lmtp', { from, greetingTimeoutMs: 10_000 });
  expect(l.greeting).toMatch(/^220 \S+ portier ready\.$/);
  return l;
}

/** Messages in a user's INBOX whose Subject is `subject`. */
async function inbox(d: DovecotBackend, user: string, subject: string): Promise<Buffer[]> {
  return (await d.listMessages(user)).filter((m) => m.includes(`Subject: ${subject}\r\n`));
}

beforeAll(async () => {
  const ca = await sharedTestCa();
  cert = await ca.issue('portier-lmtp', { sans: ['127.0.0.1', 'localhost'] });
  const bCert = await ca.issue('lmtp-backend-b', { sans: ['127.0.0.3'] });
  spoolDir = await makeTempDir('portier-lmtp-spool-');
  // Backends trust portier (127.0.0.1) for XCLIENT; direct clients from 127.0.0.5 are not trusted.
  const trust = { trustedNetworks: ['127.0.0.1'], protocols: ['lmtp' as const] };
  [a, b, c] = await Promise.all([
    startDovecot({ ...trust, address: '127.0.0.2', users: [{ user: 'alice@a.example', password: 'x' }, { user: 'carol@a.example', password: 'x' }, { user: 'localonly@a.example', password: 'x' }] }),
    startDovecot({
      ...trust,
      address: '127.0.0.3',
      users: [{ user: 'bob@b.example', password: 'x' }, { user: 'dave@b.example', password: 'x' }],
      ssl: 'yes',
      cert: bCert,
      // Delivered-To from ORCPT shows which address the message was originally for.
      extraConf: 'lmtp_hdr_delivery_address = original\n',
    }),
    startDovecot({ ...trust, address: '127.0.0.4', users: [{ user: 'eve@c.example', password: 'x' }, { user: 'frank@c.example', password: 'x' }] }),
  ]);
  lmtpPort = await freePort('127.0.0.1');
  // Some tests read Dovecot's "Disconnect from <client>" lines, logged when a backend
  // connection closes: none is left open for a later session (that is lmtp-reuse.test.ts's).
  px = await startPortier(
    config({ idle: 0, service: `service:\n  lmtp:\n    inet_listener:\n      lmtp: { port: ${lmtpPort} }\n      lmtps: { port: {{port}}, ssl: yes }\n` }),
    { users: users() },
  );
  local = await startPortier(config({ extra: `local_backend:\n  lmtp: ${a.host}:${a.ports.lmtp}\n` }), { users: users() });
});

afterAll(async () => {
  await px?.stop();
  await local?.stop();
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
});

/** Strip the Delivered-To line backend B adds (lmtp_hdr_delivery_address = original). */
function withoutDeliveredTo(m: Buffer): Buffer {
  return m.subarray(0, 14).toString() === 'Delivered-To: ' ? m.subarray(m.indexOf('\n') + 1) : m;
}

describe('LMTP fan-out to real Dovecot backends', () => {
  test('recipients on two backends plus an unknown one: 250/250/550, each mailbox holds the message once', async () => {
    const msg = message('fan-out');
    const r = await smtplib({ port: px.port('lmtp'), from: 'sender@example.org', rcpts: ['alice@a.example', 'bob@b.example', 'nobody@a.example'], message: msg });
    expect(r.error).toBeUndefined();
    expect(r.lhlo?.[0]).toBe(250);
    expect(r.rcpt.map((x) => x[0])).toEqual([250, 250, 550]);
    expect(r.rcpt[2]?.[1]).toBe("5.1.1 <nobody@a.example> User doesn't exist");
    expect(r.data.map((x) => x[0])).toEqual([250, 250]);
    expect(r.data[0]?.[1]).toMatch(/^2\.0\.0 <alice@a\.example> \S+ Saved$/);
    expect(r.data[1]?.[1]).toMatch(/^2\.0\.0 <bob@b\.example> \S+ Saved$/);
    const atA = await inbox(a, 'alice@a.example', 'fan-out');
    const atB = await inbox(b, 'bob@b.example', 'fan-out');
    expect(atA).toHaveLength(1);
    expect(atB).toHaveLength(1);
    expect(atA[0]).toEqual(msg);
    expect(withoutDeliveredTo(atB[0] ?? Buffer.alloc(0))).toEqual(msg);
  });
});

describe('LMTP delivery details', () => {
  test('one backend stopped: 451 4.4.0 for its recipients only, the other backend gets the message', async () => {
    await c.stop();
    try {
      const msg = message('one-down');
      const r = await smtplib({ port: px.port('lmtp'), from: 'sender@example.org', rcpts: ['eve@c.example', 'alice@a.example', 'frank@c.example'], message: msg });
      expect(r.error).toBeUndefined();
      expect(r.rcpt).toEqual([
        [451, '4.4.0 Remote server not answering (connect)'],
        [250, '2.1.5 OK'],
        [451, '4.4.0 Remote server not answering (connect)'],
      ]);
      expect(r.data.map((x) => x[0])).toEqual([250]);
      expect(await inbox(a, 'alice@a.example', 'one-down')).toEqual([msg]);
    } finally {
      await c.start();
    }
    const back = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['eve@c.example'], message: message('c-back') });
    expect(back.data.map((x) => x[0])).toEqual([250]);
  });

  test('a 20 MB message arrives byte for byte at two backends (spooled to disk, nothing left behind)', async () => {
    const lines: string[] = [];
    for (let size = 0; size < 20 * 1024 * 1024; ) {
      const line = `${lines.length % 7 === 0 ? '.' : ''}${randomBytes(57).toString('base64')}`;
      lines.push(line);
      size += line.length + 2;
    }
    const msg = Buffer.concat([message('twenty-mb', ''), Buffer.from(`${lines.join('\r\n')}\r\n`)]);
    expect(msg.length).toBeGreaterThan(20 * 1024 * 1024);
    const r = await smtplib({ port: px.port('lmtp'), from: 'big@example.org', rcpts: ['alice@a.example', 'carol@a.example', 'eve@c.example'], message: msg });
    expect(r.error).toBeUndefined();
    expect(r.data.map((x) => x[0])).toEqual([250, 250, 250]);
    for (const [d, u] of [[a, 'alice@a.example'], [a, 'carol@a.example'], [c, 'eve@c.example']] as const) {
      const got = await inbox(d, u, 'twenty-mb');
      expect(got).toHaveLength(1);
      expect(got[0]?.equals(msg)).toBe(true);
    }
    expect(await readdir(spoolDir)).toEqual([]);
  });

  test('pipelined commands are answered in order (PIPELINING), also after DATA', async () => {
    const l = await client();
    l.write('LHLO mta.test\r\nMAIL FROM:<p@example.org>\r\nRCPT TO:<alice@a.example>\r\nRCPT TO:<nobody@b.example>\r\nRCPT TO:<bob@b.example>\r\nNOOP\r\nDATA\r\n');
    const caps = await readReply(l);
    expect(caps.slice(1)).toEqual(['250-8BITMIME', '250-ENHANCEDSTATUSCODES', '250-PIPELINING', '250-SIZE 26214400', '250 STARTTLS']);
    expect(await reply(l)).toBe('250 2.1.0 OK');
    expect(await reply(l)).toBe('250 2.1.5 OK');
    expect(await reply(l)).toBe("550 5.1.1 <nobody@b.example> User doesn't exist");
    expect(await reply(l)).toBe('250 2.1.5 OK');
    expect(await reply(l)).toBe('250 2.0.0 OK');
    expect(await reply(l)).toBe('354 OK');
    const body = message('pipelined');
    l.write(Buffer.concat([body, Buffer.from('.\r\nMAIL FROM:<>\r\nRCPT TO:<carol@a.example>\r\nRSET\r\nQUIT\r\n')]));
    expect(await reply(l)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
    expect(await reply(l)).toMatch(/^250 2\.0\.0 <bob@b\.example> /);
    expect(await reply(l)).toBe('250 2.1.0 OK');
    expect(await reply(l)).toBe('250 2.1.5 OK');
    expect(await reply(l)).toBe('250 2.0.0 OK');
    expect(await reply(l)).toBe('221 2.0.0 Bye');
    await l.waitClosed();
    expect(await inbox(a, 'alice@a.example', 'pipelined')).toEqual([body]);
    expect(await inbox(a, 'carol@a.example', 'pipelined')).toEqual([]);
  });

  test('swaks with --pipeline delivers to two backends', async () => {
    const r = await swaks(['--server', `127.0.0.1:${px.port('lmtp')}`, '--local-interface', CLIENT_IP, '--pipeline', '--from', 's@example.org', '--to', 'alice@a.example,bob@b.example', '--header', 'Subject: by-swaks', '--body', 'swaks body']);
    expect(r.out).toMatch(/<- +250 2\.0\.0 <alice@a\.example> \S+ Saved\n<- +250 2\.0\.0 <bob@b\.example> \S+ Saved\n/);
    expect(r.code).toBe(0);
    expect(await inbox(a, 'alice@a.example', 'by-swaks')).toHaveLength(1);
    expect(await inbox(b, 'bob@b.example', 'by-swaks')).toHaveLength(1);
  });

  test('dot-stuffing both ways: lines starting with "." arrive intact', async () => {
    const msg = message('dots', '.\r\n..\r\n.leading dot\r\n...three\r\nmiddle . dot\r\n. space\r\n');
    const r = await smtplib({ port: px.port('lmtp'), from: 'dots@example.org', rcpts: ['alice@a.example'], message: msg });
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(await inbox(a, 'alice@a.example', 'dots')).toEqual([msg]);
  });

  test('bare LF line ends are stored as CRLF; "LF . LF" inside a message is content, not its end', async () => {
    const l = await client();
    l.write('LHLO mta.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
    await readReply(l);
    expect(await reply(l)).toBe('250 2.1.0 OK');
    expect(await reply(l)).toBe('250 2.1.5 OK');
    expect(await reply(l)).toBe('354 OK');
    l.write('Subject: bare-lf\nX-A: 1\n\nline\n.\nsmuggled\r\n.\r\n');
    expect(await reply(l)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
    l.close();
    expect(await inbox(a, 'alice@a.example', 'bare-lf')).toEqual([Buffer.from('Subject: bare-lf\r\nX-A: 1\r\n\r\nline\r\n.\r\nsmuggled\r\n')]);
  });

  test('SIZE: advertised; a declared size over lmtp_max_mail_size is refused at MAIL', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: 'big@example.org', mailOptions: [`SIZE=${25 * 1024 * 1024 + 1}`], rcpts: [], message: Buffer.alloc(0) });
    expect(r.lhlo?.[1]).toContain('SIZE 26214400');
    expect(r.mail).toEqual([552, '5.3.4 Message size exceeds fixed maximum message size']);
    const ok = await smtplib({ port: px.port('lmtp'), from: 's@example.org', mailOptions: ['SIZE=1000', 'BODY=8BITMIME'], rcpts: ['alice@a.example'], message: message('declared-size') });
    expect(ok.mail?.[0]).toBe(250);
    expect(ok.data.map((x) => x[0])).toEqual([250]);
  });
});

describe('LMTP loops and XCLIENT', () => {
  test('TTL used up (XCLIENT TTL from a trusted MTA) is refused with 554 5.4.6', async () => {
    for (const ttl of [1, 0]) {
      const r = await smtplib({ port: px.port('lmtp'), source: MTA_IP, xclient: `TTL=${ttl}`, from: '', rcpts: ['alice@a.example', 'nobody@a.example'], message: message('ttl') });
      expect(r.xclient).toEqual([220, `${px.portier.runtime.hostname} portier ready.`]);
      expect(r.rcpt).toEqual([
        [554, '5.4.6 Proxying appears to be looping (TTL=0)'],
        [550, "5.1.1 <nobody@a.example> User doesn't exist"],
      ]);
    }
    // With hops left, the same delivery goes through.
    const ok = await smtplib({ port: px.port('lmtp'), source: MTA_IP, xclient: 'TTL=2', from: '', rcpts: ['alice@a.example'], message: message('ttl-ok') });
    expect(ok.data.map((x) => x[0])).toEqual([250]);
  });

  test('a destination that is portier itself: 554 5.4.6 Proxying loops to itself', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['self@x.example', 'alice@a.example'], message: message('self-loop') });
    expect(r.rcpt).toEqual([
      [554, '5.4.6 Proxying loops to itself'],
      [250, '2.1.5 OK'],
    ]);
    expect(r.data.map((x) => x[0])).toEqual([250]);
  });

  test('XCLIENT from untrusted clients is refused (and not offered)', async () => {
    const l = await client();
    l.write('LHLO mta.test\r\n');
    expect((await readReply(l)).join('\n')).not.toContain('XCLIENT');
    l.write('XCLIENT ADDR=192.0.2.1\r\n');
    expect(await reply(l)).toBe('550 5.7.14 You are not from trusted IP');
    l.close();
    const m = await client(px, MTA_IP);
    m.write('LHLO mta.test\r\n');
    expect(await readReply(m)).toContain('250 XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT');
    m.write('XCLIENT ADDR=not-an-ip\r\n');
    expect(await reply(m)).toBe('501 5.5.4 Invalid XCLIENT parameters');
    m.close();
  });

  test('the backend sees the real client: XCLIENT forwards the address and the session id', async () => {
    const from = await a.logSize();
    const r = await smtplib({ port: px.port('lmtp'), from: 'x@example.org', rcpts: ['alice@a.example'], message: message('xclient') });
    expect(r.data.map((x) => x[0])).toEqual([250]);
    const id = /<alice@a\.example> (\S+) Saved/.exec(r.data[0]?.[1] ?? '')?.[1];
    expect(id).toBeDefined();
    // Dovecot names the session by the forwarded SESSION and logs the forwarded address.
    await a.waitForLog(new RegExp(`lmtp\\(alice@a\\.example\\)<\\d+><${id}>: Info: .*saved mail to INBOX`), 5000, from);
    await a.waitForLog(/Disconnect from 127\.0\.0\.5: /, 5000, from);
    // A trusted MTA's own XCLIENT is passed along: the backend sees the MTA's client.
    const from2 = await a.logSize();
    const viaMta = await smtplib({ port: px.port('lmtp'), source: MTA_IP, xclient: 'ADDR=192.0.2.7 PORT=4242', from: '', rcpts: ['alice@a.example'], message: message('xclient-mta') });
    expect(viaMta.data.map((x) => x[0])).toEqual([250]);
    await a.waitForLog(/Disconnect from 192\.0\.2\.7: /, 5000, from2);
    expect(Buffer.from(await a.readLog()).subarray(from2).toString()).not.toMatch(/Disconnect from 127\.0\.0\.6/);
  });
});

describe('LMTP TLS', () => {
  test('STARTTLS from the client (python smtplib) and delivery over TLS', async () => {
    const r = await smtplib({ port: px.port('lmtp'), starttlsCa: cert.caFile, from: 's@example.org', rcpts: ['alice@a.example'], message: message('over-tls') });
    expect(r.error).toBeUndefined();
    expect(r.starttls).toEqual([220, '2.0.0 Begin TLS negotiation now.']);
    expect(r.lhlo?.[1]).not.toContain('STARTTLS');
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(await inbox(a, 'alice@a.example', 'over-tls')).toHaveLength(1);
  });

  test('an implicit-TLS listener (ssl: yes): TLS first, no STARTTLS offered, delivery works', async () => {
    const ca = await import('node:fs/promises').then((f) => f.readFile(cert.caFile));
    const l = await greeted(px.port('lmtps'), 'lmtp', { tls: { ca, servername: 'localhost' }, greetingTimeoutMs: 10_000 });
    expect((l.socket as TLSSocket).authorized).toBe(true);
    expect(l.greeting).toMatch(/^220 \S+ portier ready\.$/);
    l.write('LHLO mta.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
    expect(await readReply(l)).not.toContain('250 STARTTLS');
    for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(l)).toBe(want);
    l.write(Buffer.concat([message('implicit-tls'), Buffer.from('.\r\nQUIT\r\n')]));
    expect(await reply(l)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
    expect(await reply(l)).toBe('221 2.0.0 Bye');
    expect(await inbox(a, 'alice@a.example', 'implicit-tls')).toHaveLength(1);
  });

  test('ssl: required: MAIL before STARTTLS is 530; after STARTTLS the transaction goes through', async () => {
    const strict = await startPortier(config({ ssl: 'required' }), { users: users() });
    try {
      const l = await client(strict);
      l.write('LHLO mta.test\r\nMAIL FROM:<>\r\n');
      expect(await readReply(l)).toContain('250 STARTTLS');
      expect(await reply(l)).toBe('530 5.7.0 Must issue a STARTTLS command first');
      l.write('STARTTLS\r\n');
      expect(await reply(l)).toBe('220 2.0.0 Begin TLS negotiation now.');
      await l.starttls({ ca: await import('node:fs/promises').then((f) => f.readFile(cert.caFile)), servername: 'localhost' });
      l.write('LHLO mta.test\r\n');
      await readReply(l);
      l.write('MAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
      for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(l)).toBe(want);
      l.write(Buffer.concat([message('required-tls'), Buffer.from('.\r\n')]));
      expect(await reply(l)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
      l.close();
      expect(await inbox(a, 'alice@a.example', 'required-tls')).toHaveLength(1);
    } finally {
      await strict.stop();
    }
  });

  test('commands pipelined after STARTTLS in the same packet are discarded', async () => {
    const l = await client();
    l.write('LHLO mta.test\r\n');
    await readReply(l);
    l.write('STARTTLS\r\nLHLO evil\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@a.example>\r\n');
    expect(await reply(l)).toBe('220 2.0.0 Begin TLS negotiation now.');
    const tls: TLSSocket = await l.starttls({ ca: await import('node:fs/promises').then((f) => f.readFile(cert.caFile)), servername: 'localhost' });
    expect(tls.authorized).toBe(true);
    // Nothing injected ran: no LHLO, no MAIL.
    l.write('RCPT TO:<alice@a.example>\r\n');
    expect(await reply(l)).toBe('503 5.5.1 MAIL needed first');
    l.write('MAIL FROM:<>\r\n');
    expect(await reply(l)).toBe('503 5.5.1 LHLO needed first');
    l.write('STARTTLS\r\n');
    expect(await reply(l)).toBe('503 5.5.1 TLS is already active.');
    l.close();
    await px.waitForLog((x) => x.msg === 'discarded input pipelined after STARTTLS (possible injection)');
  });

  test('starttls=y towards a backend: delivered over TLS; a backend without STARTTLS is never used in plaintext', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['secure@b.example', 'plainonly@a.example'], message: message('backend-tls') });
    expect(r.rcpt).toEqual([
      [250, '2.1.5 OK'],
      [451, '4.3.0 Internal error occurred. Refer to server log for more information.'],
    ]);
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(await inbox(b, 'bob@b.example', 'backend-tls')).toHaveLength(1);
    expect(await inbox(a, 'alice@a.example', 'backend-tls')).toEqual([]);
    await px.waitForLog((x) => x.msg === 'backend not usable: backend does not offer STARTTLS');
  });
});

describe('LMTP recipients: renames, unknown users, local_backend', () => {
  test('destuser renames the recipient and ORCPT keeps the original (Delivered-To from ORCPT)', async () => {
    const msg = message('renamed');
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['robert+lists@b.example'], message: msg });
    expect(r.data).toHaveLength(1);
    expect(r.data[0]?.[1]).toMatch(/^2\.0\.0 <robert\+lists@b\.example> \S+ Saved$/);
    const got = await inbox(b, 'dave@b.example', 'renamed');
    expect(got).toHaveLength(1);
    expect(got[0]?.toString()).toMatch(/^Delivered-To: robert\+lists@b\.example\r\n/);
    expect(withoutDeliveredTo(got[0] ?? Buffer.alloc(0))).toEqual(msg);
  });

  test('forward_* fields travel as XRCPTFORWARD and Dovecot accepts them', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['fwd@a.example'], message: message('forward-fields') });
    expect(r.rcpt).toEqual([[250, '2.1.5 OK']]);
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(await inbox(a, 'alice@a.example', 'forward-fields')).toHaveLength(1);
  });

  test('a user without a proxy destination: 451 (kept queued), never dropped', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['noproxy@x.example'], message: message('noproxy') });
    expect(r.rcpt).toEqual([[451, '4.3.0 Internal error occurred. Refer to server log for more information.']]);
  });

  test('with local_backend.lmtp, unknown users go to the local backend, which decides (as Dovecot does)', async () => {
    const r = await smtplib({ port: local.port('lmtp'), from: '', rcpts: ['localonly@a.example', 'ghost@a.example', 'bob@b.example'], message: message('local-backend') });
    expect(r.rcpt).toEqual([
      [250, '2.1.5 OK'],
      [550, "5.1.1 <ghost@a.example> User doesn't exist: ghost@a.example"],
      [250, '2.1.5 OK'],
    ]);
    expect(r.data.map((x) => x[0])).toEqual([250, 250]);
    expect(await inbox(a, 'localonly@a.example', 'local-backend')).toHaveLength(1);
    expect(await inbox(b, 'bob@b.example', 'local-backend')).toHaveLength(1);
  });
});
